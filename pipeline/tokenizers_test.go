package pipeline

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/testmodels"
	"github.com/rflowrt/rflow/textenc"
)

// zwspText is where the slow CLIPTokenizer (diffusers' default) and the fast one disagree: the slow one
// drops U+200B, making "ab" one word; the fast one keeps it as a word of its own.
const zwspText = "a\u200bb"

// TestLoadModelTokenizerFollowsModelIndex: a model folder's CLIP tokenizer follows the class
// model_index.json names (CLIPTokenizer: slow rules), as the pipeline loads it, and that is the
// tokenizer Open keeps for Generate.
func TestLoadModelTokenizerFollowsModelIndex(t *testing.T) {
	dir := inspectFixture(t, testmodels.Options{Kind: testmodels.KindSD3})
	slow, err := LoadModelTokenizer(dir, "tokenizer")
	if err != nil {
		t.Fatal(err)
	}
	fast, err := textenc.LoadCLIPTokenizer(filepath.Join(dir, "tokenizer"), textenc.CLIPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(slow.Encode(zwspText)); n != 3 {
		t.Errorf("CLIPTokenizer folder: %q gives %d ids, want 3 (BOS, ab, EOS: the slow rules)", zwspText, n)
	}
	if n := len(fast.Encode(zwspText)); n != 5 {
		t.Fatalf("fast rules: %q gives %d ids, want 5 (the test text no longer separates the two)", zwspText, n)
	}
	m, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tokenizer", "tokenizer_2", "tokenizer_3"} {
		want, err := LoadModelTokenizer(dir, name)
		if err != nil {
			t.Fatal(err)
		}
		got := m.loadedTokenizers[name]
		if got == nil || !slices.Equal(got.Encode(zwspText), want.Encode(zwspText)) {
			t.Errorf("%s: Open kept %T, which tokenizes differently from LoadModelTokenizer", name, got)
		}
	}
	if _, ok := m.loadedTokenizers["tokenizer_3"].(*textenc.T5Tokenizer); !ok {
		t.Errorf("tokenizer_3 of SD3 is %T, want T5", m.loadedTokenizers["tokenizer_3"])
	}

	index := filepath.Join(dir, "model_index.json")
	data, err := os.ReadFile(index)
	if err != nil {
		t.Fatal(err)
	}
	fastIndex := strings.Replace(string(data), `"CLIPTokenizer"`, `"CLIPTokenizerFast"`, 1)
	mustWrite(t, index, fastIndex)
	tok, err := LoadModelTokenizer(dir, "tokenizer")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tok.Encode(zwspText)); n != 5 {
		t.Errorf("CLIPTokenizerFast folder: %q gives %d ids, want 5 (the fast rules)", zwspText, n)
	}
	if _, err := LoadModelTokenizer(dir, "tokenizer_4"); err == nil {
		t.Error("tokenizer_4 of an SD3 folder loaded")
	}
}
