package pipeline

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/rflowrt/rflow/internal/testmodels"
	"github.com/rflowrt/rflow/scheduler"
)

// TestEchoSD3GuidanceRules recomputes SD3 runs under each guidance rule from what the echo
// transformer returned: the rule's scheduler function on the [uncond, cond] rows, with the step of
// each call, then diffusers' Euler step, bit for bit against the pipeline's latents; the rule is in
// the resolved settings.
func TestEchoSD3GuidanceRules(t *testing.T) {
	p, calls := echoPipeline(t, testmodels.KindSD3, echoSpec{})
	const b, c, h, w, g = 2, 16, 6, 8, 4.5
	for _, spec := range []string{"cfg-zero-star", "apg:eta=0.5,norm=3,momentum=-0.5", "cfg++"} {
		*calls = nil
		scale := g
		if spec == "cfg++" {
			scale = 0.6 // CFG++'s λ in (0, 1]: the unconditional pass runs all the same
		}
		res, err := p.Generate(context.Background(), Request{Prompt: "a cat", NegativePrompt: "a dog", Width: 8 * w, Height: 8 * h,
			Steps: 3, Seed: 3, BatchSize: b, CFGScale: scale, GuidanceRule: spec, Sampler: "euler"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		rule, _ := scheduler.ParseGuidanceRule(spec)
		if res.Settings.GuidanceRule != rule.String() {
			t.Errorf("%s: resolved rule %q, want %q", spec, res.Settings.GuidanceRule, rule.String())
		}
		gd, err := rule.NewGuider(b, nil)
		if err != nil {
			t.Fatal(err)
		}
		sig := res.Settings.Sigmas
		n := b * c * h * w
		x := slices.Clone(res.Noise)
		v := make([]float32, n)
		for k, cl := range *calls {
			e := scheduler.Eval{Index: k, Total: 3, Sigma: sig[k], SigmaNext: sig[k+1], T: sig[k], NFE: k + 1}
			if err := gd.Combine(v, cl.raw[n:2*n], cl.raw[:n], x, float64(float32(scale)), e); err != nil {
				t.Fatal(err)
			}
			eulerRef(x, v, sig[k], sig[k+1])
		}
		sameBits(t, spec+": final latents", res.Latents, x)
	}
	for _, bad := range []Request{
		{Prompt: "a", CFGScale: 4, GuidanceRule: "cfg++", Sampler: "heun"},
		{Prompt: "a", CFGScale: 1, GuidanceRule: "apg"},
		{Prompt: "a", CFGScale: 4, GuidanceRule: "pag"},
	} {
		bad.Width, bad.Height, bad.Steps = 64, 48, 2
		if _, err := p.Generate(context.Background(), bad, nil); !errors.Is(err, ErrGuidanceRule) {
			t.Errorf("%s with %s, CFG %v: error %v, want ErrGuidanceRule", bad.GuidanceRule, bad.Sampler, bad.CFGScale, err)
		}
	}
}

// TestStepCacheCounts runs the echo SD3 transformer with a step cache that skips whatever it may: the
// transformer runs only for the warmup, the last step and after every max-skip run, the timings count
// both kinds of calls, and the resolved settings name the cache.
func TestStepCacheCounts(t *testing.T) {
	p, calls := echoPipeline(t, testmodels.KindSD3, echoSpec{})
	res, err := p.Generate(context.Background(), Request{Prompt: "a cat", Width: 64, Height: 48, Steps: 10, Seed: 1,
		Sampler: "euler", StepCache: "taylor:threshold=1e9,warmup=2,max-skip=3"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// steps 0 1 | skip 2 3 4 | 5 | skip 6 7 8 | 9
	if tm := res.Timings; tm.ModelCalls != 4 || tm.CachedCalls != 6 || len(*calls) != 4 {
		t.Errorf("model calls %d, cached %d, transformer runs %d; want 4, 6, 4", tm.ModelCalls, tm.CachedCalls, len(*calls))
	}
	if want := "taylor:threshold=1e+09,warmup=2,max-skip=3"; res.Settings.StepCache != want {
		t.Errorf("resolved step cache %q, want %q", res.Settings.StepCache, want)
	}
	if _, err := p.Generate(context.Background(), Request{Prompt: "a", Width: 64, Height: 48, Steps: 2, StepCache: "teacache"}, nil); err == nil {
		t.Error("an unknown step cache was accepted")
	}
}

// TestSamplerFunc: a caller's sampler runs on the pipeline's model, noise and σ.
func TestSamplerFunc(t *testing.T) {
	p, calls := echoPipeline(t, testmodels.KindSD3, echoSpec{})
	var got []float64
	one := func(ctx context.Context, m scheduler.Model, x []float32, sigmas []float64, o scheduler.Options) error {
		got = append([]float64(nil), sigmas...)
		v := make([]float32, len(x))
		return m.Velocity(ctx, v, x, scheduler.Eval{Total: len(sigmas) - 1, Sigma: sigmas[0], SigmaNext: sigmas[1], T: sigmas[0], NFE: 1})
	}
	res, err := p.Generate(context.Background(), Request{Prompt: "a cat", Width: 64, Height: 48, Steps: 5, Seed: 1, SamplerFunc: one}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(*calls) != 1 || res.Timings.ModelCalls != 1 || !slices.Equal(got, res.Settings.Sigmas) {
		t.Errorf("%d transformer runs (%d model calls), σ %v; want 1 run on %v", len(*calls), res.Timings.ModelCalls, got, res.Settings.Sigmas)
	}
}

// TestEchoFluxAPG recomputes a FLUX true-CFG run under APG from the echo transformer's positive and
// negative outputs: the rule runs on the packed predictions with the packed latents, bit for bit.
func TestEchoFluxAPG(t *testing.T) {
	p, calls := echoPipeline(t, testmodels.KindFluxDev, echoSpec{})
	const b, c, h, w, s = 2, 16, 6, 8, 3.0
	spec := "apg:eta=0.5,norm-threshold=3,momentum=-0.5"
	res, err := p.Generate(context.Background(), Request{Prompt: "a cat", NegativePrompt: "a dog", Width: 8 * w, Height: 8 * h,
		Steps: 3, Seed: 5, BatchSize: b, TrueCFGScale: s, Guidance: 2.5, GuidanceRule: spec}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(*calls) != 6 {
		t.Fatalf("%d transformer runs, want 3 steps × (positive, negative)", len(*calls))
	}
	rule, _ := scheduler.ParseGuidanceRule(spec)
	gd, err := rule.NewGuider(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	sig := res.Settings.Sigmas
	x := make([]float32, b*c*h*w)
	packLatents(x, res.Noise, b, c, h, w)
	v := make([]float32, len(x))
	for k := range 3 {
		pos, neg := (*calls)[2*k].raw, (*calls)[2*k+1].raw
		e := scheduler.Eval{Index: k, Total: 3, Sigma: sig[k], SigmaNext: sig[k+1], T: sig[k], NFE: k + 1}
		if err := gd.Combine(v, pos[:len(x)], neg[:len(x)], x, float64(float32(s)), e); err != nil {
			t.Fatal(err)
		}
		eulerRef(x, v, sig[k], sig[k+1])
	}
	final := make([]float32, len(x))
	unpackLatents(final, x, b, c, h, w)
	sameBits(t, "final latents (unpacked)", res.Latents, final)
}
