package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/testmodels"
)

func runArgs(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestWrites(t *testing.T) {
	out := filepath.Join(t.TempDir(), "fx")
	code, stdout, stderr := runArgs("--kind", "flux-schnell", "--ids", "int32", "--precision", "fp16",
		"--external-data", "--seed", "5", "--generated-vocab", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"wrote flux-schnell (tiny, int32 ids, float16 I/O, external data true, seed 5)",
		"transformer/model.onnx_data", "text_encoder_2/model.onnx_data", "vae_decoder/model.onnx", "model_index.json"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if !regexp.MustCompile(`(?m)^\d+ files, [0-9.]+ MB in [0-9.]+s$`).MatchString(stdout) {
		t.Errorf("no summary line with the time taken:\n%s", stdout)
	}
	ref := t.TempDir()
	o := testmodels.Options{Kind: testmodels.KindFluxSchnell, IDs: onnx.Int32, Precision: onnx.Float16, ExternalData: true, Seed: 5, GeneratedVocab: true}
	if err := testmodels.Write(ref, o); err != nil {
		t.Fatal(err)
	}
	h1, _ := testmodels.FolderHash(out)
	h2, _ := testmodels.FolderHash(ref)
	if h1 != h2 || h1 == "" {
		t.Errorf("mkfixture wrote %s, Write with the same options %s", h1, h2)
	}

	// an existing non-empty folder is refused, then replaced with --force (other files stay)
	if err := os.WriteFile(filepath.Join(out, "notes.txt"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runArgs("--kind", "sd3", "--out", out)
	if code != 1 || !strings.Contains(stderr, "not empty") || !strings.Contains(stderr, "--force") {
		t.Errorf("non-empty --out: exit %d, %q", code, stderr)
	}
	if code, _, stderr = runArgs("--kind", "sd3-no-t5", "--generated-vocab", "--out", out, "--force"); code != 0 {
		t.Fatalf("--force: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "notes.txt")); err != nil {
		t.Error("--force removed a file that is not part of a model folder")
	}
	if _, err := os.Stat(filepath.Join(out, "transformer", "model.onnx_data")); err == nil {
		t.Error("--force left the previous folder's external data behind")
	}
}

func TestBadFlags(t *testing.T) {
	out := t.TempDir()
	for _, args := range [][]string{
		{"--out", out},
		{"--kind", "sdxl", "--out", out},
		{"--kind", "sd3"},
		{"--kind", "sd3", "--size", "huge", "--out", out},
		{"--kind", "sd3", "--ids", "int16", "--out", out},
		{"--kind", "sd3", "--precision", "bf16", "--out", out},
		{"--kind", "sd3", "--seed", "-1", "--out", out},
		{"--kind", "sd3", "--bogus", "--out", out},
		{"--kind", "sd3", "--out", out, "extra"},
	} {
		code, stdout, stderr := runArgs(args...)
		if code != 2 || stdout != "" || !strings.HasPrefix(stderr, "mkfixture: ") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and a message", args, code, stdout, stderr)
		}
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("bad flags wrote %d entries", len(entries))
	}
	if code, _, stderr := runArgs("--help"); code != 0 || !strings.Contains(stderr, "--external-data") {
		t.Errorf("--help: exit %d, %q", code, stderr)
	}
}

// TestWritesCheckpoint: --checkpoint writes WriteCheckpoint's folder (the same bytes), --bf16 its BF16
// form; export-only flags are refused with it.
func TestWritesCheckpoint(t *testing.T) {
	out := filepath.Join(t.TempDir(), "ck")
	code, stdout, stderr := runArgs("--kind", "flux-dev", "--checkpoint", "--bf16", "--seed", "3", "--generated-vocab", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"wrote flux-dev checkpoint (tiny, BF16 weights, seed 3)", "transformer/diffusion_pytorch_model.safetensors",
		"text_encoder_2/model.safetensors", "vae/diffusion_pytorch_model.safetensors", "vae/config.json"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	ref := t.TempDir()
	o := testmodels.Options{Kind: testmodels.KindFluxDev, BF16Weights: true, Seed: 3, GeneratedVocab: true}
	if err := testmodels.WriteCheckpoint(ref, o); err != nil {
		t.Fatal(err)
	}
	h1, _ := testmodels.FolderHash(out)
	h2, _ := testmodels.FolderHash(ref)
	if h1 != h2 || h1 == "" {
		t.Errorf("mkfixture --checkpoint wrote %s, WriteCheckpoint with the same options %s", h1, h2)
	}
	for _, flag := range [][]string{{"--ids", "int32"}, {"--precision", "fp16"}, {"--external-data"}} {
		args := append([]string{"--kind", "sd3", "--checkpoint", "--out", filepath.Join(t.TempDir(), "x")}, flag...)
		if code, _, stderr := runArgs(args...); code != 2 || !strings.Contains(stderr, "not to --checkpoint") {
			t.Errorf("%v: exit %d, %q", flag, code, stderr)
		}
	}
}
