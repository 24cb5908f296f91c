package textenc

// clipBPE is CLIP's byte-level BPE model with the merge semantics of the HF tokenizers library
// (models/bpe/word.rs Word::merge_all): every adjacent pair with a merge rule goes into a min-heap
// keyed by (rank, position); the top is merged unless it is stale (its left symbol was absorbed, it
// has no right neighbour any more, or the pair now there merges into a different token), and the new
// pairs with the left and right neighbours are pushed. Equal ranks merge leftmost first.
type clipBPE struct {
	vocab     map[string]int32
	tokens    []string          // id → token; "" for ids the files do not define
	byteID    [256]int32        // id of the byte's symbol inside a word; -1 when not in the vocabulary
	byteEndID [256]int32        // id of the byte's symbol + "</w>" (last symbol of a word); -1 when absent
	merges    map[uint64]uint32 // left id<<32 | right id → rank (the merge's line index)
	mergeID   []int32           // rank → id of the merged token
	unkID     int32             // id of the unknown token; -1 when the vocabulary has none
}

// clipEndOfWord is the suffix CLIP's BPE puts on the last symbol of every word.
const clipEndOfWord = "</w>"

// clipByteRunes is GPT-2's bytes_to_unicode: the printable rune each byte is spelled with in the
// vocabulary.
var clipByteRunes = func() (t [256]rune) {
	n := rune(0)
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			t[b] = rune(b)
		} else {
			t[b] = 256 + n
			n++
		}
	}
	return t
}()

func clipPairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// clipSym is one symbol of a word being merged; id -1 marks a symbol absorbed by its left neighbour.
type clipSym struct {
	id, prev, next int32
}

// clipScratch holds the buffers one Encode call reuses across words.
type clipScratch struct {
	syms []clipSym
	heap []uint64 // rank<<32 | position
	ids  []int32
	buf  []byte
}

// initSymbols fills sc.syms with one symbol per byte of w (the last one with "</w>"). A byte whose
// symbol is missing from the vocabulary becomes the unknown token (HF with fuse_unk false); without an
// unknown token it is dropped (HF returns an error there).
func (m *clipBPE) initSymbols(w string, sc *clipScratch) []clipSym {
	syms := sc.syms[:0]
	for i := 0; i < len(w); i++ {
		id := m.byteID[w[i]]
		if i == len(w)-1 {
			id = m.byteEndID[w[i]]
		}
		if id < 0 {
			if id = m.unkID; id < 0 {
				continue
			}
		}
		n := int32(len(syms))
		syms = append(syms, clipSym{id: id, prev: n - 1, next: n + 1})
	}
	if len(syms) > 0 {
		syms[len(syms)-1].next = -1
	}
	sc.syms = syms
	return syms
}

// word appends the ids of one pre-token (raw bytes, before the byte-to-rune mapping) to sc.ids.
func (m *clipBPE) word(w string, sc *clipScratch) []int32 {
	syms := m.initSymbols(w, sc)
	h := sc.heap[:0]
	for i := 0; i+1 < len(syms); i++ {
		if r, ok := m.merges[clipPairKey(syms[i].id, syms[i+1].id)]; ok {
			h = clipHeapPush(h, uint64(r)<<32|uint64(i))
		}
	}
	for len(h) > 0 {
		var top uint64
		h, top = clipHeapPop(h)
		rank, pos := uint32(top>>32), int32(uint32(top))
		s := &syms[pos]
		if s.id < 0 || s.next < 0 {
			continue
		}
		next := s.next
		r, ok := m.merges[clipPairKey(s.id, syms[next].id)]
		if !ok || m.mergeID[r] != m.mergeID[rank] {
			continue
		}
		s.id = m.mergeID[rank]
		s.next = syms[next].next
		syms[next].id = -1
		if s.next >= 0 {
			syms[s.next].prev = pos
		}
		if s.prev >= 0 {
			if r, ok := m.merges[clipPairKey(syms[s.prev].id, s.id)]; ok {
				h = clipHeapPush(h, uint64(r)<<32|uint64(s.prev))
			}
		}
		if s.next >= 0 {
			if r, ok := m.merges[clipPairKey(s.id, syms[s.next].id)]; ok {
				h = clipHeapPush(h, uint64(r)<<32|uint64(pos))
			}
		}
	}
	sc.heap = h
	ids := sc.ids[:0]
	for _, s := range syms {
		if s.id >= 0 {
			ids = append(ids, s.id)
		}
	}
	sc.ids = ids
	return ids
}

// clipHeapPush and clipHeapPop keep h a binary min-heap.
func clipHeapPush(h []uint64, v uint64) []uint64 {
	h = append(h, v)
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if h[p] <= v {
			break
		}
		h[i] = h[p]
		i = p
	}
	h[i] = v
	return h
}

func clipHeapPop(h []uint64) ([]uint64, uint64) {
	top := h[0]
	last := h[len(h)-1]
	h = h[:len(h)-1]
	n := len(h)
	if n == 0 {
		return h, top
	}
	i := 0
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if c+1 < n && h[c+1] < h[c] {
			c++
		}
		if last <= h[c] {
			break
		}
		h[i] = h[c]
		i = c
	}
	h[i] = last
	return h, top
}
