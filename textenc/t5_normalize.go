package textenc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// precompiledCharsmap is SentencePiece's precompiled normalizer (e.g. nmt_nfkc): a double-array trie
// over UTF-8 byte strings whose values are offsets of NUL-terminated replacements in a string blob.
// Blob layout: u32le trie size in bytes, the trie units (u32le), the replacement strings.
type precompiledCharsmap struct {
	units      []uint32
	normalized string
	ascii      [utf8.RuneSelf]t5ASCIINorm // transform of each single ASCII byte, precomputed
}

type t5ASCIINorm struct {
	repl string
	ok   bool
}

// parsePrecompiledCharsmap validates and decodes a charsmap blob.
func parsePrecompiledCharsmap(b []byte) (*precompiledCharsmap, error) {
	if len(b) < 4 {
		return nil, errors.New("precompiled_charsmap: shorter than its 4-byte header")
	}
	size := uint64(binary.LittleEndian.Uint32(b))
	if size%4 != 0 || size > uint64(len(b)-4) {
		return nil, fmt.Errorf("precompiled_charsmap: trie size %d does not fit the %d-byte blob", size, len(b))
	}
	if size == 0 {
		return nil, errors.New("precompiled_charsmap: empty trie")
	}
	units := make([]uint32, size/4)
	for i := range units {
		units[i] = binary.LittleEndian.Uint32(b[4+4*i:])
	}
	norm := b[4+size:]
	if !utf8.Valid(norm) {
		return nil, errors.New("precompiled_charsmap: replacement strings are not valid UTF-8")
	}
	p := &precompiledCharsmap{units: units, normalized: string(norm)}
	for c := range p.ascii {
		repl, ok := p.lookup(string(rune(c)))
		p.ascii[c] = t5ASCIINorm{repl, ok}
	}
	return p, nil
}

// lookup is spm_precompiled's transform: the replacement of the *shortest* prefix of key that is in
// the trie (HF uses results[0] of a common-prefix search, even when it covers only part of key).
// Out-of-range trie positions, which only a corrupt blob has, count as no match.
func (p *precompiledCharsmap) lookup(key string) (string, bool) {
	u := p.units
	if len(u) == 0 {
		return "", false
	}
	pos := uint32(0) ^ dartsUnitOffset(u[0])
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c == 0 {
			break
		}
		pos ^= uint32(c)
		if int(pos) >= len(u) {
			return "", false
		}
		unit := u[pos]
		if unit&(1<<31|0xFF) != uint32(c) {
			return "", false
		}
		pos ^= dartsUnitOffset(unit)
		if (unit>>8)&1 == 1 {
			if int(pos) >= len(u) {
				return "", false
			}
			return p.replacement(int(u[pos] & (1<<31 - 1)))
		}
	}
	return "", false
}

func dartsUnitOffset(unit uint32) uint32 {
	return (unit >> 10) << ((unit & (1 << 9)) >> 6)
}

// replacement returns the NUL-terminated string at offset off of the replacement blob.
func (p *precompiledCharsmap) replacement(off int) (string, bool) {
	if off > len(p.normalized) {
		return "", false
	}
	s := p.normalized[off:]
	if end := strings.IndexByte(s, 0); end >= 0 {
		s = s[:end]
	}
	return s, true
}

// normalize is HF's Precompiled normalizer: per extended grapheme cluster, a cluster shorter than
// 6 bytes is replaced as a whole when lookup finds a prefix of it; otherwise every char is looked up
// on its own. s must be valid UTF-8.
func (p *precompiledCharsmap) normalize(s string) string {
	var b []byte
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf && (i+1 == len(s) || (s[i+1] < utf8.RuneSelf && c != '\r')) {
			if a := p.ascii[c]; a.ok { // single-byte cluster
				b = p.grow(b, s, i)
				b = append(b, a.repl...)
			} else if b != nil {
				b = append(b, c)
			}
			i++
			continue
		}
		j := graphemeEnd(s, i)
		if j-i < 6 {
			if repl, ok := p.lookup(s[i:j]); ok {
				b = p.grow(b, s, i)
				b = append(b, repl...)
				i = j
				continue
			}
		}
		for k := i; k < j; {
			_, n := utf8.DecodeRuneInString(s[k:])
			if repl, ok := p.lookup(s[k : k+n]); ok {
				b = p.grow(b, s, k)
				b = append(b, repl...)
			} else if b != nil {
				b = append(b, s[k:k+n]...)
			}
			k += n
		}
		i = j
	}
	if b == nil {
		return s
	}
	return string(b)
}

// grow starts the output buffer with the unchanged prefix s[:i] the first time something changes.
func (p *precompiledCharsmap) grow(b []byte, s string, i int) []byte {
	if b != nil {
		return b
	}
	b = make([]byte, 0, len(s)+16)
	return append(b, s[:i]...)
}

// t5NormStep is one normalizer of the sequence that runs after Precompiled.
type t5NormStep interface {
	apply(s string) string
}

// t5Strip is HF's Strip normalizer (Unicode White_Space, as Rust's char::is_whitespace).
type t5Strip struct{ left, right bool }

func (st t5Strip) apply(s string) string {
	if st.left {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
	}
	if st.right {
		s = strings.TrimRightFunc(s, unicode.IsSpace)
	}
	return s
}

// t5Replace is HF's Replace normalizer: a literal pattern, or a regex (RE2 syntax, which agrees
// with Oniguruma for the patterns tokenizer files use, e.g. " {2,}").
type t5Replace struct {
	literal string
	re      *regexp.Regexp
	spaces  bool // pattern " {2,}": fast path
	content string
}

func newT5Replace(pattern string, isRegex bool, content string) (t5Replace, error) {
	switch {
	case isRegex && pattern == " {2,}":
		return t5Replace{spaces: true, content: content}, nil
	case isRegex:
		re, err := regexp.Compile(pattern)
		if err != nil {
			return t5Replace{}, fmt.Errorf("the Replace normalizer's regex %q: %w", pattern, err)
		}
		return t5Replace{re: re, content: content}, nil
	case pattern == "":
		return t5Replace{}, errors.New("a Replace normalizer with an empty pattern")
	}
	return t5Replace{literal: pattern, content: content}, nil
}

func (r t5Replace) apply(s string) string {
	switch {
	case r.spaces:
		if !strings.Contains(s, "  ") {
			return s
		}
		var b strings.Builder
		for i := 0; i < len(s); {
			j := i
			for j < len(s) && s[j] == ' ' {
				j++
			}
			if j-i >= 2 {
				b.WriteString(r.content)
				i = j
				continue
			}
			if j > i {
				b.WriteByte(' ')
				i = j
				continue
			}
			b.WriteByte(s[i])
			i++
		}
		return b.String()
	case r.re != nil:
		return r.re.ReplaceAllLiteralString(s, r.content)
	}
	return strings.ReplaceAll(s, r.literal, r.content)
}

// Metaspace prepend schemes.
const (
	prependAlways = "always"
	prependFirst  = "first"
	prependNever  = "never"
)

// t5Metaspace is HF's Metaspace pre-tokenizer.
type t5Metaspace struct {
	repl    string // "▁"
	prepend string // prependAlways, prependFirst or prependNever
	split   bool
}

// pieces replaces ' ' by the replacement, prepends it per the scheme (first: only to the segment that
// starts the text) and, with split, cuts before every replacement (MergedWithNext). It calls fn per
// non-empty piece.
func (m *t5Metaspace) pieces(s string, first bool, fn func(string)) {
	if s == "" {
		return
	}
	s = strings.ReplaceAll(s, " ", m.repl)
	if !strings.HasPrefix(s, m.repl) && (m.prepend == prependAlways || (m.prepend == prependFirst && first)) {
		s = m.repl + s
	}
	if !m.split {
		fn(s)
		return
	}
	for len(s) > 0 {
		j := strings.Index(s[1:], m.repl)
		if j < 0 {
			fn(s)
			return
		}
		fn(s[:j+1])
		s = s[j+1:]
	}
}

func (p *precompiledCharsmap) apply(s string) string { return p.normalize(s) }
