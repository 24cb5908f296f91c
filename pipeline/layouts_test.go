package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"slices"
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
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // the *.opt/ overlay folder
	for _, c := range cases {
		t.Run(string(c.kind)+"-"+string(c.layout), func(t *testing.T) {
			dir := testmodels.Cached(t, testmodels.Options{Kind: c.kind, Layout: c.layout})
			rep := Inspect(dir)
			if rep.Layout != c.want {
				t.Fatalf("layout %q, want %q (problems %v)", rep.Layout, c.want, rep.Problems)
			}
			if len(rep.Problems) > 0 {
				t.Fatalf("problems %v", rep.Problems)
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

// TestOptLayoutEqualsOptimum: a FLUX.1-dev and an SD3 *.opt/ folder set (TensorRT-demo signatures:
// CLIP text_embeddings/pooled_embeddings, or text_embeddings/hidden_states with an attention_mask
// input; T5 text_embeddings; latent output, bf16 timestep; VAE latent → images; no model index,
// scheduler, tokenizers or configs) draw the same image and latents as the same weights in the Optimum
// layout, read through rflow's released-model defaults. The reference folder is the Optimum one with
// the transformer's TensorRT signature (LayoutTensorRT), since the *.opt/ transformer's bfloat16
// timestep rounds σ (0.61287 → 0.61328) and so changes the numbers by itself.
func TestOptLayoutEqualsOptimum(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	// The overlay's tokenizers are rflow's embedded (real) ones; the fixtures have them only when
	// shared/tokenizers is there (else a generated vocabulary).
	_, err := os.Stat(filepath.Join("..", "..", "shared", "tokenizers"))
	realTokenizers := err == nil
	for _, c := range []struct {
		kind    testmodels.Kind
		variant string
	}{{testmodels.KindFluxDev, "flux-dev"}, {testmodels.KindSD3, "sd3.5-large"}} {
		t.Run(string(c.kind), func(t *testing.T) {
			o := testmodels.Options{Kind: c.kind, Layout: testmodels.LayoutTensorRT}
			plain := testmodels.Cached(t, o)
			o.Layout = testmodels.LayoutOpt
			opt := testmodels.Cached(t, o)
			rep := Inspect(opt)
			if rep.Layout != LayoutOpt || len(rep.Problems) > 0 || !strings.Contains(rep.LayoutNote, c.variant) {
				t.Fatalf("layout %q, note %q, problems %v", rep.Layout, rep.LayoutNote, rep.Problems)
			}
			if !realTokenizers {
				t.Skip("no shared/tokenizers: the fixtures' generated vocabulary is not rflow's embedded one")
			}
			req := Request{Prompt: "a red fox in the snow", Width: 64, Height: 64, Steps: 2, Seed: 3}
			var results []Result
			for _, dir := range []string{plain, opt} {
				m, err := Open(dir)
				if err != nil {
					t.Fatal(err)
				}
				if dir == opt {
					clip, t5 := m.Components[compTextEncoder], m.Components[compTextEncoder2]
					if c.kind == testmodels.KindSD3 {
						t5 = m.Components[compTextEncoder3]
					}
					if _, mask := clip.Input("attention_mask"); mask != (c.kind == testmodels.KindSD3) {
						t.Fatalf("CLIP inputs %v: an attention_mask only in SD3's", clip.Inputs)
					}
					if len(t5.Outputs) != 1 || t5.Outputs[0].Name != "text_embeddings" || clip.Outputs[0].Name != "text_embeddings" {
						t.Fatalf("the fixture's encoders are not the TensorRT demo's: %v, %v", clip.Outputs, t5.Outputs)
					}
				}
				res, err := newTestPipeline(t, m, false).Generate(context.Background(), req, nil)
				if err != nil {
					t.Fatalf("%s: %v", dir, err)
				}
				results = append(results, res)
			}
			a, b := results[0], results[1]
			if !slices.Equal(a.Latents, b.Latents) || !slices.Equal(a.Images[0].Pix, b.Images[0].Pix) {
				t.Fatalf("the *.opt/ folder draws another picture (latents equal %v)", slices.Equal(a.Latents, b.Latents))
			}
			if a.Settings.Shift != b.Settings.Shift || a.Settings.Mu != b.Settings.Mu {
				t.Errorf("schedules differ: shift %v/%v, mu %v/%v", a.Settings.Shift, b.Settings.Shift, a.Settings.Mu, b.Settings.Mu)
			}
		})
	}
}
