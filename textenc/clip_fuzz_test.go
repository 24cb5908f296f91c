package textenc

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// FuzzCLIPEncode: any byte string encodes without panicking, to ids in [0, VocabSize) that start with
// BOS and end with EOS, fast and slow; EncodePadded is Encode truncated and padded to 77.
func FuzzCLIPEncode(f *testing.F) {
	for _, s := range []string{"", "a photo of a cat", "<|endoftext|>", "ΟΔΟΣ İ ß ﬁ", "中文 한국어 かな", "👨‍👩‍👧‍👦 🏳️‍🌈",
		"e\u0301\u0316\U0001e08f", "a\xffb\xe4\xb8", "it's (word:1.2) xxxxx -----", "\u200b\ufeff\u00a0\u3000\u2028"} {
		f.Add(s)
	}
	dir := filepath.Join(clipTokShared, "clip")
	if _, err := os.Stat(filepath.Join(dir, "tokenizer.json")); err != nil {
		f.Logf("shared tokenizer files not available (%v): fuzzing the small test vocabulary", err)
		dir = clipTokSmallFolder(f)
	}
	var toks []*CLIPTokenizer
	for _, slow := range []bool{false, true} {
		tok, err := LoadCLIPTokenizer(dir, CLIPOptions{SlowCompat: slow})
		if err != nil {
			f.Fatal(err)
		}
		toks = append(toks, tok)
	}
	f.Fuzz(func(t *testing.T, text string) {
		for _, tok := range toks {
			ids := tok.Encode(text)
			if len(ids) < 2 || ids[0] != tok.BOS() || ids[len(ids)-1] != tok.EOS() {
				t.Fatalf("%q: %v", text, ids)
			}
			for _, id := range ids {
				if id < 0 || id >= int64(tok.VocabSize()) {
					t.Fatalf("%q: id %d out of range", text, id)
				}
			}
			padded := tok.EncodePadded(text, 0)
			n := min(len(ids)-1, 76)
			if len(padded) != 77 || !slices.Equal(padded[:n], ids[:n]) || padded[n] != tok.EOS() {
				t.Fatalf("%q: padded %v, encode %v", text, padded, ids)
			}
		}
	})
}
