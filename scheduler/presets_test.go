package scheduler

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// schedModelConfigs is shared/model-configs: real scheduler_config.json files of the public models.
const schedModelConfigs = "../../shared/model-configs"

// TestPresetsMatchRealConfigs parses each model's scheduler/scheduler_config.json and requires the
// preset's config to equal it. SD3.5 ships the same scheduler config as SD3-medium (spec §3.1).
func TestPresetsMatchRealConfigs(t *testing.T) {
	if _, err := os.Stat(schedModelConfigs); err != nil {
		t.Skipf("%s is absent (a clone without the shared reference files): %v", schedModelConfigs, err)
	}
	tests := []struct{ preset, repo string }{
		{"sd3", "stabilityai/stable-diffusion-3-medium-diffusers"},
		{"sd3.5-large", "stabilityai/stable-diffusion-3-medium-diffusers"},
		{"sd3.5-medium", "stabilityai/stable-diffusion-3-medium-diffusers"},
		{"sd3.5-large-turbo", "stabilityai/stable-diffusion-3-medium-diffusers"},
		{"flux-dev", "black-forest-labs/FLUX.1-dev"},
		{"flux-schnell", "black-forest-labs/FLUX.1-schnell"},
	}
	for _, tt := range tests {
		t.Run(tt.preset, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(schedModelConfigs, tt.repo, "scheduler", "scheduler_config.json"))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := ParseFlowMatchConfig(data)
			if err != nil {
				t.Fatal(err)
			}
			if p := schedPreset(t, tt.preset); p.Config != cfg {
				t.Errorf("preset config %+v\n  file config %+v", p.Config, cfg)
			}
		})
	}
}

// TestPresetGuidanceMatchesTransformer: HasGuidanceInput follows the transformer config's guidance_embeds.
func TestPresetGuidanceMatchesTransformer(t *testing.T) {
	if _, err := os.Stat(schedModelConfigs); err != nil {
		t.Skipf("%s is absent (a clone without the shared reference files): %v", schedModelConfigs, err)
	}
	for preset, repo := range map[string]string{"flux-dev": "black-forest-labs/FLUX.1-dev",
		"flux-schnell": "black-forest-labs/FLUX.1-schnell"} {
		data, err := os.ReadFile(filepath.Join(schedModelConfigs, repo, "transformer", "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		embeds := strings.Contains(strings.ReplaceAll(string(data), " ", ""), `"guidance_embeds":true`)
		if p := schedPreset(t, preset); p.HasGuidanceInput != embeds {
			t.Errorf("%s: HasGuidanceInput = %v, transformer guidance_embeds = %v", preset, p.HasGuidanceInput, embeds)
		}
	}
}

// TestPresetDefaults pins each preset's pipeline defaults (spec §3.5, §4.4).
func TestPresetDefaults(t *testing.T) {
	tests := []struct {
		name      string
		family    Family
		steps     int
		cfg, gd   float64
		hasGd     bool
		maxSeq    int
		shift     float64
		dynamic   bool
		modelT999 float64 // ModelTimestep(999)
	}{
		{"sd3", FamilySD3, 28, 7.0, 0, false, 256, 3, false, 999},
		{"sd3.5-large", FamilySD3, 28, 3.5, 0, false, 256, 3, false, 999},
		{"sd3.5-medium", FamilySD3, 40, 4.5, 0, false, 256, 3, false, 999},
		{"sd3.5-large-turbo", FamilySD3, 4, 1.0, 0, false, 256, 3, false, 999},
		{"flux-dev", FamilyFLUX, 28, 1.0, 3.5, true, 512, 3, true, 0.9990000128746033},
		// FluxPipeline's max_sequence_length is 512 for every FLUX model (diffusers 0.38); the schnell
		// model card's example passes 256, but that is not the pipeline's default.
		{"flux-schnell", FamilyFLUX, 4, 1.0, 0, false, 512, 1, false, 0.9990000128746033},
	}
	if got, want := strings.Join(PresetNames(), ","), "sd3,sd3.5-large,sd3.5-medium,sd3.5-large-turbo,flux-dev,flux-schnell"; got != want {
		t.Errorf("PresetNames = %s, want %s", got, want)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := schedPreset(t, tt.name)
			if p.Name != tt.name || p.Family != tt.family || p.Steps != tt.steps || p.CFGScale != tt.cfg ||
				p.Guidance != tt.gd || p.HasGuidanceInput != tt.hasGd || p.MaxSequenceLength != tt.maxSeq ||
				p.Width != 1024 || p.Height != 1024 || p.Config.Shift != tt.shift || p.Config.UseDynamicShifting != tt.dynamic {
				t.Errorf("got %+v", p)
			}
			if got := p.Family.ModelTimestep(999); got != tt.modelT999 {
				t.Errorf("ModelTimestep(999) = %v, want %v", got, tt.modelT999)
			}
			r := p.Request(0, 0, 0)
			if r.Steps != tt.steps || r.ImageSeqLen != 4096 || r.Family != tt.family || r.Config != p.Config {
				t.Errorf("Request(0, 0, 0) = %+v", r)
			}
			if r := p.Request(9, 512, 768); r.Steps != 9 || r.ImageSeqLen != 32*48 {
				t.Errorf("Request(9, 512, 768) = %+v", r)
			}
		})
	}
}

func TestLookupPresetUnknown(t *testing.T) {
	_, err := LookupPreset("sdxl")
	var ne *ScheduleNameError
	if !errors.As(err, &ne) || ne.Kind != "preset" {
		t.Fatalf("error %v is not a preset ScheduleNameError", err)
	}
	want := `scheduler: unknown preset "sdxl" (valid: sd3, sd3.5-large, sd3.5-medium, sd3.5-large-turbo, flux-dev, flux-schnell)`
	if err.Error() != want {
		t.Errorf("error %q\n want %q", err, want)
	}
}

// TestPresetsAreCopies: changing a returned preset does not change the table.
func TestPresetsAreCopies(t *testing.T) {
	p := schedPreset(t, "flux-dev")
	p.Config.Shift, p.Steps = 99, 1
	if q := schedPreset(t, "flux-dev"); q.Config.Shift == 99 || q.Steps == 1 {
		t.Error("LookupPreset hands out shared state")
	}
}
