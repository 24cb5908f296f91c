package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/rflowrt/rflow/internal/ort/orttest"
	"github.com/rflowrt/rflow/scheduler"
)

func newTestEngine(t testing.TB, m *Model, o EngineOptions) *Engine {
	o.Session = orttest.Options()
	e := NewEngine(m, o)
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	})
	return e
}

// TestEngineBatchesMatchLoneRuns: concurrent compatible requests share transformer runs, and each gets
// the noise, latents, pixels, settings and previews of a lone run of its own request, bit for bit;
// an incompatible request (other steps) runs on its own and is right too.
func TestEngineBatchesMatchLoneRuns(t *testing.T) {
	for _, name := range []string{"demo-sd3", "demo-flux"} {
		t.Run(name, func(t *testing.T) {
			m, err := OpenDemo(name)
			if err != nil {
				t.Fatal(err)
			}
			e := newTestEngine(t, m, EngineOptions{MaxBatch: 4, BatchWindow: 200 * time.Millisecond})
			lone := newTestPipeline(t, m, true)
			var reqs []Request
			for i := range 6 {
				r := Request{Prompt: fmt.Sprintf("a red circle number %d", i), Seed: uint64(100 + 7*i), Width: 64, Height: 64, Steps: 3,
					PreviewEvery: 1}
				if i == 5 {
					r.Steps = 2 // not compatible with the others
				}
				reqs = append(reqs, r)
			}
			type got struct {
				res      Result
				err      error
				previews []*image.NRGBA
				steps    int
			}
			results := make([]got, len(reqs))
			var wg sync.WaitGroup
			for i, r := range reqs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					g := &results[i]
					r.OnPreview = func(_ int, img *image.NRGBA) { g.previews = append(g.previews, img) }
					g.res, g.err = e.Generate(context.Background(), r, func(ev Event) {
						if ev.Stage == StageDenoise {
							g.steps++
						}
					})
				}()
			}
			wg.Wait()
			st := e.Stats()
			if st.LargestBatch < 2 || st.Runs >= int64(len(reqs)) {
				t.Errorf("stats %+v: want compatible requests batched (fewer runs than %d requests)", st, len(reqs))
			}
			for i, r := range reqs {
				g := results[i]
				if g.err != nil {
					t.Fatalf("request %d: %v", i, g.err)
				}
				var want []*image.NRGBA
				r.OnPreview = func(_ int, img *image.NRGBA) { want = append(want, img) }
				one, err := lone.Generate(context.Background(), r, nil)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(float32Bytes(one.Noise), float32Bytes(g.res.Noise)) || !bytes.Equal(float32Bytes(one.Latents), float32Bytes(g.res.Latents)) {
					t.Errorf("request %d: noise or latents differ from a lone run", i)
				}
				if len(g.res.Images) != 1 || !bytes.Equal(one.Images[0].Pix, g.res.Images[0].Pix) {
					t.Errorf("request %d: pixels differ from a lone run", i)
				}
				if !reflect.DeepEqual(one.Settings, g.res.Settings) {
					t.Errorf("request %d: settings\n%+v\nwant a lone run's\n%+v", i, g.res.Settings, one.Settings)
				}
				if g.steps != r.Steps {
					t.Errorf("request %d: %d denoise events, want %d", i, g.steps, r.Steps)
				}
				if len(g.previews) != len(want) {
					t.Fatalf("request %d: %d previews, want %d", i, len(g.previews), len(want))
				}
				for k := range want {
					if !bytes.Equal(want[k].Pix, g.previews[k].Pix) {
						t.Errorf("request %d: preview %d differs from a lone run's", i, k)
					}
				}
			}
		})
	}
}

// TestEngineCancel: a request cancelled while it shares a run returns context.Canceled at once and the
// others in the run still get their images; a closed engine refuses work.
func TestEngineCancel(t *testing.T) {
	m, err := OpenDemo("demo-sd3")
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(m, EngineOptions{Session: orttest.Options(), MaxBatch: 4, BatchWindow: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := context.Background()
			if i == 0 {
				c = ctx
			}
			r := Request{Prompt: "a square", Seed: uint64(i), Width: 64, Height: 64, Steps: 6}
			_, errs[i] = e.Generate(c, r, func(ev Event) {
				if i == 0 && ev.Stage == StageDenoise && ev.Step == 2 {
					cancel()
				}
			})
		}()
	}
	wg.Wait()
	if !errors.Is(errs[0], context.Canceled) {
		t.Errorf("cancelled request: %v, want context.Canceled", errs[0])
	}
	for i := 1; i < 3; i++ {
		if errs[i] != nil {
			t.Errorf("request %d sharing the run: %v", i, errs[i])
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Generate(context.Background(), Request{Prompt: "x"}, nil); !errors.Is(err, ErrEngineClosed) {
		t.Errorf("after Close: %v, want ErrEngineClosed", err)
	}
}

// TestBatchKey: only requests that differ in prompt and seed share a key; anything whose effect on a
// batch is not row by row runs alone.
func TestBatchKey(t *testing.T) {
	base := Request{Prompt: "a", Seed: 1, Width: 64, Height: 64, Steps: 3, PreviewEvery: 1}
	k, ok := batchKey(base)
	if !ok {
		t.Fatal("a plain request must batch")
	}
	other := base
	other.Prompt, other.Prompt2, other.Seed, other.PreviewEvery = "b", "c", 9, 0
	if k2, ok := batchKey(other); !ok || k2 != k {
		t.Errorf("prompt and seed changed the key: %q vs %q", k2, k)
	}
	other = base
	other.Width = 128
	if k2, _ := batchKey(other); k2 == k {
		t.Error("another width shares the key")
	}
	for name, r := range map[string]Request{
		"init image":    {InitImage: image.NewNRGBA(image.Rect(0, 0, 16, 16))},
		"batch size":    {BatchSize: 2},
		"items":         {Items: []BatchItem{{Prompt: "x"}}},
		"guidance rule": {GuidanceRule: "apg"},
		"step cache":    {StepCache: "easycache"},
		"on step":       {OnStep: func(scheduler.Step) {}},
		"vae tiling":    {VAETiling: true},
		"slg":           {SLGLayers: []int{7}},
	} {
		if _, ok := batchKey(r); ok {
			t.Errorf("%s: batched, want alone", name)
		}
	}
}
