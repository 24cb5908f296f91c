package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/testmodels"
)

func TestInspectGoodFolder(t *testing.T) {
	dir := testmodels.Cached(t, testmodels.Options{Kind: testmodels.KindFluxDev, ExternalData: true})
	code, out, errOut := runCLI("inspect", "--model", dir)
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"pipeline  FluxPipeline (family flux)", "transformer     transformer/model.onnx",
		"with external data transformer/model.onnx_data", "in  guidance", "float32[batch_size]", "int64[packed_height_width,3]",
		"out out_hidden_states", "tokenizer_2     " + filepath.Join(dir, "tokenizer_2"), "problems: none"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestInspectMissingTransformer(t *testing.T) {
	dir := t.TempDir()
	if err := testmodels.Write(dir, testmodels.Options{Kind: testmodels.KindSD3NoT5}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "transformer", "model.onnx")); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI("inspect", "-m", dir)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(out, "transformer/model.onnx  (missing)") ||
		!strings.Contains(out, "problems (1):\n  transformer/model.onnx: missing: the export must contain transformer/model.onnx") {
		t.Errorf("output does not name the missing file:\n%s", out)
	}
	if strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "1 problem found in "+dir) {
		t.Errorf("stderr %q", errOut)
	}
	code, out, _ = runCLI("inspect", "--model", dir, "--json")
	var rep struct {
		Family   string `json:"family"`
		Problems []struct {
			Component, File, Message string
		} `json:"problems"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 {
		t.Fatalf("--json: exit %d, %v\n%s", code, err, out)
	}
	if rep.Family != "sd3" || len(rep.Problems) != 1 || rep.Problems[0].File != "transformer/model.onnx" || rep.Problems[0].Component != "transformer" {
		t.Errorf("--json report %+v", rep)
	}
}

func TestInspectUsage(t *testing.T) {
	for _, args := range [][]string{{"inspect"}, {"inspect", "--model", t.TempDir(), "extra"}, {"inspect", "--bogus"}} {
		if code, _, errOut := runCLI(args...); code != 2 || !strings.Contains(errOut, "'rflow inspect --help'") {
			t.Errorf("%q: exit %d, %q", args, code, errOut)
		}
	}
	code, out, _ := runCLI("inspect", "--help")
	if code != 0 || !strings.Contains(out, "--json") {
		t.Errorf("--help: exit %d\n%s", code, out)
	}
	if code, _, errOut := runCLI("inspect", "--model", filepath.Join(t.TempDir(), "absent")); code != 1 || !strings.Contains(errOut, "1 problem") {
		t.Errorf("absent folder: exit %d, %q", code, errOut)
	}
}
