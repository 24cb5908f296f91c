package textenc

import (
	"testing"
	"unicode/utf8"
)

// FuzzT5Encode: Encode never panics, every id is in range, the ids end with EOS, invalid UTF-8
// encodes like its U+FFFD reading, and EncodePadded has the requested length.
func FuzzT5Encode(f *testing.F) {
	for _, s := range []string{"", "a photo of a cat", "x<extra_id_1>y", "  a  \t\n", "Ａ\u0301 e\u0301\u0301\u0301",
		"👨‍👩‍👧‍👦🇫🇷🇩", "----------------------------------------------", "\xff\xfe<\x00>", "<unk></s><pad>", "\r\n\u200b\u3000"} {
		f.Add(s)
	}
	sd3, flux := t5For(f, "sd3/tokenizer.json"), t5For(f, "flux/tokenizer.json")
	f.Fuzz(func(t *testing.T, s string) {
		for _, tok := range []*T5Tokenizer{sd3, flux} {
			ids := tok.Encode(s)
			if len(ids) == 0 || ids[len(ids)-1] != 1 {
				t.Fatalf("Encode(%q) = %v: does not end with EOS", s, ids)
			}
			for _, id := range ids {
				if id < 0 || id >= int64(tok.VocabSize()) {
					t.Fatalf("Encode(%q): id %d out of range", s, id)
				}
			}
			if !utf8.ValidString(s) {
				if v := tok.Encode(validRunes(s)); len(v) != len(ids) {
					t.Fatalf("Encode(%q) differs from its U+FFFD reading", s)
				}
			}
			if p := tok.EncodePadded(s, 16); len(p) != 16 || (len(ids) <= 16 && p[len(ids)-1] != 1) {
				t.Fatalf("EncodePadded(%q, 16) = %v", s, p)
			}
		}
	})
}
