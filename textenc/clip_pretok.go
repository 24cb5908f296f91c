package textenc

import (
	"strings"
	"unicode/utf8"
)

// The CLIP pipeline of tokenizer.json, applied by CLIPTokenizer.appendContent:
//
//	added tokens with normalized=false are split off the raw text (leftmost-longest);
//	each remaining piece: NFC → Replace(\s+ → " ") → Lowercase (clipNormalize);
//	added tokens with normalized=true are split off the normalized piece;
//	each remaining piece: Split on the CLIP pattern (clipScan), ByteLevel (its GPT-2 regex only
//	re-splits the literal special-token matches), BPE with "</w>" (clipBPE.word).

// clipLiterals are the two special-token alternatives that lead CLIP's Split pattern.
var clipLiterals = [...]string{"<|startoftext|>", "<|endoftext|>"}

// clipContractions are the Split pattern's 's|'t|'re|'ve|'m|'ll|'d alternatives, without the quote.
var clipContractions = [...]string{"s", "t", "re", "ve", "m", "ll", "d"}

// ASCII classes for the Split pattern.
const (
	clipOther uint8 = iota
	clipSpace
	clipLetter
	clipDigit
)

var clipASCIIClass = func() (t [utf8.RuneSelf]uint8) {
	for c := 0; c < utf8.RuneSelf; c++ {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			t[c] = clipLetter
		case c >= '0' && c <= '9':
			t[c] = clipDigit
		case clipIsSpace(rune(c)):
			t[c] = clipSpace
		}
	}
	return t
}()

// clipClassAt returns the Split class of the rune at s[i] and its length in bytes.
func clipClassAt(s string, i int) (uint8, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return clipASCIIClass[c], 1
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	switch {
	case clipIsLetter(r):
		return clipLetter, n
	case clipIsNumber(r):
		return clipDigit, n
	case clipIsSpace(r):
		return clipSpace, n
	}
	return clipOther, n
}

// clipNormalize applies the normalizer: NFC (as the Rust library computes it), every run of
// White_Space replaced by one " ", then Rust's per-rune lowercase. It returns s itself when nothing
// changes.
func clipNormalize(s string, sc *clipScratch) string {
	s = clipNFC(s)
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || (c >= 'A' && c <= 'Z') {
			break
		}
		if clipASCIIClass[c] == clipSpace && (c != ' ' || (i > 0 && s[i-1] == ' ')) {
			break
		}
	}
	if i == len(s) {
		return s
	}
	out := append(sc.buf[:0], s[:i]...)
	inSpace := i > 0 && s[i-1] == ' '
	for _, r := range s[i:] {
		switch {
		case clipIsSpace(r):
			if !inSpace {
				out = append(out, ' ')
			}
			inSpace = true
			continue
		case r >= 'A' && r <= 'Z':
			out = append(out, byte(r+'a'-'A'))
		case r < utf8.RuneSelf:
			out = append(out, byte(r))
		default:
			out = clipLowerRune(out, r)
		}
		inSpace = false
	}
	sc.buf = out
	return string(out)
}

// clipAdded is one added token: its text and id.
type clipAdded struct {
	content string
	id      int32
}

// clipAddedSet finds added tokens in a text, leftmost first and longest at a position (HF's
// aho-corasick LeftmostLongest).
type clipAddedSet struct {
	toks  []clipAdded
	first [256]bool // first bytes of the tokens
}

func (a *clipAddedSet) add(content string, id int32) {
	if content == "" {
		return
	}
	for _, t := range a.toks {
		if t.content == content {
			return
		}
	}
	a.toks = append(a.toks, clipAdded{content, id})
	a.first[content[0]] = true
}

// next returns the first match at or after from: its bounds and id; start is len(s) when none.
func (a *clipAddedSet) next(s string, from int) (start, end int, id int32) {
	if len(a.toks) == 0 {
		return len(s), len(s), -1
	}
	for i := from; i < len(s); i++ {
		if !a.first[s[i]] {
			continue
		}
		best := -1
		for k, t := range a.toks {
			if strings.HasPrefix(s[i:], t.content) && (best < 0 || len(t.content) > len(a.toks[best].content)) {
				best = k
			}
		}
		if best >= 0 {
			return i, i + len(a.toks[best].content), a.toks[best].id
		}
	}
	return len(s), len(s), -1
}

// clipScan calls word for every pre-token of a normalized piece, in order: the Split pattern
// <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// (leftmost-first alternation, matches kept, the rest – whitespace – removed), then ByteLevel's GPT-2
// regex, which leaves every piece whole except the two literals: "<|", "startoftext"/"endoftext", "|>".
func clipScan(s string, word func(string)) {
	i := 0
	for i < len(s) {
		class, n := clipClassAt(s, i)
		j := i + n
		switch class {
		case clipSpace:
			i = j
			continue
		case clipLetter:
			for j < len(s) {
				c, m := clipClassAt(s, j)
				if c != clipLetter {
					break
				}
				j += m
			}
		case clipOther:
			if k := clipLiteralAt(s[i:]); k > 0 {
				word(s[i : i+2])
				word(s[i+2 : i+k-2])
				word(s[i+k-2 : i+k])
				i += k
				continue
			}
			if s[i] == '\'' {
				if k := clipContractionAt(s[i+1:]); k > 0 {
					j = i + 1 + k
					break
				}
			}
			for j < len(s) {
				c, m := clipClassAt(s, j)
				if c != clipOther {
					break
				}
				j += m
			}
		}
		word(s[i:j])
		i = j
	}
}

func clipLiteralAt(s string) int {
	if len(s) > 0 && s[0] == '<' {
		for _, l := range clipLiterals {
			if strings.HasPrefix(s, l) {
				return len(l)
			}
		}
	}
	return 0
}

func clipContractionAt(s string) int {
	for _, c := range clipContractions {
		if strings.HasPrefix(s, c) {
			return len(c)
		}
	}
	return 0
}
