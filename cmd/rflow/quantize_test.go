package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/testmodels"
)

// Bad flags are usage errors (exit 2) found before anything is read.
func TestQuantizeUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--out", "/nonexistent-out", "--weights", "q8"}, "-m ONNX_DIR is required"},
		{[]string{"-m", "/nonexistent", "--weights", "q8"}, "--out DIR is required"},
		{[]string{"-m", "/nonexistent", "--out", "/nonexistent-out"}, "--weights is required"},
		{[]string{"-m", "/nonexistent", "--out", "/nonexistent-out", "--weights", "q3"}, `unknown weight kind "q3" (valid: fp32, int8, q8, q4, q4s)`},
		{[]string{"-m", "/nonexistent", "--out", "/nonexistent-out", "--weights", "fp16"}, `unknown weight kind "fp16"`},
		{[]string{"-m", "/nonexistent", "--out", "/nonexistent-out", "--weights", "fp32"}, "add --fuse-attention"},
	} {
		code, _, errOut := runCLI(append([]string{"quantize"}, c.args...)...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and %q", c.args, code, errOut, c.want)
		}
	}
}

// Quantizing the tiny SD3 export prints one line per component and the output folder; quantizing
// the result again is refused in one line with advice, and writes nothing.
func TestQuantizeFolderCLI(t *testing.T) {
	src := testmodels.Cached(t, testmodels.Options{Kind: testmodels.KindSD3})
	dir := t.TempDir()
	dst := filepath.Join(dir, "q8")
	code, out, errOut := runCLI("quantize", "-m", src, "--out", dst, "--weights", "q8", "--components", "transformer,text_encoder")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"transformer: ", "weight MatMuls quantized to q8", "MiB → ", "wrote " + dst} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dst, "transformer", "model.onnx_data")); err != nil {
		t.Error(err)
	}
	again := filepath.Join(dir, "again")
	code, _, errOut = runCLI("quantize", "-m", dst, "--out", again, "--weights", "int8", "-q")
	if code != 1 || !strings.Contains(errOut, "already quantized") || !strings.Contains(errOut, "original float export") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("second quantization: exit %d, stderr %q", code, errOut)
	}
	if _, err := os.Stat(again); !os.IsNotExist(err) {
		t.Errorf("refused run left %s: %v", again, err)
	}
}
