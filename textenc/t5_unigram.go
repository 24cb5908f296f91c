package textenc

import (
	"sort"
	"sync"
	"unicode/utf8"
)

// unkPenalty is HF's K_UNK_PENALTY: an unknown char scores min_score − 10.
const t5UnkPenalty = 10.0

// t5Unigram is HF's Unigram model (encode_optimized Viterbi, fuse_unk, no byte fallback).
type t5Unigram struct {
	scores   []float64
	tokenIDs map[string]int32 // piece → id; on duplicates the last id wins, as HF's HashMap
	trie     pieceTrie
	unkID    int32
	unkScore float64 // min score − unkPenalty
	cache    t5PieceCache
}

func newT5Unigram(pieces []string, scores []float64, unkID int) *t5Unigram {
	u := &t5Unigram{scores: scores, tokenIDs: make(map[string]int32, len(pieces)), unkID: int32(unkID)}
	minScore := 0.0
	for i, p := range pieces {
		u.tokenIDs[p] = int32(i)
		if i == 0 || scores[i] < minScore {
			minScore = scores[i]
		}
	}
	u.unkScore = minScore - t5UnkPenalty
	u.trie = buildPieceTrie(u.tokenIDs)
	u.cache.init()
	return u
}

// pieceTrie is a byte trie over the vocabulary: the root has a dense table, inner nodes sorted edges.
type pieceTrie struct {
	root   [256]int32 // child of the root per byte, 0 = none
	id     []int32    // per node: piece id ending here, or -1
	first  []int32    // per node: index of its first edge
	count  []uint16   // per node: number of edges
	labels []byte     // per edge
	child  []int32    // per edge
}

func buildPieceTrie(ids map[string]int32) pieceTrie {
	keys := make([]string, 0, len(ids))
	for k := range ids {
		if k != "" {
			keys = append(keys, k)
		}
	}
	// Inserting in sorted order creates every node's edges in increasing byte order, and an
	// existing edge for the current byte can only be the node's last one.
	sort.Strings(keys)
	type edge struct {
		label byte
		child int32
	}
	ids0 := []int32{-1}
	edges := [][]edge{nil}
	for _, k := range keys {
		n := int32(0)
		for i := 0; i < len(k); i++ {
			es := edges[n]
			if len(es) > 0 && es[len(es)-1].label == k[i] {
				n = es[len(es)-1].child
				continue
			}
			c := int32(len(ids0))
			ids0 = append(ids0, -1)
			edges = append(edges, nil)
			edges[n] = append(es, edge{k[i], c})
			n = c
		}
		ids0[n] = ids[k]
	}
	t := pieceTrie{id: ids0, first: make([]int32, len(ids0)), count: make([]uint16, len(ids0))}
	for i, es := range edges {
		t.first[i] = int32(len(t.labels))
		t.count[i] = uint16(len(es))
		for _, e := range es {
			t.labels = append(t.labels, e.label)
			t.child = append(t.child, e.child)
			if i == 0 {
				t.root[e.label] = e.child
			}
		}
	}
	return t
}

// next returns the child of node n for byte c, or 0.
func (t *pieceTrie) next(n int32, c byte) int32 {
	if n == 0 {
		return t.root[c]
	}
	lo, hi := int(t.first[n]), int(t.first[n])+int(t.count[n])
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch l := t.labels[m]; {
		case l == c:
			return t.child[m]
		case l < c:
			lo = m + 1
		default:
			hi = m
		}
	}
	return 0
}

type viterbiNode struct {
	score float64
	start int32 // -1: not reached yet
	id    int32
}

var viterbiPool = sync.Pool{New: func() any { s := make([]viterbiNode, 0, 256); return &s }}

// encode appends the ids of one pre-token (HF encode_optimized + tokenize) to dst.
func (u *t5Unigram) encode(dst []int64, s string) []int64 {
	if s == "" {
		return dst
	}
	if ids, ok := u.cache.get(s); ok {
		return append(dst, ids...)
	}
	start := len(dst)
	dst = u.viterbi(dst, s)
	u.cache.put(s, dst[start:])
	return dst
}

func (u *t5Unigram) viterbi(dst []int64, s string) []int64 {
	bp := viterbiPool.Get().(*[]viterbiNode)
	best := (*bp)[:0]
	for i := 0; i <= len(s); i++ {
		best = append(best, viterbiNode{start: -1})
	}
	for i := 0; i < len(s); {
		_, mblen := utf8.DecodeRuneInString(s[i:])
		base := best[i].score
		single := false
		for n, k := int32(0), i; k < len(s); k++ {
			if n = u.trie.next(n, s[k]); n == 0 {
				break
			}
			if id := u.trie.id[n]; id >= 0 {
				end := k + 1
				if cand := u.scores[id] + base; best[end].start < 0 || cand > best[end].score {
					best[end] = viterbiNode{score: cand, start: int32(i), id: id}
				}
				single = single || end-i == mblen
			}
		}
		if !single {
			end := i + mblen
			if cand := u.unkScore + base; best[end].start < 0 || cand > best[end].score {
				best[end] = viterbiNode{score: cand, start: int32(i), id: u.unkID}
			}
		}
		i += mblen
	}
	dst = u.backtrack(dst, s, best)
	if cap(best) <= 1<<16 { // do not pin the lattice of a huge piece
		*bp = best
		viterbiPool.Put(bp)
	}
	return dst
}

// backtrack walks the best path from the end, fusing consecutive unknowns into one piece that is
// then looked up like any piece (unk id when absent), and appends the ids in order.
func (u *t5Unigram) backtrack(dst []int64, s string, best []viterbiNode) []int64 {
	start := len(dst)
	unkEnd := -1 // end of the pending run of unknowns
	for end := len(s); end > 0; {
		nd := best[end]
		if nd.id == u.unkID {
			if unkEnd < 0 {
				unkEnd = end
			}
		} else {
			if unkEnd >= 0 {
				dst = append(dst, u.pieceID(s[end:unkEnd]))
				unkEnd = -1
			}
			dst = append(dst, int64(nd.id))
		}
		end = int(nd.start)
	}
	if unkEnd >= 0 {
		dst = append(dst, u.pieceID(s[:unkEnd]))
	}
	ids := dst[start:]
	for i, j := 0, len(ids)-1; i < j; i, j = i+1, j-1 {
		ids[i], ids[j] = ids[j], ids[i]
	}
	return dst
}

func (u *t5Unigram) pieceID(p string) int64 {
	if id, ok := u.tokenIDs[p]; ok {
		return int64(id)
	}
	return int64(u.unkID)
}

// t5PieceCache memoises pre-token → ids. It is bounded: once full it stops admitting new entries
// (like HF's Unigram cache), so memory stays flat under adversarial input.
type t5PieceCache struct {
	mu sync.RWMutex
	m  map[string][]int64
}

const t5PieceCacheMax = 10000

func (c *t5PieceCache) init() {
	c.mu.Lock()
	c.m = make(map[string][]int64)
	c.mu.Unlock()
}

func (c *t5PieceCache) get(s string) ([]int64, bool) {
	c.mu.RLock()
	ids, ok := c.m[s]
	c.mu.RUnlock()
	return ids, ok
}

func (c *t5PieceCache) put(s string, ids []int64) {
	if len(s) > 256 {
		return
	}
	c.mu.Lock()
	if len(c.m) < t5PieceCacheMax {
		c.m[s] = append([]int64(nil), ids...)
	}
	c.mu.Unlock()
}
