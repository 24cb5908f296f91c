package pipeline

import (
	"bytes"
	"context"
	"testing"

	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/ort/orttest"
	"github.com/rflowrt/rflow/internal/testmodels"
	"github.com/rflowrt/rflow/vae"
)

// openFixture opens a cached tiny fixture folder.
func openFixture(t testing.TB, o testmodels.Options) *Model {
	t.Helper()
	m, err := Open(testmodels.Cached(t, o))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// newTestPipeline is a pipeline with test session options, closed at the end of the test.
func newTestPipeline(t testing.TB, m *Model, keep bool) *Pipeline {
	p := New(m, Options{Session: orttest.Options(), KeepModels: keep})
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

// imageBytes flattens a result's images for comparisons.
func imageBytes(res Result) []byte {
	var b []byte
	for _, img := range res.Images {
		b = append(b, img.Pix...)
	}
	return b
}

// TestGenerateFixtures runs txt2img end to end on every fixture kind and I/O variant at 64×64 with 2
// steps: images of the requested size, finite latents, the same bytes for the same seed.
func TestGenerateFixtures(t *testing.T) {
	variants := []struct {
		name string
		set  func(*testmodels.Options)
	}{
		{"int64-fp32", func(*testmodels.Options) {}},
		{"int32-ids", func(o *testmodels.Options) { o.IDs = onnx.Int32 }},
		{"fp16-io", func(o *testmodels.Options) { o.Precision = onnx.Float16 }},
	}
	if testing.Short() {
		variants = variants[:1] // the int32-id and fp16 forms are covered by every kind's long run
	}
	for _, kind := range testmodels.Kinds() {
		for _, v := range variants {
			t.Run(string(kind)+"/"+v.name, func(t *testing.T) {
				o := testmodels.Options{Kind: kind}
				v.set(&o)
				p := newTestPipeline(t, openFixture(t, o), false)
				req := Request{Prompt: "a red fox in the snow", NegativePrompt: "blurry", Width: 64, Height: 48, Steps: 2,
					Seed: 7, CFGScale: 3, TrueCFGScale: 2}
				var events []Event
				res, err := p.Generate(context.Background(), req, func(e Event) { events = append(events, e) })
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Images) != 1 || res.Images[0].Rect.Dx() != 64 || res.Images[0].Rect.Dy() != 48 {
					t.Fatalf("images %v", res.Images)
				}
				if i := vae.FirstNonFinite(res.Latents); i >= 0 || len(res.Latents) != 16*6*8 {
					t.Fatalf("latents: %d values, first non-finite %d", len(res.Latents), i)
				}
				if res.Timings.Steps != 2 || res.Settings.Steps != 2 || len(events) == 0 {
					t.Fatalf("timings %+v settings %+v events %d", res.Timings, res.Settings, len(events))
				}
				again, err := p.Generate(context.Background(), req, nil)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(imageBytes(res), imageBytes(again)) {
					t.Fatal("the same seed gave different images")
				}
			})
		}
	}
}
