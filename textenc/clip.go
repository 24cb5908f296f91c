package textenc

import (
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// CLIPOptions configure a CLIP tokenizer.
type CLIPOptions struct {
	// SlowCompat reproduces diffusers' slow CLIPTokenizer when ftfy is not installed (what SD3 and FLUX
	// pipelines run): before the fast pipeline, each piece between added tokens goes through
	// transformers' BasicTokenizer, which drops category C* characters (ZWJ, ZWSP, BOM…) except \t \n \r,
	// puts spaces around CJK ideographs and lowercases like Python (final sigma ς). Without it the ids
	// are those of the fast tokenizer (tokenizer.json, CLIPTokenizerFast). Both agree on plain
	// Latin-script prompts.
	SlowCompat bool
}

// CLIPTokenizer is the byte-level BPE tokenizer of CLIP text encoders (CLIP-L, CLIP-G), giving the
// same ids as the Hugging Face tokenizers library. It is safe for concurrent use.
//
// Added tokens – tokenizer.json's added_tokens, the configs' added_tokens_decoder and the special
// tokens bos/eos/unk/pad – are split off the text before BPE, as transformers does. For the CLIP-G
// folder of SD3/SDXL (tokenizer_2, pad_token "!") this makes every "!" in a prompt id 0, which is what
// diffusers feeds the encoder (diffusers issue #4153); open_clip and ComfyUI give "!</w>" 256 there.
//
// Text that is not valid UTF-8 is read as Go's range loop reads it: every invalid byte is U+FFFD (the
// Rust library only ever sees valid strings).
type CLIPTokenizer struct {
	bpe       clipBPE
	raw       clipAddedSet // added tokens matched in the raw text (normalized=false)
	normed    clipAddedSet // added tokens matched in the normalized text (normalized=true)
	all       clipAddedSet // every added token (the slow tokenizer matches them all in the raw text)
	bos, eos  int64
	pad       int64
	maxLength int
	slow      bool
	cache     clipCache
}

var _ Tokenizer = (*CLIPTokenizer)(nil)

// Encode returns BOS, the ids of text, EOS, without truncation or padding.
func (t *CLIPTokenizer) Encode(text string) []int64 {
	ids := make([]int64, 1, len(text)/3+4)
	ids[0] = t.bos
	ids = t.appendContent(ids, text)
	return append(ids, t.eos)
}

// EncodePadded returns exactly maxLen ids (maxLen ≤ 0: MaxLength()): BOS, the first maxLen−2
// content ids, EOS, then PadID up to maxLen — diffusers' padding="max_length", truncation=True.
// For maxLen 1 it returns just BOS.
func (t *CLIPTokenizer) EncodePadded(text string, maxLen int) []int64 {
	if maxLen <= 0 {
		maxLen = t.maxLength
	}
	ids := make([]int64, 1, max(maxLen, 2)+1)
	ids[0] = t.bos
	ids = t.appendContent(ids, text)
	if len(ids) > maxLen-1 {
		ids = ids[:max(maxLen-1, 1)]
	}
	ids = append(ids, t.eos)
	for len(ids) < maxLen {
		ids = append(ids, t.pad)
	}
	if cap(ids) > 2*maxLen+8 { // a long text: do not keep its ids alive
		return slices.Clone(ids[:maxLen])
	}
	return ids[:maxLen]
}

// PadID is the id of the folder's pad_token (CLIP-L "<|endoftext|>" 49407, CLIP-G "!" 0).
func (t *CLIPTokenizer) PadID() int64 { return t.pad }

// MaxLength is the folder's model_max_length (77 for CLIP; 77 when the folder does not say).
func (t *CLIPTokenizer) MaxLength() int { return t.maxLength }

// BOS is the id of the start token "<|startoftext|>" (49406).
func (t *CLIPTokenizer) BOS() int64 { return t.bos }

// EOS is the id of the end token "<|endoftext|>" (49407).
func (t *CLIPTokenizer) EOS() int64 { return t.eos }

// VocabSize is one more than the largest id the tokenizer can return (49408 for CLIP).
func (t *CLIPTokenizer) VocabSize() int { return len(t.bpe.tokens) }

// Token returns the vocabulary entry of id (byte-level spelling, e.g. "cat</w>"), or "" when the
// id is not defined; for debugging.
func (t *CLIPTokenizer) Token(id int64) string {
	if id < 0 || id >= int64(len(t.bpe.tokens)) {
		return ""
	}
	return t.bpe.tokens[id]
}

// appendContent appends the ids of text without BOS/EOS.
func (t *CLIPTokenizer) appendContent(dst []int64, text string) []int64 {
	if !utf8.ValidString(text) {
		text = validRunes(text)
	}
	if t.slow {
		text = t.slowPrepass(text)
	}
	sc := &clipScratch{}
	for pos := 0; pos <= len(text); {
		start, end, id := t.raw.next(text, pos)
		dst = t.appendNormalized(dst, text[pos:start], sc)
		if start == len(text) {
			break
		}
		dst = append(dst, int64(id))
		pos = end
	}
	return dst
}

// slowPrepass runs clipSlowPrepass on every piece of text between added tokens (the slow tokenizer
// splits added tokens off the raw text first).
func (t *CLIPTokenizer) slowPrepass(text string) string {
	var b strings.Builder
	b.Grow(len(text) + 8)
	for pos := 0; pos <= len(text); {
		start, end, _ := t.all.next(text, pos)
		b.WriteString(clipSlowPrepass(text[pos:start]))
		b.WriteString(text[start:end])
		if start == len(text) {
			break
		}
		pos = end
	}
	return b.String()
}

// appendNormalized appends the ids of a piece of raw text that holds no raw added token.
func (t *CLIPTokenizer) appendNormalized(dst []int64, piece string, sc *clipScratch) []int64 {
	if piece == "" {
		return dst
	}
	n := clipNormalize(piece, sc)
	for pos := 0; pos <= len(n); {
		start, end, id := t.normed.next(n, pos)
		clipScan(n[pos:start], func(w string) { dst = t.appendWord(dst, w, sc) })
		if start == len(n) {
			break
		}
		dst = append(dst, int64(id))
		pos = end
	}
	return dst
}

// appendWord appends the BPE ids of one pre-token, through the word cache.
func (t *CLIPTokenizer) appendWord(dst []int64, w string, sc *clipScratch) []int64 {
	var ids []int32
	if len(w) > clipCacheMaxWord {
		ids = t.bpe.word(w, sc)
	} else if cached, ok := t.cache.get(w); ok {
		ids = cached
	} else {
		ids = append([]int32(nil), t.bpe.word(w, sc)...)
		t.cache.put(w, ids)
	}
	for _, id := range ids {
		dst = append(dst, int64(id))
	}
	return dst
}

// clipCacheSize bounds the word cache; when full it is emptied and refilled. Words longer than
// clipCacheMaxWord bytes are not cached (HF's BPE cache has the same kind of limit).
const (
	clipCacheSize    = 1 << 16
	clipCacheMaxWord = 256
)

// clipCache maps pre-tokens to their ids.
type clipCache struct {
	mu sync.RWMutex
	m  map[string][]int32
}

func (c *clipCache) get(w string) ([]int32, bool) {
	c.mu.RLock()
	ids, ok := c.m[w]
	c.mu.RUnlock()
	return ids, ok
}

func (c *clipCache) put(w string, ids []int32) {
	c.mu.Lock()
	if c.m == nil || len(c.m) >= clipCacheSize {
		c.m = make(map[string][]int32, 64)
	}
	c.m[strings.Clone(w)] = ids
	c.mu.Unlock()
}

// resetCache empties the word cache (benchmarks of cold encodes).
func (t *CLIPTokenizer) resetCache() {
	t.cache.mu.Lock()
	t.cache.m = nil
	t.cache.mu.Unlock()
}
