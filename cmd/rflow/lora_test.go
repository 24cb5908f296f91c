package main

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/imagefile"
	"github.com/rflowrt/rflow/internal/safetensors"
	"github.com/rflowrt/rflow/internal/testmodels"
	"github.com/rflowrt/rflow/pipeline"
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

// TestLoRAHashes: A1111's "Lora hashes" value: names without ':' and ',', the first 12 hex digits.
func TestLoRAHashes(t *testing.T) {
	got := loraHashes([]pipeline.AppliedLoRA{{Name: "my:style,v2", Hash: "0123456789abcdef0123"}, {Name: "b", Hash: "fedcba9876543210"}})
	if want := "mystylev2: 0123456789ab, b: fedcba987654"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
	if loraHashes(nil) != "" {
		t.Error("no LoRAs: not empty")
	}
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
	ckpt := filepath.Join(t.TempDir(), "ckpt")
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
	dir := t.TempDir()
	for i, name := range []string{"flag", "tag"} {
		err := safetensors.WriteFile(filepath.Join(dir, name+".safetensors"), []safetensors.Tensor{
			safetensors.F32("transformer.proj_out.lora_A.weight", []int{1, in}, make([]float32, in)),
			safetensors.F32("transformer.proj_out.lora_B.weight", []int{out, 1}, append(make([]float32, out-1), float32(i+1))),
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
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
	var chunk struct {
		LoRAs []chunkLoRA `json:"loras"`
	}
	if err := json.Unmarshal([]byte(text["rflow"]), &chunk); err != nil || len(chunk.LoRAs) != 2 || chunk.LoRAs[1].Weight != 0.25 ||
		chunk.LoRAs[0].Modules != 1 || len(chunk.LoRAs[0].Hash) != 64 {
		t.Errorf("rflow chunk %s: %+v (%v)", text["rflow"], chunk.LoRAs, err)
	}
	code, _, errOut = runCLI("txt2img", "--ort-lib", lib, "-m", ckpt, "--lora-dir", dir, "-p", "<lora:nothere>", "-o", png, "-q")
	if code == 0 || !strings.Contains(errOut, filepath.Join(dir, "nothere.safetensors")) {
		t.Errorf("unknown <lora:nothere>: exit %d, %s", code, errOut)
	}
}
