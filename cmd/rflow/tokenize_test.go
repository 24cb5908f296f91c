package main

import (
	"github.com/rflowrt/rflow/internal/testmodels"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sharedTokenizers = "../../../shared/tokenizers"

func needSharedTokenizers(t *testing.T) {
	if _, err := os.Stat(sharedTokenizers); err != nil {
		t.Skipf("../shared is absent (%v): the real tokenizer files are needed", err)
	}
}

func TestTokenizeDoneWhen(t *testing.T) {
	needSharedTokenizers(t)
	for _, c := range []struct{ kind, dir, want string }{
		{"clip", "clip", `{"ids":[49406,320,1125,539,320,2368,49407]}`},
		{"t5", "t5", `{"ids":[3,9,1202,13,3,9,1712,1]}`},
	} {
		code, out, errOut := runCLI("tokenize", "--tokenizer", c.kind, "--dir", filepath.Join(sharedTokenizers, c.dir), "--text", "a photo of a cat", "--json")
		if code != 0 || strings.TrimSpace(out) != c.want {
			t.Errorf("%s: exit %d, got %q (stderr %q), want %s", c.kind, code, out, errOut, c.want)
		}
	}
}

func TestTokenizePad(t *testing.T) {
	needSharedTokenizers(t)
	code, out, _ := runCLI("tokenize", "--tokenizer", "clip", "--dir", filepath.Join(sharedTokenizers, "clip"), "--text", "cat", "--pad", "--json")
	if code != 0 || strings.Count(out, ",") != 76 || !strings.HasSuffix(strings.TrimSpace(out), "49407]}") {
		t.Fatalf("clip --pad: want 77 ids ending in the pad id 49407, got %s", out)
	}
	code, out, _ = runCLI("tokenize", "--tokenizer", "t5", "--dir", filepath.Join(sharedTokenizers, "t5"), "--text", "cat", "--pad", "--max-length", "5", "--json")
	if code != 0 || strings.TrimSpace(out) != `{"ids":[1712,1,0,0,0]}` {
		t.Fatalf("t5 --pad --max-length 5: %s", out)
	}
}

func TestTokenizeErrors(t *testing.T) {
	needSharedTokenizers(t)
	bad := t.TempDir()
	vocab, err := os.ReadFile(filepath.Join(sharedTokenizers, "clip", "vocab.json"))
	if err != nil {
		t.Fatal(err)
	}
	merges, _ := os.ReadFile(filepath.Join(sharedTokenizers, "clip", "merges.txt"))
	_ = os.WriteFile(filepath.Join(bad, "vocab.json"), vocab[:len(vocab)/2], 0o644)
	_ = os.WriteFile(filepath.Join(bad, "merges.txt"), merges, 0o644)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--tokenizer", "clip", "--dir", bad, "--text", "x"}, 1, "vocab.json: unexpected end of JSON input (the file is not valid JSON: it is probably truncated"},
		{[]string{"--tokenizer", "bpe", "--dir", bad, "--text", "x"}, 2, "clip, clip-g or t5"},
		{[]string{"--tokenizer", "clip", "--text", "x"}, 2, "exactly one of --model"},
		{[]string{"--tokenizer", "t5", "--dir", t.TempDir(), "--text", "x"}, 1, "neither tokenizer.json nor spiece.model"},
	} {
		code, _, errOut := runCLI(append([]string{"tokenize"}, c.args...)...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d (want %d), stderr %q (want %q)", c.args, code, c.code, errOut, c.want)
		}
	}
}

func TestTokenizeFromModelFolder(t *testing.T) {
	needSharedTokenizers(t)
	dir := testmodels.Cached(t, testmodels.Options{Kind: testmodels.KindSD3, Size: testmodels.SizeTiny})
	code, out, errOut := runCLI("tokenize", "--tokenizer", "clip-g", "--model", dir, "--text", "a cat!", "--pad", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	// CLIP-G (tokenizer_2) pads with "!" = 0, and its "!" is that special token too.
	if !strings.HasPrefix(out, `{"ids":[49406,320,2368,0,49407,0,0`) || strings.Count(out, ",") != 76 {
		t.Fatalf("clip-g padded ids: %s", out)
	}
	code, out, _ = runCLI("tokenize", "--tokenizer", "t5", "--model", dir, "--text", "a cat", "--pad", "--json")
	if code != 0 || strings.Count(out, ",") != 255 {
		t.Fatalf("t5 from an SD3 folder must pad to 256: %s", out)
	}
	fluxDir := testmodels.Cached(t, testmodels.Options{Kind: testmodels.KindFluxSchnell, Size: testmodels.SizeTiny})
	if code, _, errOut := runCLI("tokenize", "--tokenizer", "clip-g", "--model", fluxDir, "--text", "x"); code != 1 || !strings.Contains(errOut, "no clip-g tokenizer") {
		t.Fatalf("clip-g on FLUX: exit %d, %q", code, errOut)
	}
}
