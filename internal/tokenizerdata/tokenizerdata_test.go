package tokenizerdata

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rflowrt/rflow/textenc"
)

// The embedded files are the published artifacts (sha256 from files/SOURCES.md).
func TestEmbeddedHashes(t *testing.T) {
	want := map[string]string{
		"clip/vocab.json":                   "e089ad92ba36837a0d31433e555c8f45fe601ab5c221d4f607ded32d9f7a4349",
		"clip/merges.txt":                   "9fd691f7c8039210e0fced15865466c65820d09b63988b0174bfe25de299051a",
		"t5/spiece.model":                   "d60acb128cf7b7f2536e8f38a5b18a05535c9e14c7a355904270e15b0945ea86",
		"clip/clip_g/tokenizer_config.json": "e70eb3e2b85a508e32bb81c32c13fc3f2b015548ca469b94627c2f32e445cba1",
		"t5/flux/tokenizer_config.json":     "c1aaab7805b1b4dff4cdf2022f1bfee7534bfde49f8cd60baea5f929601580b9",
	}
	for p, h := range want {
		data, err := files.ReadFile("files/" + p)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != h {
			t.Errorf("%s: sha256 %s, want %s", p, got, h)
		}
	}
}

func TestWriteFolder(t *testing.T) {
	for k, entries := range layout {
		dir := filepath.Join(t.TempDir(), string(k))
		if err := WriteFolder(dir, k); err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if st, err := os.Stat(filepath.Join(dir, e[0])); err != nil || st.Size() == 0 {
				t.Errorf("%s: %s not written (%v)", k, e[0], err)
			}
		}
	}
	if err := WriteFolder(t.TempDir(), "nope"); err == nil {
		t.Error("unknown kind accepted")
	}
}

// The written folders load in rflow's tokenizers and give the published ids (shared/tokenizers/reference-ids.json:
// "a photo of a cat").
func TestFoldersTokenize(t *testing.T) {
	dir := t.TempDir()
	for _, k := range []Kind{CLIPL, CLIPG, T5SD3, T5Flux} {
		if err := WriteFolder(filepath.Join(dir, string(k)), k); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []Kind{CLIPL, CLIPG} {
		tok, err := textenc.LoadCLIPTokenizer(filepath.Join(dir, string(k)), textenc.CLIPOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := tok.Encode("a photo of a cat"); !slices.Equal(got, []int64{49406, 320, 1125, 539, 320, 2368, 49407}) {
			t.Errorf("%s ids %v", k, got)
		}
	}
	for _, k := range []Kind{T5SD3, T5Flux} {
		tok, err := textenc.LoadT5Tokenizer(filepath.Join(dir, string(k)), textenc.T5Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := tok.Encode("a photo of a cat"); !slices.Equal(got, []int64{3, 9, 1202, 13, 3, 9, 1712, 1}) {
			t.Errorf("%s ids %v", k, got)
		}
	}
}
