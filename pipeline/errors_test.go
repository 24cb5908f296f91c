package pipeline

import (
	"context"
	"errors"
	"image"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/testmodels"
)

// TestRequestErrors checks that bad requests fail before anything loads, with messages that say what
// to do.
func TestRequestErrors(t *testing.T) {
	sd3 := newTestPipeline(t, openFixture(t, testmodels.Options{Kind: testmodels.KindSD3NoT5}), false)
	flux := newTestPipeline(t, openFixture(t, testmodels.Options{Kind: testmodels.KindFluxSchnell}), false)
	fixedModel, err := Open(echoFolder(t, testmodels.KindSD3NoT5, echoSpec{fixedSide: 4}))
	if err != nil {
		t.Fatal(err)
	}
	fixed := newTestPipeline(t, fixedModel, false)
	slg, _ := echoPipeline(t, testmodels.KindSD3NoT5, echoSpec{skipLayers: true})
	ok := Request{Prompt: "x", Width: 32, Height: 32, Steps: 1}
	with := func(f func(*Request)) Request { r := ok; f(&r); return r }
	img := image.NewNRGBA(image.Rect(0, 0, 8, 8))
	cases := []struct {
		name string
		p    *Pipeline
		r    Request
		want []string
		is   error
	}{
		{"width", sd3, with(func(r *Request) { r.Width = 500 }), []string{"width 500 is not a multiple of 16; try 496 or 512"}, nil},
		{"height", flux, with(func(r *Request) { r.Height = 8 }), []string{"height 8", "16"}, nil},
		{"sampler", sd3, with(func(r *Request) { r.Sampler = "eulr" }), []string{`"eulr"`, "euler, ", "dpmpp_2m"}, nil},
		{"scheduler", flux, with(func(r *Request) { r.Scheduler = "karas" }), []string{"karas", "karras", "simple"}, nil},
		{"slg", sd3, with(func(r *Request) { r.SLGLayers, r.CFGScale = []int{7}, 5 }), []string{"skip_layers"}, ErrSLGUnsupported},
		{"slg-flux", flux, with(func(r *Request) { r.SLGLayers = []int{7} }), []string{"FLUX"}, ErrSLGUnsupported},
		{"slg-no-cfg", slg, with(func(r *Request) { r.SLGLayers, r.CFGScale = []int{7}, 1 }), []string{"CFG"}, ErrSLGUnsupported},
		{"fixed", fixed, with(func(r *Request) { r.Width = 64 }), []string{"fixed to 32×32", "use that size"}, nil},
		{"strength", sd3, with(func(r *Request) { r.InitImage, r.Strength = img, 1.5 }), []string{"strength 1.5"}, nil},
		{"batch", sd3, with(func(r *Request) { r.BatchSize = -1 }), []string{"batch size -1"}, nil},
		{"seq", flux, with(func(r *Request) { r.MaxSequenceLength = 600 }), []string{"600", "512"}, nil},
		{"rng", sd3, with(func(r *Request) { r.RNG = "mt" }), []string{"mt", "torch-cpu"}, nil},
		{"sigmas", sd3, with(func(r *Request) { r.Sigmas = []float64{0.5, 0.7} }), []string{"decreasing"}, nil},
		{"cfg", sd3, with(func(r *Request) { r.CFGScale = -2 }), []string{"-2"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var events int
			res, err := c.p.Generate(context.Background(), c.r, func(Event) { events++ })
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %v is not %v", err, c.is)
			}
			if events != 0 || res.Images != nil || c.p.ms.clip[0] != nil {
				t.Errorf("a rejected request loaded models or reported %d events", events)
			}
		})
	}
	if _, err := fixed.Generate(context.Background(), ok, nil); err != nil {
		t.Fatalf("the fixed export's own size: %v", err)
	}
}

// TestCancel cancels at each stage: Generate returns context.Canceled, no images, and stops the loop
// between steps.
func TestCancel(t *testing.T) {
	p, calls := echoPipeline(t, testmodels.KindSD3NoT5, echoSpec{})
	for _, stage := range []string{StageLoad, StageEncode, StageDenoise, StageDecode} {
		*calls = (*calls)[:0]
		ctx, cancel := context.WithCancel(context.Background())
		p.ms.closeAll()
		res, err := p.Generate(ctx, Request{Prompt: "x", Width: 32, Height: 32, Steps: 5}, func(e Event) {
			if e.Stage == stage {
				cancel()
			}
		})
		cancel()
		if !errors.Is(err, context.Canceled) || err != context.Canceled || res.Images != nil {
			t.Fatalf("cancel at %s: %v (images %d), want context.Canceled", stage, err, len(res.Images))
		}
		if stage == StageDenoise && len(*calls) != 1 {
			t.Fatalf("cancelled after step 1, but the transformer ran %d times", len(*calls))
		}
	}
	// A context cancelled while the transformer runs (here: right after its first output) stops too.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	*calls = (*calls)[:0]
	p.observe = func(string, []float32) { *calls = append(*calls, call{}); cancel() }
	if _, err := p.Generate(ctx, Request{Prompt: "x", Width: 32, Height: 32, Steps: 5}, nil); err != context.Canceled || len(*calls) != 1 {
		t.Fatalf("cancel in the model call: %v after %d calls", err, len(*calls))
	}
}

// TestMemoryPolicy checks which sessions are loaded while the transformer runs and after Generate,
// under the default policy and KeepModels.
func TestMemoryPolicy(t *testing.T) {
	dir := echoFolder(t, testmodels.KindSD3, echoSpec{})
	for _, keep := range []bool{false, true} {
		m, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		p := newTestPipeline(t, m, keep)
		textLoaded := false
		p.observe = func(string, []float32) { textLoaded = p.ms.clip[0] != nil || p.ms.t5 != nil }
		var loads []string
		ev := func(e Event) {
			if e.Stage == StageLoad {
				loads = append(loads, e.Component)
			}
		}
		for range 2 {
			if _, err := p.Generate(context.Background(), Request{Prompt: "x", Width: 32, Height: 32, Steps: 1}, ev); err != nil {
				t.Fatal(err)
			}
		}
		after := p.ms.clip[0] != nil && p.ms.clip[1] != nil && p.ms.t5 != nil && p.ms.trans != nil && p.ms.dec != nil
		none := p.ms.clip[0] == nil && p.ms.t5 == nil && p.ms.trans == nil && p.ms.dec == nil
		want := 10 // 5 components, loaded by each run
		if keep {
			want = 5
		}
		if textLoaded != keep || (keep && !after) || (!keep && !none) || len(loads) != want {
			t.Fatalf("keep=%v: text encoders loaded during denoise %v, all kept %v, none kept %v, loads %v",
				keep, textLoaded, after, none, loads)
		}
		if err := p.Close(); err != nil || p.ms.trans != nil || p.ms.clip[0] != nil {
			t.Fatalf("Close: %v", err)
		}
	}
}

// TestEventsAndPreviews checks the event order and the preview cadence.
func TestEventsAndPreviews(t *testing.T) {
	p, _ := echoPipeline(t, testmodels.KindSD3NoT5, echoSpec{})
	var previews []int
	var stages []string
	var steps []int
	req := Request{Prompt: "x", Width: 64, Height: 32, Steps: 5, PreviewEvery: 2,
		OnPreview: func(step int, img *image.NRGBA) {
			if img.Rect.Dx() != 8 || img.Rect.Dy() != 4 {
				t.Errorf("preview %v, want the 8×4 latent size", img.Rect)
			}
			previews = append(previews, step)
		}}
	_, err := p.Generate(context.Background(), req, func(e Event) {
		if len(stages) == 0 || stages[len(stages)-1] != e.Stage {
			stages = append(stages, e.Stage)
		}
		if e.Stage == StageDenoise {
			steps = append(steps, e.Step)
			if e.Total != 5 {
				t.Errorf("denoise event total %d", e.Total)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(stages, ",") != "load,encode,load,denoise,load,decode" {
		t.Errorf("stages %v", stages)
	}
	if len(steps) != 5 || steps[0] != 1 || steps[4] != 5 {
		t.Errorf("denoise steps %v", steps)
	}
	if len(previews) != 3 || previews[0] != 2 || previews[1] != 4 || previews[2] != 5 {
		t.Errorf("previews at %v, want 2, 4, 5", previews)
	}
}
