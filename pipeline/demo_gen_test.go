package pipeline

import (
	"context"
	"image"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/rflowrt/rflow/assets"
	"github.com/rflowrt/rflow/internal/rng"
)

// demoPrompts are the demo test's prompts; each names a shape, a colour and/or a background.
var demoPrompts = []string{
	"a green star on a black background",
	"a red circle",
	"a blue square on yellow",
	"a white ring on a purple background",
	"orange stripes on blue",
}

// imagePlanes turns an NRGBA image into planar RGB in [−1, 1] for assets.Classify.
func imagePlanes(pix []uint8, h, w int) []float32 {
	out := make([]float32, 3*h*w)
	for i := range h * w {
		for c := range 3 {
			out[c*h*w+i] = float32(pix[4*i+c])/127.5 - 1
		}
	}
	return out
}

// classifyAll classifies demo images on every core.
func classifyAll(imgs []*image.NRGBA, size int) ([]assets.Component, []float64) {
	comps, rms := make([]assets.Component, len(imgs)), make([]float64, len(imgs))
	var wg sync.WaitGroup
	next := make(chan int, len(imgs))
	for i := range imgs {
		next <- i
	}
	close(next)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				comps[i], rms[i] = assets.Classify(imagePlanes(imgs[i].Pix, size, size), size, size)
			}
		})
	}
	wg.Wait()
	return comps, rms
}

// TestDemoFollowsPrompts draws 20 seeds of 5 prompts through both demo models at 256×256 with 12 Euler
// steps (one batch of 20 per prompt, a generator per seed) and classifies every image: each has the
// attributes its prompt names. Two more runs guide: demo-sd3 with CFG 7 against "", demo-flux with
// true CFG 3 against another picture.
func TestDemoFollowsPrompts(t *testing.T) {
	const steps, size = 12, 256
	seeds := 20
	if testing.Short() {
		seeds = 4 // the full 20 seeds per prompt take over a minute on 2 cores
	}
	type run struct {
		model, prompt, negative string
		cfg, trueCFG            float64
	}
	var runs []run
	for _, name := range assets.Names() {
		for _, prompt := range demoPrompts {
			runs = append(runs, run{model: name, prompt: prompt})
		}
	}
	runs = append(runs, run{model: "demo-sd3", prompt: demoPrompts[2], cfg: 7},
		run{model: "demo-flux", prompt: demoPrompts[3], negative: "a green square on a red background", trueCFG: 3})
	pipes := map[string]*Pipeline{}
	for _, name := range assets.Names() {
		m, err := OpenDemo(name)
		if err != nil {
			t.Fatal(err)
		}
		pipes[name] = newTestPipeline(t, m, true)
	}
	for _, r := range runs {
		start := time.Now()
		res, err := pipes[r.model].Generate(context.Background(), Request{Prompt: r.prompt, NegativePrompt: r.negative,
			CFGScale: r.cfg, TrueCFGScale: r.trueCFG, Width: size, Height: size, Steps: steps, Seed: 100, BatchSize: seeds,
			BatchMode: rng.SeedPerImage}, nil)
		if err != nil {
			t.Fatal(err)
		}
		gen := time.Since(start)
		shapes, fgs, bgs := assets.PromptAttributes(r.prompt)
		comps, rms := classifyAll(res.Images, size)
		bad := 0
		for i, got := range comps {
			ok := (len(shapes) == 0 || got.Shape == shapes[0]) && (len(fgs) == 0 || got.Color == fgs[0]) &&
				(len(bgs) == 0 || got.Background == bgs[0]) && rms[i] < 0.05
			if !ok {
				bad++
				t.Errorf("%s %q seed %d: drew %v (RMS %.3f)", r.model, r.prompt, 100+i, got, rms[i])
			}
		}
		t.Logf("%s %q (cfg %v, true cfg %v): %d/%d right; generate %v, with classification %v", r.model, r.prompt,
			res.Settings.CFGScale, res.Settings.TrueCFGScale, seeds-bad, seeds, gen.Round(time.Millisecond),
			time.Since(start).Round(time.Millisecond))
	}
}
