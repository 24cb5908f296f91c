package pipeline

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/testmodels"
	"github.com/rflowrt/rflow/scheduler"
)

// call is one transformer pass the echo recorded.
type call struct {
	kind string
	raw  []float32
}

// echoPipeline opens an echo folder and records every pass.
func echoPipeline(t *testing.T, kind testmodels.Kind, spec echoSpec) (*Pipeline, *[]call) {
	t.Helper()
	m, err := Open(echoFolder(t, kind, spec))
	if err != nil {
		t.Fatal(err)
	}
	p := newTestPipeline(t, m, true)
	calls := &[]call{}
	p.observe = func(kind string, raw []float32) { *calls = append(*calls, call{kind, slices.Clone(raw)}) }
	return p, calls
}

// eulerRef is diffusers' Euler step in float32: x = f32(x + f32(dt·v)), dt = float32(σn − σ).
func eulerRef(x, v []float32, sigma, next float64) {
	dt := float32(next - sigma)
	for i := range x {
		x[i] += float32(dt * v[i])
	}
}

// cfgRef is v = f32(u + f32(g·f32(c − u))).
func cfgRef(u, c []float32, g float32) []float32 {
	v := make([]float32, len(u))
	for i := range u {
		v[i] = u[i] + float32(g*(c[i]-u[i]))
	}
	return v
}

func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s[%d] = %v, want %v (bit for bit)", what, i, got[i], want[i])
		}
	}
}

// TestEchoSD3CFG recomputes an SD3 run with CFG from what the echo transformer received: the batched
// [uncond, cond] rows, the timesteps σ·1000 of the schedule, the latents in both halves, the CFG
// combination and the Euler steps, bit for bit against the pipeline's final latents.
func TestEchoSD3CFG(t *testing.T) {
	p, calls := echoPipeline(t, testmodels.KindSD3, echoSpec{})
	const b, c, h, w, g = 2, 16, 6, 8, 4.5
	res, err := p.Generate(context.Background(), Request{Prompt: "a cat", NegativePrompt: "a dog", Width: 8 * w, Height: 8 * h,
		Steps: 3, Seed: 3, BatchSize: b, CFGScale: g}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sig := res.Settings.Sigmas
	if len(*calls) != 3 {
		t.Fatalf("%d transformer calls, want 3", len(*calls))
	}
	n, plane := b*c*h*w, h*w
	x := slices.Clone(res.Noise)
	for k, cl := range *calls {
		if len(cl.raw) != 2*n {
			t.Fatalf("step %d: output has %d values, want 2B rows = %d", k, len(cl.raw), 2*n)
		}
		wantT := float32(float32(sig[k]) * 1000)
		for row := range 2 * b {
			img := cl.raw[row*c*plane : (row+1)*c*plane]
			for i := range plane {
				if img[i] != wantT {
					t.Fatalf("step %d row %d: timestep %v, want float32(σ·1000) = %v", k, row, img[i], wantT)
				}
			}
			sameBits(t, "latents fed to the transformer", img[3*plane:], x[(row%b)*c*plane+3*plane:(row%b+1)*c*plane])
		}
		uncond, cond := cl.raw[plane], cl.raw[2*b/2*c*plane+plane]
		if uncond == cond {
			t.Fatalf("step %d: uncond and cond rows got the same pooled conditioning %v", k, uncond)
		}
		if k > 0 && (uncond != (*calls)[0].raw[plane] || cond != (*calls)[0].raw[b*c*plane+plane]) {
			t.Fatalf("step %d: conditioning changed between steps", k)
		}
		eulerRef(x, cfgRef(cl.raw[:n], cl.raw[n:], g), sig[k], sig[k+1])
	}
	sameBits(t, "final latents", res.Latents, x)
}

// TestEchoSD3Timesteps checks the timestep input under several schedules and samplers: the schedule's
// ModelTimesteps exactly on grid σ (integer-truncated for dpmpp), float32(float32(σ)·1000) between.
func TestEchoSD3Timesteps(t *testing.T) {
	p, calls := echoPipeline(t, testmodels.KindSD3NoT5, echoSpec{})
	m := p.m
	cases := []struct{ sampler, sched string }{
		{"euler", ""}, {"euler", "dpmpp"}, {"euler", "simple"}, {"euler", "karras"}, {"heun", ""}, {"midpoint", "unipc"},
		{"dpmpp_2m", "dpmpp"}, {"euler_ancestral", "sgm_uniform"},
	}
	for _, tc := range cases {
		*calls = (*calls)[:0]
		res, err := p.Generate(context.Background(), Request{Prompt: "x", Width: 32, Height: 32, Steps: 4, Sampler: tc.sampler,
			Scheduler: tc.sched}, nil)
		if err != nil {
			t.Fatalf("%s/%s: %v", tc.sampler, tc.sched, err)
		}
		want, err := scheduler.BuildSchedule(scheduler.ScheduleRequest{Family: scheduler.FamilySD3, Config: m.Scheduler, Steps: 4,
			Scheduler: tc.sched})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(res.Settings.Sigmas, want.Sigmas) || !slices.Equal(res.Settings.ModelTimesteps, want.ModelTimesteps) {
			t.Fatalf("%s/%s: settings report another schedule", tc.sampler, tc.sched)
		}
		var seen []float64
		for _, cl := range *calls {
			seen = append(seen, float64(cl.raw[0]))
		}
		expect := expectedTimesteps(tc.sampler, want)
		if !slices.Equal(seen, expect) {
			t.Fatalf("%s/%s: timesteps fed %v, want %v", tc.sampler, tc.sched, seen, expect)
		}
		if tc.sched == "dpmpp" {
			for _, v := range seen {
				if v != math.Trunc(v) {
					t.Fatalf("dpmpp timestep %v is not an integer", v)
				}
			}
		}
	}
}

// expectedTimesteps lists the timestep of every model call a sampler makes on s.
func expectedTimesteps(sampler string, s scheduler.Schedule) []float64 {
	off := func(sigma float64) float64 { return float64(float32(float32(sigma) * 1000)) }
	var out []float64
	n := len(s.Sigmas) - 1
	for i := range n {
		out = append(out, s.ModelTimesteps[i])
		switch {
		case sampler == "heun" && s.Sigmas[i+1] > 0:
			out = append(out, s.ModelTimesteps[i+1])
		case sampler == "midpoint":
			h := s.Sigmas[i+1] - s.Sigmas[i]
			out = append(out, off(s.Sigmas[i]+h/2))
		}
	}
	return out
}

// TestEchoFlux recomputes a FLUX.1-dev run with true CFG from the echo: packed latents (the §4.3 layout
// of the NCHW noise), timestep f32(t)/1000, the guidance value, img_ids [0, i, j], zero txt_ids, μ from
// the image token count, the negative pass, and the final unpack, bit for bit.
func TestEchoFlux(t *testing.T) {
	p, calls := echoPipeline(t, testmodels.KindFluxDev, echoSpec{})
	const b, c, h, w, s, guid = 2, 16, 6, 8, 3.0, 2.5
	res, err := p.Generate(context.Background(), Request{Prompt: "a cat", NegativePrompt: "a dog", Width: 8 * w, Height: 8 * h,
		Steps: 3, Seed: 5, BatchSize: b, TrueCFGScale: s, Guidance: guid}, nil)
	if err != nil {
		t.Fatal(err)
	}
	seqLen := (8 * h / 16) * (8 * w / 16)
	cfg := p.m.Scheduler
	wantMu := float64(seqLen)*(cfg.MaxShift-cfg.BaseShift)/float64(cfg.MaxImageSeqLen-cfg.BaseImageSeqLen) +
		(cfg.BaseShift - (cfg.MaxShift-cfg.BaseShift)/float64(cfg.MaxImageSeqLen-cfg.BaseImageSeqLen)*float64(cfg.BaseImageSeqLen))
	if math.Abs(res.Settings.Mu-wantMu) > 1e-12 || !cfg.UseDynamicShifting {
		t.Fatalf("μ = %v, want %v for %d tokens", res.Settings.Mu, wantMu, seqLen)
	}
	if len(*calls) != 6 || (*calls)[1].kind != "transformer output (negative pass)" {
		t.Fatalf("%d calls, want 3 steps × (positive, negative)", len(*calls))
	}
	sig, L := res.Settings.Sigmas, (h/2)*(w/2)
	x := make([]float32, b*c*h*w)
	packLatents(x, res.Noise, b, c, h, w)
	packRef := make([]float32, len(x)) // §4.3 formula, independently
	for n := range b {
		for ch := range c {
			for yy := range h {
				for xx := range w {
					packRef[(n*L+(yy/2)*(w/2)+xx/2)*64+ch*4+(yy%2)*2+xx%2] = res.Noise[((n*c+ch)*h+yy)*w+xx]
				}
			}
		}
	}
	sameBits(t, "packed noise", x, packRef)
	for k := range 3 {
		pos, neg := (*calls)[2*k].raw, (*calls)[2*k+1].raw
		wantT := float32(float32(float32(sig[k])*1000) / 1000)
		for tok := range b * L {
			f := pos[tok*64 : tok*64+64]
			l := tok % L
			if f[0] != wantT || f[1] != guid || f[4] != 0 || f[5] != float32(l/(w/2)) || f[6] != float32(l%(w/2)) || f[7] != 0 {
				t.Fatalf("step %d token %d: fed t=%v g=%v ids=%v txt=%v; want t=%v g=%v ids=[0 %d %d]", k, tok, f[0], f[1], f[4:7], f[7],
					wantT, guid, l/(w/2), l%(w/2))
			}
			sameBits(t, "packed latents fed", f[8:], x[tok*64+8:tok*64+64])
		}
		if pos[2] == neg[2] {
			t.Fatalf("step %d: negative pass got the positive conditioning", k)
		}
		eulerRef(x, cfgRef(neg, pos, s), sig[k], sig[k+1])
	}
	final := make([]float32, len(x))
	unpackLatents(final, x, b, c, h, w)
	sameBits(t, "final latents (unpacked)", res.Latents, final)
}

// TestEchoFluxSchnellFloatIDs feeds float ids to an export that takes them, without guidance input.
func TestEchoFluxSchnellFloatIDs(t *testing.T) {
	p, calls := echoPipeline(t, testmodels.KindFluxSchnell, echoSpec{floatIDs: true})
	res, err := p.Generate(context.Background(), Request{Prompt: "a cat", Width: 32, Height: 64, Guidance: 9}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Settings.Steps != 4 || len(*calls) != 4 || res.Settings.Guidance != 0 {
		t.Fatalf("schnell: %d steps, %d calls, guidance %v; want 4, 4, 0", res.Settings.Steps, len(*calls), res.Settings.Guidance)
	}
	raw := (*calls)[0].raw
	for l := range 4 * 2 {
		f := raw[l*64 : l*64+8]
		if f[1] != 0 || f[5] != float32(l/2) || f[6] != float32(l%2) {
			t.Fatalf("token %d: %v", l, f)
		}
	}
}

// TestSkipLayerGuidance runs SD3 SLG on an echo export with a skip_layers input: the extra batch-B pass
// runs only on the steps diffusers picks, feeds the layers, and v += (vc − v_skip)·scale.
func TestSkipLayerGuidance(t *testing.T) {
	p, calls := echoPipeline(t, testmodels.KindSD3NoT5, echoSpec{skipLayers: true})
	const steps, g, scale = 10, 3.0, 2.5
	res, err := p.Generate(context.Background(), Request{Prompt: "a", NegativePrompt: "b", Width: 32, Height: 32, Steps: steps,
		CFGScale: g, SLGLayers: []int{7, 8, 9}, SLGScale: scale, SLGStart: 0.1, SLGStop: 0.5}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, plane, sig := 16*4*4, 16, res.Settings.Sigmas
	x := slices.Clone(res.Noise)
	k := 0
	for i := range steps {
		main := (*calls)[k].raw
		k++
		if main[3*plane] != noSkipLayer {
			t.Fatalf("step %d: main pass skip_layers mean %v, want %d", i, main[3*plane], noSkipLayer)
		}
		v := cfgRef(main[:n], main[n:], g)
		if slgActive(i, steps, 0.1, 0.5) != (i >= 2 && i <= 4) {
			t.Fatalf("slgActive(%d) disagrees with diffusers' i > n·start and i < n·stop", i)
		}
		if i >= 2 && i <= 4 {
			skip := (*calls)[k].raw
			k++
			if skip[3*plane] != 8 || len(skip) != n {
				t.Fatalf("step %d: skip pass fed layers with mean %v over %d values", i, skip[3*plane], len(skip))
			}
			for j := range v {
				v[j] += float32((main[n+j] - skip[j]) * scale)
			}
		}
		eulerRef(x, v, sig[i], sig[i+1])
	}
	if k != len(*calls) {
		t.Fatalf("%d calls, expected %d", len(*calls), k)
	}
	sameBits(t, "final latents", res.Latents, x)
}

// TestNaNStops makes the echo output NaN at step 2: the error names step 2 and the transformer, and no
// images come back.
func TestNaNStops(t *testing.T) {
	sched, err := scheduler.BuildSchedule(scheduler.ScheduleRequest{Family: scheduler.FamilySD3,
		Config: openFixture(t, testmodels.Options{Kind: testmodels.KindSD3NoT5}).Scheduler, Steps: 3})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := echoPipeline(t, testmodels.KindSD3NoT5, echoSpec{nanAt: float32(sched.ModelTimesteps[1])})
	res, err := p.Generate(context.Background(), Request{Prompt: "x", Width: 32, Height: 32, Steps: 3}, nil)
	var nf *NonFiniteError
	if !errors.As(err, &nf) || nf.Step != 2 || res.Images != nil {
		t.Fatalf("got %v (images %d), want a NonFiniteError at step 2", err, len(res.Images))
	}
	msg := err.Error()
	for _, want := range []string{"transformer output", "step 2 of 3", "NaN", "fp32"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
}
