package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/ort/orttest"
	"github.com/rflowrt/rflow/internal/testmodels"
)

// TestServeLoRAProcess: `rflow serve -m CKPT --lora style.safetensors:0.5` answers a prompt tagged
// <lora:style:0.5> with the image `rflow txt2img -m CKPT --lora style.safetensors:0.5` draws for the
// prompt without the tag, bit for bit; it lists the LoRA by file name; --lora-dir is a usage error.
func TestServeLoRAProcess(t *testing.T) {
	ckpt := filepath.Join(t.TempDir(), "ckpt")
	if err := testmodels.WriteCheckpoint(ckpt, testmodels.Options{Kind: testmodels.KindFluxDev, GeneratedVocab: true}); err != nil {
		t.Fatal(err)
	}
	lora := filepath.Join(t.TempDir(), "style.safetensors")
	if err := testmodels.WriteProjOutLoRA(ckpt, lora); err != nil {
		t.Fatal(err)
	}

	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"serve", "-m", ckpt, "--lora-dir", t.TempDir()}, &stdout, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), "--lora FILE:WEIGHT") {
		t.Errorf("serve --lora-dir: exit %d, %q; want 2 and --lora advice", code, stderr.String())
	}

	_, _, base, log := startServe(t, "-m", ckpt, "--lora", lora+":0.5")
	if !strings.Contains(log.String(), "with LoRAs <lora:style:0.5>") {
		t.Errorf("the start line does not name the LoRA:\n%s", log.String())
	}
	resp, err := http.Post(base+"/sdapi/v1/txt2img", "application/json", strings.NewReader(
		`{"prompt": "a cat <lora:style:0.5>", "seed": 3, "width": 64, "height": 64, "steps": 2}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var a struct{ Images []string }
	if err := json.Unmarshal(body, &a); err != nil || resp.StatusCode != 200 || len(a.Images) != 1 {
		t.Fatalf("txt2img with the tag: %d %v %s", resp.StatusCode, err, body)
	}
	png := filepath.Join(t.TempDir(), "cli.png")
	if code := run(t.Context(), []string{"txt2img", "--ort-lib", orttest.Library(), "-m", ckpt, "--lora", lora + ":0.5",
		"-p", "a cat", "--seed", "3", "-W", "64", "-H", "64", "--steps", "2", "-o", png, "-q"}, &stdout, &stderr); code != 0 {
		t.Fatalf("txt2img: exit %d: %s", code, stderr.String())
	}
	if !bytes.Equal(decodeB64(t, a.Images[0]).Pix, readNRGBA(t, png).Pix) {
		t.Error("the served image differs from rflow txt2img's with the same --lora and the prompt without the tag")
	}
	var list []map[string]any
	resp, err = http.Get(base + "/sdapi/v1/loras")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || len(list) != 1 || list[0]["path"] != "style.safetensors" {
		t.Errorf("loras: %v %v", err, list)
	}
}
