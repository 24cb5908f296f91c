package pipeline

import (
	"context"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/testmodels"
	"github.com/rflowrt/rflow/vae"
)

// TestLayoutsInTheWild opens fixtures written in the layouts of turn2-findings.md §5, checks the layout
// Inspect names, and draws a 64×64 picture from each loadable one.
func TestLayoutsInTheWild(t *testing.T) {
	cases := []struct {
		kind   testmodels.Kind
		layout testmodels.Layout
		want   string
	}{
		{testmodels.KindSD3, testmodels.LayoutAMD, LayoutAMDIO32},
		{testmodels.KindFluxDev, testmodels.LayoutOnnxStack, LayoutOnnxStack},
		{testmodels.KindSD3, testmodels.LayoutTensorRT, LayoutTensorRT}, // bf16 timestep, ControlNet input, latent
		{testmodels.KindFluxDev, testmodels.LayoutOpt, LayoutOpt},
	}
	for _, c := range cases {
		t.Run(string(c.kind)+"-"+string(c.layout), func(t *testing.T) {
			dir := testmodels.Cached(t, testmodels.Options{Kind: c.kind, Layout: c.layout})
			rep := Inspect(dir)
			if rep.Layout != c.want {
				t.Fatalf("layout %q, want %q (problems %v)", rep.Layout, c.want, rep.Problems)
			}
			if c.want == LayoutOpt {
				if len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0].String(), "TensorRT-demo layout") {
					t.Fatalf("problems %v: want the one line naming the *.opt layout", rep.Problems)
				}
				return
			}
			m, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			if c.want == LayoutAMDIO32 && !strings.HasSuffix(m.Dir, "_io32") {
				t.Fatalf("AMD layout read %s, want the _io32 folder", m.Dir)
			}
			if c.want == LayoutTensorRT && (m.Transformer.Output != "latent" || (c.kind == testmodels.KindSD3) != (m.Transformer.ControlNet != "")) {
				t.Fatalf("TensorRT layout: output %q, ControlNet input %q", m.Transformer.Output, m.Transformer.ControlNet)
			}
			p := newTestPipeline(t, m, false)
			res, err := p.Generate(context.Background(), Request{Prompt: "a cat", Width: 64, Height: 64, Steps: 2, Seed: 1}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if i := vae.FirstNonFinite(res.Latents); i >= 0 || len(res.Images) != 1 {
				t.Fatalf("non-finite latent %d or %d images", i, len(res.Images))
			}
		})
	}
}
