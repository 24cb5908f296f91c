package textenc

import (
	"unicode"
	"unicode/utf8"
)

// Extended grapheme clusters (UAX #29), as far as HF's Precompiled normalizer needs them: it looks a
// cluster shorter than 6 bytes up as a whole and everything else char by char, so only the cluster
// boundaries matter. Rules GB3–GB13 and GB999 are implemented; GB9c (Indic conjuncts, Unicode 15.1)
// is not: it only joins clusters that are ≥ 6 bytes long anyway. Properties come from Go's unicode
// tables (Unicode 15.0) plus extPictographic.

type gcbClass uint8

const (
	gcbOther gcbClass = iota
	gcbCR
	gcbLF
	gcbControl
	gcbExtend
	gcbZWJ
	gcbRI
	gcbPrepend
	gcbSpacingMark
	gcbL
	gcbV
	gcbT
	gcbLV
	gcbLVT
	gcbExtPict
)

// spacingMarkExceptions are Mc characters whose Grapheme_Cluster_Break is not SpacingMark.
var spacingMarkExceptions = &unicode.RangeTable{
	R16: []unicode.Range16{
		{0x102B, 0x102C, 1}, {0x1038, 0x1038, 1}, {0x1062, 0x1064, 1}, {0x1067, 0x106D, 1},
		{0x1083, 0x1083, 1}, {0x1087, 0x108C, 1}, {0x108F, 0x108F, 1}, {0x109A, 0x109C, 1},
		{0x1A61, 0x1A61, 1}, {0x1A63, 0x1A64, 1}, {0xAA7B, 0xAA7B, 1}, {0xAA7D, 0xAA7D, 1},
	},
	R32: []unicode.Range32{{0x11720, 0x11721, 1}},
}

// prependISC are the Indic_Syllabic_Category Consonant_Preceding_Repha / Consonant_Prefixed code
// points (Grapheme_Cluster_Break=Prepend besides Prepended_Concatenation_Mark).
var prependISC = &unicode.RangeTable{
	R16: []unicode.Range16{{0x0D4E, 0x0D4E, 1}},
	R32: []unicode.Range32{
		{0x111C2, 0x111C3, 1}, {0x1193F, 0x1193F, 1}, {0x11941, 0x11941, 1}, {0x11A3A, 0x11A3A, 1},
		{0x11A84, 0x11A89, 1}, {0x11D46, 0x11D46, 1}, {0x11F02, 0x11F02, 1},
	},
}

// unassignedIgnorable are the unassigned Default_Ignorable_Code_Point ranges (GCB Control).
var unassignedIgnorable = &unicode.RangeTable{
	R16: []unicode.Range16{{0x2065, 0x2065, 1}, {0xFFF0, 0xFFF8, 1}},
	R32: []unicode.Range32{{0xE0000, 0xE0000, 1}, {0xE0002, 0xE001F, 1}, {0xE0080, 0xE00FF, 1}, {0xE01F0, 0xE0FFF, 1}},
}

// gcbOf returns the Grapheme_Cluster_Break class of r (Extended_Pictographic folded in).
func gcbOf(r rune) gcbClass {
	switch {
	case r == '\r':
		return gcbCR
	case r == '\n':
		return gcbLF
	case r < 0x20 || (r >= 0x7F && r < 0xA0):
		return gcbControl
	case r < 0x300:
		if r == 0xA9 || r == 0xAE {
			return gcbExtPict
		}
		if r == 0xAD {
			return gcbControl
		}
		return gcbOther
	case r == 0x200D:
		return gcbZWJ
	case r >= 0x1F1E6 && r <= 0x1F1FF:
		return gcbRI
	}
	if c, ok := hangulClass(r); ok {
		return c
	}
	switch {
	case unicode.In(r, unicode.Mn, unicode.Me, unicode.Other_Grapheme_Extend) || (r >= 0x1F3FB && r <= 0x1F3FF):
		return gcbExtend
	case r == 0x0E33 || r == 0x0EB3 || (unicode.Is(unicode.Mc, r) && !unicode.Is(spacingMarkExceptions, r)):
		return gcbSpacingMark
	case unicode.Is(unicode.Prepended_Concatenation_Mark, r) || unicode.Is(prependISC, r):
		return gcbPrepend
	case unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp, unassignedIgnorable):
		return gcbControl
	case unicode.Is(extPictographic, r):
		return gcbExtPict
	}
	return gcbOther
}

// hangulClass classifies Hangul jamo and syllables (Hangul_Syllable_Type).
func hangulClass(r rune) (gcbClass, bool) {
	switch {
	case (r >= 0x1100 && r <= 0x115F) || (r >= 0xA960 && r <= 0xA97C):
		return gcbL, true
	case (r >= 0x1160 && r <= 0x11A7) || (r >= 0xD7B0 && r <= 0xD7C6):
		return gcbV, true
	case (r >= 0x11A8 && r <= 0x11FF) || (r >= 0xD7CB && r <= 0xD7FB):
		return gcbT, true
	case r >= 0xAC00 && r <= 0xD7A3:
		if (r-0xAC00)%28 == 0 {
			return gcbLV, true
		}
		return gcbLVT, true
	}
	return gcbOther, false
}

// graphemeEnd returns the end (byte offset) of the extended grapheme cluster that starts at i < len(s).
// s must be valid UTF-8.
func graphemeEnd(s string, i int) int {
	c := s[i]
	if c < utf8.RuneSelf && (i+1 == len(s) || (s[i+1] < utf8.RuneSelf && !(c == '\r' && s[i+1] == '\n'))) {
		return i + 1 // ASCII followed by ASCII: always a boundary (except CR LF)
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	prev := gcbOf(r)
	riOdd := prev == gcbRI      // odd number of RI so far in a run (GB12/13)
	emoji := prev == gcbExtPict // ExtPict Extend* seen (GB11)
	emojiZWJ := false           // ExtPict Extend* ZWJ seen
	for j := i + n; j < len(s); j += n {
		r, n = utf8.DecodeRuneInString(s[j:])
		next := gcbOf(r)
		if graphemeBreak(prev, next, riOdd, emojiZWJ) {
			return j
		}
		switch next {
		case gcbZWJ:
			emojiZWJ, emoji = emoji, false
		case gcbExtend:
			emojiZWJ = false
		case gcbExtPict:
			emoji, emojiZWJ = true, false
		default:
			emoji, emojiZWJ = false, false
		}
		riOdd = next == gcbRI && !riOdd
		prev = next
	}
	return len(s)
}

// graphemeBreak applies GB3–GB13 to the pair (prev, next).
func graphemeBreak(prev, next gcbClass, riOdd, emojiZWJ bool) bool {
	switch {
	case prev == gcbCR && next == gcbLF: // GB3
		return false
	case prev == gcbCR || prev == gcbLF || prev == gcbControl: // GB4
		return true
	case next == gcbCR || next == gcbLF || next == gcbControl: // GB5
		return true
	case prev == gcbL && (next == gcbL || next == gcbV || next == gcbLV || next == gcbLVT): // GB6
		return false
	case (prev == gcbLV || prev == gcbV) && (next == gcbV || next == gcbT): // GB7
		return false
	case (prev == gcbLVT || prev == gcbT) && next == gcbT: // GB8
		return false
	case next == gcbExtend || next == gcbZWJ || next == gcbSpacingMark: // GB9, GB9a
		return false
	case prev == gcbPrepend: // GB9b
		return false
	case prev == gcbZWJ && next == gcbExtPict && emojiZWJ: // GB11
		return false
	case prev == gcbRI && next == gcbRI && riOdd: // GB12, GB13
		return false
	}
	return true // GB999
}
