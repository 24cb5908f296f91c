package textenc

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// T5Options adjusts how LoadT5Tokenizer builds a T5 tokenizer.
type T5Options struct {
	// PrependScheme overrides the Metaspace prepend scheme: "always", "first" or "never".
	// "" takes it from tokenizer.json; for spiece.model it is "always" as transformers' converter
	// makes it (legacy=true), "first" when tokenizer_config.json says legacy=false, "never" when it
	// says add_prefix_space=false.
	PrependScheme string
	// Scores chooses the piece scores, which matter only on exact ties between segmentations (e.g.
	// runs of 3k+1 dashes, k ≥ 2). The zero value follows transformers 4.x, which diffusers uses.
	Scores T5Scores
	exact  bool // resolved by LoadT5Tokenizer
}

// T5Scores says which piece scores a T5 tokenizer uses.
type T5Scores int

const (
	// ScoresAsTransformers is what transformers' T5TokenizerFast ends up with: when tokenizer_config.json
	// sets add_prefix_space (SD3's does) or there is no tokenizer.json, transformers converts spiece.model
	// in-process and keeps its exact float32 scores; otherwise it loads tokenizer.json (FLUX), whose
	// scores HF tokenizers parses serde-style.
	ScoresAsTransformers T5Scores = iota
	// ScoresFromJSON is HF tokenizers reading tokenizer.json: serde_json's parse, 1 ulp off the correctly
	// rounded value for about a quarter of the scores (what tokenizers' Tokenizer.fromFile gives).
	ScoresFromJSON
	// ScoresExact is the float32 scores of spiece.model (the correctly rounded parse of tokenizer.json).
	ScoresExact
)

// T5Tokenizer is the T5 v1.1 SentencePiece Unigram tokenizer with exactly HF tokenizers'
// (T5TokenizerFast) semantics. It is safe for concurrent use.
//
// Invalid UTF-8 in the input is read as Go's range loop reads it: every byte that does not start a
// valid sequence becomes U+FFFD (which T5's nmt_nfkc charsmap maps to a space).
type T5Tokenizer struct {
	steps   []t5NormStep // normalizer sequence (Precompiled, Strip, Replace)
	meta    *t5Metaspace // nil: no pre-tokenizer
	model   *t5Unigram
	raw     t5AddedMatcher // added tokens matched on the raw text (normalized=false)
	norm    t5AddedMatcher // added tokens matched on the normalized text (normalized=true)
	prefix  []int64        // post-processor specials before / after the content
	suffix  []int64
	padID   int64
	maxLen  int
	vocabSz int // number of ids (model vocabulary and added tokens)
}

var _ Tokenizer = (*T5Tokenizer)(nil)

// Encode returns the ids of text followed by EOS (1), without truncation or padding.
func (t *T5Tokenizer) Encode(text string) []int64 {
	ids := make([]int64, 0, len(t.prefix)+len(text)/3+len(t.suffix)+4)
	ids = append(ids, t.prefix...)
	ids = t.appendContent(ids, text)
	return append(ids, t.suffix...)
}

// EncodePadded returns exactly maxLen ids: the first maxLen−1 content ids, EOS, then PadID
// (diffusers' padding="max_length", truncation=True; SD3 passes 256, FLUX 512). maxLen ≤ 0 means
// MaxLength(). When maxLen cannot even hold the special tokens they are cut to maxLen.
func (t *T5Tokenizer) EncodePadded(text string, maxLen int) []int64 {
	if maxLen <= 0 {
		maxLen = t.maxLen
	}
	content := t.appendContent(nil, text)
	room := maxLen - len(t.prefix) - len(t.suffix)
	if room < 0 {
		room = 0
	}
	if len(content) > room {
		content = content[:room]
	}
	ids := make([]int64, 0, maxLen)
	ids = append(ids, t.prefix...)
	ids = append(ids, content...)
	ids = append(ids, t.suffix...)
	if len(ids) > maxLen {
		ids = ids[:maxLen]
	}
	for len(ids) < maxLen {
		ids = append(ids, t.padID)
	}
	return ids
}

// PadID is the id of the folder's pad token (<pad> = 0).
func (t *T5Tokenizer) PadID() int64 { return t.padID }

// MaxLength is tokenizer_config.json's model_max_length (512 when absent).
func (t *T5Tokenizer) MaxLength() int { return t.maxLen }

// VocabSize is the number of ids the tokenizer can produce (32100 for T5 v1.1); every id is below it.
func (t *T5Tokenizer) VocabSize() int { return t.vocabSz }

// appendContent appends the ids of text without the post-processor's special tokens.
func (t *T5Tokenizer) appendContent(ids []int64, text string) []int64 {
	if !utf8.ValidString(text) {
		text = validRunes(text)
	}
	t.raw.split(text, func(seg string, start int, id int64) {
		if id >= 0 {
			ids = append(ids, id)
			return
		}
		for _, st := range t.steps {
			seg = st.apply(seg)
		}
		t.norm.split(seg, func(sub string, subStart int, id int64) {
			if id >= 0 {
				ids = append(ids, id)
				return
			}
			ids = t.appendPieces(ids, sub, start == 0 && subStart == 0)
		})
	})
	return ids
}

// appendPieces pre-tokenizes one normalized segment and runs the model on each piece.
func (t *T5Tokenizer) appendPieces(ids []int64, s string, first bool) []int64 {
	if t.meta == nil {
		return t.model.encode(ids, s)
	}
	t.meta.pieces(s, first, func(p string) { ids = t.model.encode(ids, p) })
	return ids
}

// resetCache empties the piece cache (cold-cache benchmarks and tests).
func (t *T5Tokenizer) resetCache() { t.model.cache.init() }

// t5AddedToken is one entry of tokenizer.json's added_tokens.
type t5AddedToken struct {
	content                                     string
	id                                          int64
	singleWord, lstrip, rstrip, normalized, spc bool
}

// t5AddedMatcher finds added tokens in text like HF's AddedVocabulary: leftmost-longest,
// non-overlapping matches; single_word matches only between non-word chars; lstrip/rstrip widen a
// match over adjacent Unicode whitespace.
type t5AddedMatcher struct {
	byFirst *[256][]t5AddedToken // candidates per first byte, longest first; nil: no tokens
}

func newT5AddedMatcher(toks []t5AddedToken) t5AddedMatcher {
	m := t5AddedMatcher{}
	for _, tk := range toks {
		if tk.content == "" {
			continue
		}
		if m.byFirst == nil {
			m.byFirst = new([256][]t5AddedToken)
		}
		c := tk.content[0]
		l := append(m.byFirst[c], tk)
		for i := len(l) - 1; i > 0 && len(l[i].content) > len(l[i-1].content); i-- {
			l[i], l[i-1] = l[i-1], l[i]
		}
		m.byFirst[c] = l
	}
	return m
}

// match returns the longest token starting at s[i:].
func (m *t5AddedMatcher) match(s string, i int) (t5AddedToken, bool) {
	for _, tk := range m.byFirst[s[i]] {
		if strings.HasPrefix(s[i:], tk.content) {
			return tk, true
		}
	}
	return t5AddedToken{}, false
}

// split calls fn for every non-empty text segment (id −1, with its byte offset in s) and every
// matched token (its id), in order.
func (m *t5AddedMatcher) split(s string, fn func(seg string, start int, id int64)) {
	if m.byFirst == nil {
		if s != "" {
			fn(s, 0, -1)
		}
		return
	}
	done := 0 // end of what has been emitted
	for i := 0; i < len(s); {
		if m.byFirst[s[i]] == nil {
			i++
			continue
		}
		tk, ok := m.match(s, i)
		if !ok {
			i++
			continue
		}
		start, stop := i, i+len(tk.content)
		i = stop // the automaton resumes after the match, even a rejected one
		if tk.singleWord && (t5EndsWithWord(s[:start]) || t5StartsWithWord(s[stop:])) {
			continue
		}
		if tk.lstrip {
			start = max(len(strings.TrimRightFunc(s[:start], unicode.IsSpace)), done)
		}
		if tk.rstrip {
			stop = len(s) - len(strings.TrimLeftFunc(s[stop:], unicode.IsSpace))
		}
		if done < start {
			fn(s[done:start], done, -1)
		}
		fn("", start, tk.id)
		done = stop
	}
	if done < len(s) {
		fn(s[done:], done, -1)
	}
}

// t5IsWordChar is the regex crate's Unicode \w.
func t5IsWordChar(r rune) bool {
	return r == '_' || r == 0x200C || r == 0x200D ||
		unicode.In(r, unicode.L, unicode.M, unicode.Nd, unicode.Nl, unicode.Pc, unicode.Other_Alphabetic)
}

func t5EndsWithWord(s string) bool {
	r, n := utf8.DecodeLastRuneInString(s)
	return n > 0 && t5IsWordChar(r)
}

func t5StartsWithWord(s string) bool {
	r, n := utf8.DecodeRuneInString(s)
	return n > 0 && t5IsWordChar(r)
}
