package main

import (
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/testmodels"
)

// TestTokenizeModelUsesPipelineRules: `tokenize --model` gives the ids txt2img feeds the encoder. The
// SD3 folder names the slow CLIPTokenizer, which drops U+200B ("a\u200bb" is one word, "ab"); the fast
// rules would keep it as a word of its own.
func TestTokenizeModelUsesPipelineRules(t *testing.T) {
	needSharedTokenizers(t)
	dir := testmodels.Cached(t, testmodels.Options{Kind: testmodels.KindSD3, Size: testmodels.SizeTiny})
	code, out, errOut := runCLI("tokenize", "--tokenizer", "clip", "--model", dir, "--text", "a\u200bb", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Count(out, ",") != 2 {
		t.Errorf("slow CLIPTokenizer rules give BOS, ab, EOS; got %s", out)
	}
	code, _, errOut = runCLI("tokenize", "--tokenizer", "clip", "--model", dir, "--slow", "--text", "x")
	if code != 2 || !strings.Contains(errOut, "model_index.json") {
		t.Errorf("--slow with --model: exit %d, %q; want a usage error", code, errOut)
	}
}
