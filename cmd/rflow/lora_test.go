package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/imagefile"
	"github.com/rflowrt/rflow/internal/safetensors"
	"github.com/rflowrt/rflow/internal/testmodels"
)

func TestParseLoRA(t *testing.T) {
	for _, c := range []struct {
		in     string
		path   string
		weight float64
	}{
		{"a.safetensors", "a.safetensors", 1},
		{"a.safetensors:0.8", "a.safetensors", 0.8},
		{"dir/a:b.safetensors:-1.5", "dir/a:b.safetensors", -1.5},
		{"dir/a:b.safetensors", "dir/a:b.safetensors", 1},
	} {
		got, err := parseLoRA(c.in)
		if err != nil || got.Path != c.path || got.Weight != c.weight {
			t.Errorf("%q: %+v, %v", c.in, got, err)
		}
	}
	for _, bad := range []string{"a.safetensors:nan", "a.safetensors:inf", ":0.5"} {
		if _, err := parseLoRA(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestLoRAFlag: --lora is repeatable and keeps each FILE:WEIGHT.
func TestLoRAFlag(t *testing.T) {
	var f loraFlag
	f.Set("x.safetensors:0.5")
	f.Set("y.safetensors")
	if s := f.String(); !strings.Contains(s, "x.safetensors:0.5") || len(f) != 2 {
		t.Errorf("flag %q", s)
	}
}

// TestLoRAMetadata: --lora and a prompt's <lora:NAME:WEIGHT> are merged into a checkpoint; the image's
// parameters carry A1111's "Lora hashes" and the rflow chunk the LoRA list; the tag leaves the prompt.
func TestLoRAMetadata(t *testing.T) {
	lib := needORT(t)
	ckpt, dir := loraCheckpoint(t)
	png := filepath.Join(t.TempDir(), "l.png")
	code, _, errOut := runCLI("txt2img", "--ort-lib", lib, "-m", ckpt, "--lora", filepath.Join(dir, "flag.safetensors")+":0.5",
		"--lora-dir", dir, "-p", "a cat <lora:tag:0.25>", "-s", "1", "--steps", "1", "-W", "64", "-H", "64", "-o", png, "-q")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	text, err := imagefile.ReadPNGText(png)
	if err != nil {
		t.Fatal(err)
	}
	p, err := imagefile.ParseText(text["parameters"])
	if err != nil {
		t.Fatal(err)
	}
	hashes := ""
	for _, kv := range p.Extra {
		if kv.Key == "Lora hashes" {
			hashes = kv.Value
		}
	}
	if p.Prompt != "a cat " || !regexp.MustCompile(`^flag: [0-9a-f]{12}, tag: [0-9a-f]{12}$`).MatchString(hashes) {
		t.Errorf("parameters %q: prompt %q, Lora hashes %q", text["parameters"], p.Prompt, hashes)
	}
	chunk := chunkOf(t, png)
	if len(chunk.LoRAs) != 2 || chunk.LoRAs[1].Weight != 0.25 || chunk.LoRAs[0].Modules != 1 || len(chunk.LoRAs[0].Hash) != 64 {
		t.Errorf("rflow chunk: %+v", chunk.LoRAs)
	}
	code, _, errOut = runCLI("txt2img", "--ort-lib", lib, "-m", ckpt, "--lora-dir", dir, "-p", "<lora:nothere>", "-o", png, "-q")
	if code == 0 || !strings.Contains(errOut, filepath.Join(dir, "nothere.safetensors")) {
		t.Errorf("unknown <lora:nothere>: exit %d, %s", code, errOut)
	}
}

type loraChunk struct {
	Prompt string      `json:"prompt"`
	LoRAs  []chunkLoRA `json:"loras"`
}

func chunkOf(t *testing.T, png string) loraChunk {
	t.Helper()
	text, err := imagefile.ReadPNGText(png)
	if err != nil {
		t.Fatal(err)
	}
	var c loraChunk
	if err := json.Unmarshal([]byte(text["rflow"]), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestBatchItemLoRAs: a manifest's per-item loras and prompt tags run each item on its own compiled model;
// the others keep the run's.
func TestBatchItemLoRAs(t *testing.T) {
	lib := needORT(t)
	ckpt, dir := loraCheckpoint(t)
	manifest := filepath.Join(t.TempDir(), "m.jsonl")
	lines := `{"id": "plain", "prompt": "a cat"}
{"id": "own", "prompt": "a cat", "loras": ["` + filepath.Join(dir, "flag.safetensors") + `:0.5"]}
{"id": "tag", "prompt": "a cat <lora:tag:0.25>"}
{"id": "plain2", "prompt": "a dog"}
`
	if err := os.WriteFile(manifest, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	code, _, errOut := runCLI("batch", "--ort-lib", lib, "-m", ckpt, "--lora-dir", dir, "--manifest", manifest, "--out", out,
		"--steps", "1", "-W", "64", "-H", "64", "-q")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := map[string]string{"plain": "", "own": "flag", "tag": "tag", "plain2": ""}
	for id, name := range want {
		c := chunkOf(t, filepath.Join(out, id+".png"))
		got := ""
		if len(c.LoRAs) == 1 {
			got = c.LoRAs[0].Name
		}
		if got != name || len(c.LoRAs) > 1 || strings.Contains(c.Prompt, "<lora") {
			t.Errorf("%s: prompt %q, LoRAs %+v; want %q", id, c.Prompt, c.LoRAs, name)
		}
	}
}

// loraCheckpoint writes a tiny FLUX checkpoint and two one-module LoRAs for it, flag.safetensors and
// tag.safetensors, in a folder.
func loraCheckpoint(t *testing.T) (ckpt, dir string) {
	t.Helper()
	ckpt = filepath.Join(t.TempDir(), "ckpt")
	if err := testmodels.WriteCheckpoint(ckpt, testmodels.Options{Kind: testmodels.KindFluxDev, GeneratedVocab: true}); err != nil {
		t.Fatal(err)
	}
	r, err := safetensors.Open(filepath.Join(ckpt, "transformer", "diffusion_pytorch_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	info, _ := r.Info("proj_out.weight")
	r.Close()
	out, in := int(info.Shape[0]), int(info.Shape[1])
	dir = t.TempDir()
	for i, name := range []string{"flag", "tag"} {
		err := safetensors.WriteFile(filepath.Join(dir, name+".safetensors"), []safetensors.Tensor{
			safetensors.F32("transformer.proj_out.lora_A.weight", []int{1, in}, make([]float32, in)),
			safetensors.F32("transformer.proj_out.lora_B.weight", []int{out, 1}, append(make([]float32, out-1), float32(i+1))),
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	return ckpt, dir
}

func TestPromptsLoRAs(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.safetensors"), []byte("x"), 0o644)
	c := checkpointFlags{loraDir: dir, loras: loraFlag{{Path: "f.safetensors", Weight: 1}}}
	ps := []string{"x <lora:a:0.5>", "y <lora:a:0.5>"}
	if err := c.promptsLoRAs(ps); err != nil || ps[0] != "x " || ps[1] != "y " || len(c.loras) != 2 || c.loras[1].Weight != 0.5 {
		t.Errorf("%v: %q, %+v", err, ps, c.loras)
	}
	c = checkpointFlags{loraDir: dir}
	if err := c.promptsLoRAs([]string{"x <lora:a:0.5>", "y"}); err == nil {
		t.Error("prompts with other LoRAs accepted")
	}
}
