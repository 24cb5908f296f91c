package textenc

import (
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// clipSlowPrepass is what diffusers' slow CLIPTokenizer does before its regex when ftfy is not
// installed: transformers' BasicTokenizer(do_lower_case=True, strip_accents=False,
// do_split_on_punc=False).tokenize, the tokens joined with " ". It differs from the fast pipeline in
// three ways: characters of category C* (except \t \n \r) and U+FFFD are dropped, CJK ideographs get
// spaces around them, and lowercasing is Python's str.lower() per whitespace token (final sigma ς).
// Unicode tables are Go's (15.0), not those of the Python that runs diffusers.
func clipSlowPrepass(s string) string {
	b := make([]byte, 0, len(s)+8)
	for _, r := range s {
		switch {
		case r == 0 || r == utf8.RuneError || clipPyIsControl(r):
		case r == ' ' || r == '\t' || r == '\n' || r == '\r' || unicode.Is(unicode.Zs, r):
			b = append(b, ' ')
		case clipIsCJK(r):
			b = append(b, ' ')
			b = utf8.AppendRune(b, r)
			b = append(b, ' ')
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	b = norm.NFC.Append(nil, b...)
	out := make([]byte, 0, len(b))
	var word []rune
	flush := func() {
		if len(word) == 0 {
			return
		}
		if len(out) > 0 {
			out = append(out, ' ')
		}
		out = clipPyLower(out, word)
		word = word[:0]
	}
	for _, r := range string(b) {
		if clipPyIsSpace(r) {
			flush()
		} else {
			word = append(word, r)
		}
	}
	flush()
	return string(out)
}

// clipPyIsControl is BasicTokenizer's _is_control: category C* (Cc, Cf, Co, Cs, unassigned) except
// \t \n \r.
func clipPyIsControl(r rune) bool {
	if r == '\t' || r == '\n' || r == '\r' {
		return false
	}
	if r < utf8.RuneSelf {
		return r < ' ' || r == 0x7F
	}
	return unicode.Is(unicode.C, r) // Go's C includes the unassigned code points (Cn)
}

// clipPyIsSpace is Python's str.isspace (what str.split() splits on).
func clipPyIsSpace(r rune) bool {
	return clipIsSpace(r) || (r >= 0x1C && r <= 0x1F)
}

// clipIsCJK is BasicTokenizer's _is_chinese_char.
func clipIsCJK(r rune) bool {
	switch {
	case r < 0x3400:
		return false
	case r >= 0x4E00 && r <= 0x9FFF, r >= 0x3400 && r <= 0x4DBF, r >= 0xF900 && r <= 0xFAFF,
		r >= 0x20000 && r <= 0x2A6DF, r >= 0x2A700 && r <= 0x2B73F, r >= 0x2B740 && r <= 0x2B81F,
		r >= 0x2B820 && r <= 0x2CEAF, r >= 0x2F800 && r <= 0x2FA1F:
		return true
	}
	return false
}

// clipPyLower appends Python's str.lower() of word: the full lowercase mapping, with U+03A3 Σ
// becoming ς in the Final_Sigma context (CPython's handle_capital_sigma) and σ otherwise.
func clipPyLower(dst []byte, word []rune) []byte {
	for i, r := range word {
		if r == 0x3A3 {
			r = 0x3C3
			if clipFinalSigma(word, i) {
				r = 0x3C2
			}
			dst = utf8.AppendRune(dst, r)
			continue
		}
		dst = clipLowerRune(dst, r)
	}
	return dst
}

// clipFinalSigma: \p{cased}\p{case-ignorable}* Σ !(\p{case-ignorable}*\p{cased}).
func clipFinalSigma(w []rune, i int) bool {
	j := i - 1
	for j >= 0 && clipCaseIgnorable(w[j]) {
		j--
	}
	if j < 0 || !clipCased(w[j]) {
		return false
	}
	j = i + 1
	for j < len(w) && clipCaseIgnorable(w[j]) {
		j++
	}
	return j == len(w) || !clipCased(w[j])
}

// clipCased is the Unicode Cased property.
func clipCased(r rune) bool {
	return unicode.In(r, unicode.Lu, unicode.Ll, unicode.Lt, unicode.Other_Lowercase, unicode.Other_Uppercase)
}

// clipCaseIgnorable is the Unicode Case_Ignorable property: Mn, Me, Cf, Lm, Sk and Word_Break
// MidLetter, MidNumLet, Single_Quote.
func clipCaseIgnorable(r rune) bool {
	switch r {
	case '\'', '.', ':', 0xB7, 0x387, 0x55F, 0x5F4, 0x2018, 0x2019, 0x2024, 0x2027, 0xFE13, 0xFE52,
		0xFE55, 0xFF07, 0xFF0E, 0xFF1A:
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}
