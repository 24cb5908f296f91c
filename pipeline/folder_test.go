package pipeline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/scheduler"
)

func sharedConfigs(t *testing.T) string {
	dir := filepath.Join("..", "..", "shared", "model-configs")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("../shared is absent (%v): the real model configs are needed", err)
	}
	return dir
}

func TestReadModelIndexRealConfigs(t *testing.T) {
	root := sharedConfigs(t)
	for _, c := range []struct {
		dir    string
		family scheduler.Family
		has    string
	}{
		{"stabilityai/stable-diffusion-3-medium-diffusers", scheduler.FamilySD3, "text_encoder_3"},
		{"black-forest-labs/FLUX.1-dev", scheduler.FamilyFLUX, "text_encoder_2"},
		{"black-forest-labs/FLUX.1-schnell", scheduler.FamilyFLUX, "transformer"},
	} {
		mi, err := ReadModelIndex(filepath.Join(root, c.dir))
		if err != nil {
			t.Fatal(err)
		}
		if mi.Family != c.family || mi.Components[c.has][0] == "" {
			t.Errorf("%s: family %s, components %v", c.dir, mi.Family, mi.Components)
		}
		cfg, err := ReadSchedulerConfig(filepath.Join(root, c.dir))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.ClassName != scheduler.ClassFlowMatchEuler {
			t.Errorf("%s: scheduler class %q", c.dir, cfg.ClassName)
		}
	}
}

func TestReadModelIndexErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadModelIndex(dir); err == nil || !strings.Contains(err.Error(), "model_index.json is missing") {
		t.Fatalf("missing file: %v", err)
	}
	write := func(s string) {
		if err := os.WriteFile(filepath.Join(dir, "model_index.json"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"_class_name": "StableDiffusionXLPipeline"}`)
	if _, err := ReadModelIndex(dir); err == nil || !strings.Contains(err.Error(), "FluxPipeline") {
		t.Fatalf("unsupported pipeline: want the supported list, got %v", err)
	}
	write(`{"_class_name": "StableDiffusion3Pipeline", "text_encoder_3": [null, null], "transformer": ["diffusers", "SD3Transformer2DModel"]}`)
	mi, err := ReadModelIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := mi.Components["text_encoder_3"]; ok {
		t.Fatal("a [null, null] component must count as absent")
	}
	write(`{not json`)
	if _, err := ReadModelIndex(dir); err == nil {
		t.Fatal("bad JSON accepted")
	}
	if _, err := ReadSchedulerConfig(dir); err == nil || !strings.Contains(err.Error(), "scheduler config") {
		t.Fatalf("missing scheduler config: %v", err)
	}
}
