package textenc

import (
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Unicode-version alignment with the HF tokenizers library (Rust, 0.23.2). Go 1.26 and x/text carry
// Unicode 15.0 tables; the Rust library mixes versions: Lowercase uses the standard library's
// char::to_lowercase (Unicode 17), the Split regex (Oniguruma) classifies \p{L}/\p{N} with Unicode 16,
// and NFC (unicode-normalization-alignments) still has Unicode 9 tables. The tables below were derived
// by probing every code point through the Rust library (textenc/testdata/gen_clip_ids.js writes the
// audit, clip_unicode_test.go checks every code point against it).

// clipLowerExtra are the lowercase mappings Rust knows and Go 1.26 does not: {lo, hi, delta}.
var clipLowerExtra = [...][3]rune{
	{0x1C89, 0x1C89, 1}, {0xA7CB, 0xA7CB, -42343}, {0xA7CC, 0xA7CC, 1}, {0xA7CE, 0xA7CE, 1},
	{0xA7D2, 0xA7D2, 1}, {0xA7D4, 0xA7D4, 1}, {0xA7DA, 0xA7DA, 1}, {0xA7DC, 0xA7DC, -42561},
	{0x10D50, 0x10D65, 32}, {0x16EA0, 0x16EB8, 27},
}

// clipLetterExtra are Unicode 16 letters (Oniguruma \p{L}) unassigned in Go's tables.
var clipLetterExtra = &unicode.RangeTable{
	R16: []unicode.Range16{
		{0x1C89, 0x1C8A, 1}, {0xA7CB, 0xA7CD, 1}, {0xA7DA, 0xA7DC, 1},
	},
	R32: []unicode.Range32{
		{0x105C0, 0x105F3, 1}, {0x10D4A, 0x10D65, 1}, {0x10D6F, 0x10D85, 1}, {0x10EC2, 0x10EC4, 1},
		{0x11380, 0x11389, 1}, {0x1138B, 0x1138B, 1}, {0x1138E, 0x1138E, 1}, {0x11390, 0x113B5, 1},
		{0x113B7, 0x113B7, 1}, {0x113D1, 0x113D1, 1}, {0x113D3, 0x113D3, 1}, {0x11BC0, 0x11BE0, 1},
		{0x13460, 0x143FA, 1}, {0x16100, 0x1611D, 1}, {0x16D40, 0x16D6C, 1}, {0x18CFF, 0x18CFF, 1},
		{0x1E5D0, 0x1E5ED, 1}, {0x1E5F0, 0x1E5F0, 1}, {0x2EBF0, 0x2EE5D, 1},
	},
}

// clipNumberExtra are Unicode 16 numbers (Oniguruma \p{N}) unassigned in Go's tables.
var clipNumberExtra = &unicode.RangeTable{
	R32: []unicode.Range32{
		{0x10D40, 0x10D49, 1}, {0x116D0, 0x116E3, 1}, {0x11BF0, 0x11BF9, 1}, {0x16130, 0x16139, 1},
		{0x16D70, 0x16D79, 1}, {0x1CCF0, 0x1CCF9, 1}, {0x1E5F1, 0x1E5FA, 1},
	},
}

// clipNFCOpaque are the code points with normalization properties in Go's Unicode 15 tables (a
// combining class, a decomposition or a composition) that the Rust NFC (Unicode 9) does not know: it
// treats them as plain starters, so they are kept as they are and block reordering and composition.
var clipNFCOpaque = &unicode.RangeTable{
	R16: []unicode.Range16{
		{0x7FD, 0x7FD, 1}, {0x898, 0x89F, 1}, {0x8CA, 0x8D3, 1}, {0x9FE, 0x9FE, 1}, {0xC3C, 0xC3C, 1},
		{0xD3B, 0xD3C, 1}, {0xEBA, 0xEBA, 1}, {0x1715, 0x1715, 1}, {0x1ABF, 0x1ACE, 1},
		{0x1DF6, 0x1DFA, 1}, {0xA82C, 0xA82C, 1},
	},
	R32: []unicode.Range32{
		{0x10D24, 0x10D27, 1}, {0x10EAB, 0x10EAC, 1}, {0x10EFD, 0x10EFF, 1}, {0x10F46, 0x10F50, 1},
		{0x10F82, 0x10F85, 1}, {0x11070, 0x11070, 1}, {0x1133B, 0x1133B, 1}, {0x1145E, 0x1145E, 1},
		{0x11839, 0x1183A, 1}, {0x11930, 0x11930, 1}, {0x11935, 0x11935, 1}, {0x11938, 0x11938, 1},
		{0x1193D, 0x1193E, 1}, {0x11943, 0x11943, 1}, {0x119E0, 0x119E0, 1}, {0x11A34, 0x11A34, 1},
		{0x11A47, 0x11A47, 1}, {0x11A99, 0x11A99, 1}, {0x11D42, 0x11D42, 1}, {0x11D44, 0x11D45, 1},
		{0x11D97, 0x11D97, 1}, {0x11F41, 0x11F42, 1}, {0x16FF0, 0x16FF1, 1}, {0x1E08F, 0x1E08F, 1},
		{0x1E130, 0x1E136, 1}, {0x1E2AE, 0x1E2AE, 1}, {0x1E2EC, 0x1E2EF, 1}, {0x1E4EC, 0x1E4EF, 1},
	},
}

// clipIsSpace reports Unicode White_Space, what Oniguruma's \s matches (Go RE2's \s is ASCII only).
func clipIsSpace(r rune) bool {
	switch {
	case r == ' ', r >= '\t' && r <= '\r':
		return true
	case r < 0x85:
		return false
	case r == 0x85, r == 0xA0, r == 0x1680, r >= 0x2000 && r <= 0x200A, r == 0x2028, r == 0x2029,
		r == 0x202F, r == 0x205F, r == 0x3000:
		return true
	}
	return false
}

// clipIsLetter reports \p{L} as the Rust Split regex sees it.
func clipIsLetter(r rune) bool {
	return unicode.IsLetter(r) || (r >= 0x1C89 && unicode.Is(clipLetterExtra, r))
}

// clipIsNumber reports \p{N} as the Rust Split regex sees it.
func clipIsNumber(r rune) bool {
	return unicode.IsNumber(r) || (r >= 0x10D40 && unicode.Is(clipNumberExtra, r))
}

// clipLowerRune appends Rust's char::to_lowercase(r): the simple lowercase mapping, except that
// U+0130 İ becomes "i̇" (the only unconditional multi-rune lowercase mapping).
func clipLowerRune(dst []byte, r rune) []byte {
	if r == 0x130 {
		return append(dst, "i\u0307"...)
	}
	return utf8.AppendRune(dst, clipToLower(r))
}

// clipToLower is unicode.ToLower plus the mappings newer than Go's tables.
func clipToLower(r rune) rune {
	if r >= 0x1C89 && r <= 0x16EB8 {
		for _, e := range clipLowerExtra {
			if r >= e[0] && r <= e[1] {
				return r + e[2]
			}
		}
	}
	return unicode.ToLower(r)
}

// clipNFC returns the NFC form of s as the Rust library computes it (see clipNFCOpaque): the pieces
// between opaque code points are normalized separately. (norm's Append functions would normalize
// across the joint.)
func clipNFC(s string) string {
	if norm.NFC.IsNormalString(s) {
		return s
	}
	var out []byte
	start := 0
	for i, r := range s {
		if r >= 0x7FD && unicode.Is(clipNFCOpaque, r) {
			out = append(out, norm.NFC.String(s[start:i])...)
			out = utf8.AppendRune(out, r)
			start = i + utf8.RuneLen(r)
		}
	}
	if out == nil {
		return norm.NFC.String(s)
	}
	return string(append(out, norm.NFC.String(s[start:])...))
}
