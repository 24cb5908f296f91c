package pipeline

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/rflowrt/rflow/internal/testmodels"
	"github.com/rflowrt/rflow/scheduler"
)

// resolveOn opens a copy of the fixture with the given scheduler_config.json ("" keeps the fixture's)
// and resolves r on it; nothing is loaded.
func resolveOn(t *testing.T, o testmodels.Options, schedulerConfig string, r Request) Resolved {
	t.Helper()
	dir := inspectFixture(t, o)
	if schedulerConfig != "" {
		mustWrite(t, filepath.Join(dir, "scheduler", "scheduler_config.json"), schedulerConfig)
	}
	m, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := New(m, Options{}).resolve(r)
	if err != nil {
		t.Fatal(err)
	}
	return pl.settings
}

// TestDefaultSamplerFollowsSchedulerClass: with no sampler asked for, rflow runs the step of the class
// the model's scheduler_config.json names, as diffusers 0.38 does (it loads that class).
func TestDefaultSamplerFollowsSchedulerClass(t *testing.T) {
	const flowMode = `"use_flow_sigmas": true, "prediction_type": "flow_prediction", "flow_shift": 3.0`
	for _, c := range []struct {
		config, sampler, scheduler string
		want                       string
	}{
		{`{"_class_name": "FlowMatchEulerDiscreteScheduler", "shift": 3.0}`, "", "", "euler"},
		{`{"_class_name": "FlowMatchHeunDiscreteScheduler", "shift": 3.0}`, "", "", "heun"},
		{`{"_class_name": "DPMSolverMultistepScheduler", ` + flowMode + `}`, "", "", "dpmpp_2m"},
		{`{"_class_name": "UniPCMultistepScheduler", ` + flowMode + `}`, "", "", "uni_pc"},
		{`{"_class_name": "FlowMatchHeunDiscreteScheduler", "shift": 3.0}`, "", "karras", "heun"},
		{`{"_class_name": "FlowMatchEulerDiscreteScheduler", "shift": 3.0}`, "", "unipc", "uni_pc"},
		{`{"_class_name": "FlowMatchHeunDiscreteScheduler", "shift": 3.0}`, "dpmpp_2m", "", "dpmpp_2m"},
	} {
		got := resolveOn(t, sd3NoT5, c.config, Request{Prompt: "x", Width: 32, Height: 32, Steps: 4, Sampler: c.sampler, Scheduler: c.scheduler})
		if got.Sampler != c.want {
			t.Errorf("%s, sampler %q, scheduler %q: ran %q, want %q", c.config, c.sampler, c.scheduler, got.Sampler, c.want)
		}
	}
}

// TestFluxMaxSequenceLengthDefault: FluxPipeline pads T5 to 512 tokens for every FLUX model, schnell too.
func TestFluxMaxSequenceLengthDefault(t *testing.T) {
	for _, kind := range []testmodels.Kind{testmodels.KindFluxSchnell, testmodels.KindFluxDev} {
		if got := resolveOn(t, testmodels.Options{Kind: kind}, "", Request{Prompt: "x", Width: 32, Height: 32}); got.MaxSequenceLength != 512 {
			t.Errorf("%s: max sequence length %d, want 512", kind, got.MaxSequenceLength)
		}
	}
}

// TestCustomSigmasShiftedByDefault: custom σ get the model's shift, as diffusers' pipelines give a
// `sigmas=` list; SigmasRaw keeps the list as given.
func TestCustomSigmasShiftedByDefault(t *testing.T) {
	r := Request{Prompt: "x", Width: 32, Height: 32, Sigmas: []float64{1, 0.5}}
	got := resolveOn(t, sd3NoT5, "", r) // SD3: static shift 3, σ' = 3σ/(1+2σ)
	if want := []float64{1, 0.75, 0}; !slices.Equal(got.Sigmas, want) || got.Shift != 3 || got.SigmasRaw {
		t.Errorf("shifted: σ %v, shift %v, raw %t; want %v, 3, false", got.Sigmas, got.Shift, got.SigmasRaw, want)
	}
	r.SigmasRaw = true
	got = resolveOn(t, sd3NoT5, "", r)
	if want := []float64{1, 0.5, 0}; !slices.Equal(got.Sigmas, want) || got.Shift != 0 || !got.SigmasRaw {
		t.Errorf("raw: σ %v, shift %v, raw %t; want %v, 0, true", got.Sigmas, got.Shift, got.SigmasRaw, want)
	}
	// FLUX-dev: the resolution shift μ of the image size, e^μ/(e^μ + 1/σ − 1).
	dev := resolveOn(t, testmodels.Options{Kind: testmodels.KindFluxDev}, "", Request{Prompt: "x", Width: 32, Height: 32, Sigmas: []float64{1, 0.5}})
	mu := scheduler.DynamicShiftMu(scheduler.ImageSeqLen(32, 32), scheduler.DefaultFlowMatchConfig())
	if dev.Mu != mu || dev.Sigmas[1] == 0.5 {
		t.Errorf("flux-dev: μ %v (want %v), σ %v", dev.Mu, mu, dev.Sigmas)
	}
}
