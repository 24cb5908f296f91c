package main

import (
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/rng"
	"github.com/rflowrt/rflow/internal/safetensors"
)

// readLatents reads a --save-latents file's noise and latent values.
func readLatents(t *testing.T, path string) (noise, latent []float32, meta map[string]string) {
	t.Helper()
	f, err := safetensors.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, ok1 := f.Tensor("noise")
	l, ok2 := f.Tensor("latent")
	if !ok1 || !ok2 {
		t.Fatalf("%s: no noise or latent tensor", path)
	}
	nv, err1 := n.Float32s()
	lv, err2 := l.Float32s()
	if err1 != nil || err2 != nil {
		t.Fatalf("%s: %v %v", path, err1, err2)
	}
	return nv, lv, f.Metadata
}

// TestTxt2imgSaveLatents: --save-latents writes each image's noise (torch's randn for the image's seed)
// and final latents beside it; img2img of the first image with --init-latent mean at strength 1 is
// txt2img with the same seed, latents bit for bit; the img2img flags need --init-image and valid names.
func TestTxt2imgSaveLatents(t *testing.T) {
	lib := needORT(t)
	dir := t.TempDir()
	common := []string{"txt2img", "--ort-lib", lib, "-p", "a red circle on a white background", "-W", "64", "-H", "64",
		"--steps", "3", "-q", "--save-latents"}
	code, _, errOut := runCLI(append(common, "-s", "3", "--batch-size", "2", "-o", filepath.Join(dir, "t-{seed}.png"))...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for k, seed := range []uint64{3, 4} {
		noise, latent, meta := readLatents(t, filepath.Join(dir, "t-"+[]string{"3", "4"}[k]+".safetensors"))
		want, err := rng.Noise(rng.TorchCPU, seed, []int{1, 16, 8, 8}, rng.OneGenerator)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(noise, want) || len(latent) != len(want) || meta["seed"] != []string{"3", "4"}[k] {
			t.Fatalf("image %d: noise equal %v, %d latent values, seed %q", k, slices.Equal(noise, want), len(latent), meta["seed"])
		}
	}
	_, txtLatent, _ := readLatents(t, filepath.Join(dir, "t-3.safetensors"))
	code, _, errOut = runCLI(append(common, "-s", "3", "-i", filepath.Join(dir, "t-3.png"), "--strength", "1",
		"--init-latent", "mean", "-o", filepath.Join(dir, "i.png"))...)
	if code != 0 {
		t.Fatalf("img2img: exit %d: %s", code, errOut)
	}
	_, imgLatent, _ := readLatents(t, filepath.Join(dir, "i.safetensors"))
	for i := range imgLatent {
		if math.Float32bits(imgLatent[i]) != math.Float32bits(txtLatent[i]) {
			t.Fatalf("strength 1 with the mean: latent %d is %v, txt2img's %v", i, imgLatent[i], txtLatent[i])
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--init-latent", "mean"}, "--init-latent needs --init-image"},
		{[]string{"--resize-mode", "fill"}, "--resize-mode needs --init-image"},
		{[]string{"-i", filepath.Join(dir, "t-3.png"), "--resize-mode", "zoom"}, "crop-and-resize"},
		{[]string{"-i", filepath.Join(dir, "t-3.png"), "--init-latent", "median"}, "sample or mean"},
		{[]string{"-i", filepath.Join(dir, "t-3.png"), "--init-latent", "mean", "--init-sample"}, "contradict"},
	} {
		code, _, errOut := runCLI(append(common, append(c.args, "-o", filepath.Join(dir, "e.png"))...)...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q (want 2, %q)", c.args, code, errOut, c.want)
		}
	}
	// An existing latents file is not replaced without --overwrite.
	code, _, errOut = runCLI(append(common, "-s", "3", "-o", filepath.Join(dir, "t-{seed}.jpg"))...)
	if code == 0 || !strings.Contains(errOut, "t-3.safetensors exists") {
		t.Errorf("existing latents file: exit %d, %q", code, errOut)
	}
}
