package exportquant

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/rflowrt/rflow/internal/compiler/arch"
	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/internal/ort/orttest"
	"github.com/rflowrt/rflow/internal/testmodels"
)

func TestMain(m *testing.M) { orttest.Main(m) }

// tinySD3Config is testmodels.TinySD3 as a diffusers config.
func tinySD3Config() arch.Config {
	return arch.Config{"num_layers": 2.0, "attention_head_dim": 32.0, "num_attention_heads": 2.0,
		"joint_attention_dim": 96.0, "caption_projection_dim": 64.0, "pooled_projection_dim": 32.0,
		"in_channels": 16.0, "out_channels": 16.0, "patch_size": 2.0, "pos_embed_max_size": 32.0,
		"sample_size": 8.0, "qk_norm": "rms_norm", "dual_attention_layers": []any{0.0}}
}

// tinyFluxConfig is testmodels.TinyFlux(true) as a diffusers config.
func tinyFluxConfig() arch.Config {
	return arch.Config{"_class_name": "FluxTransformer2DModel", "patch_size": 1.0, "in_channels": 64.0,
		"num_layers": 1.0, "num_single_layers": 2.0, "attention_head_dim": 32.0, "num_attention_heads": 2.0,
		"joint_attention_dim": 96.0, "pooled_projection_dim": 32.0, "guidance_embeds": true,
		"axes_dims_rope": []any{8.0, 12.0, 12.0}}
}

// transformer builds a tiny SD3 (qk norm, a dual-attention block) or FLUX transformer on random
// weights, with the attention operator and weights given.
func transformer(t testing.TB, flux bool, att arch.AttentionOp, w arch.Weights) *onnx.Model {
	t.Helper()
	if w == nil {
		w = testmodels.RandomWeights{Seed: 7}
	}
	var m *onnx.Model
	var err error
	if flux {
		m, err = arch.FluxTransformer(w, tinyFluxConfig(), arch.IO{Attention: att})
	} else {
		var sc arch.SD3Config
		if sc, err = arch.ParseSD3Config(tinySD3Config()); err == nil {
			sc.NoSkipLayers = true
			m, err = arch.BuildSD3(w, sc, arch.IO{Attention: att})
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// writeModel writes m as dir/model.onnx with external data and returns the path.
func writeModel(t testing.TB, m *onnx.Model, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, modelFile)
	if err := m.WriteFile(p, onnx.WriteOptions{ExternalData: true, DataName: dataFile}); err != nil {
		t.Fatal(err)
	}
	return p
}

// dimSizes are the sizes given to the fixtures' symbolic dimensions (others are 1).
var dimSizes = map[string]int64{"batch_size": 2, "height": 8, "width": 8, "packed_height_width": 16,
	"sequence_length": 5, "step": 2, "latent_height": 4, "latent_width": 4}

// runModel runs the model at path once on seeded random inputs (the same for the same seed and
// signature) and returns its float outputs.
func runModel(t testing.TB, path string, seed uint64) map[string][]float32 {
	t.Helper()
	ctx := context.Background()
	s, err := ort.NewSession(ctx, path, orttest.Options())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	shape := func(ti ort.TensorInfo) []int64 {
		out := make([]int64, len(ti.Shape))
		for i, d := range ti.Shape {
			out[i] = d
			if d < 0 {
				out[i] = 1
				if n, ok := dimSizes[ti.DimNames[i]]; ok {
					out[i] = n
				}
			}
		}
		return out
	}
	r := rand.New(rand.NewPCG(seed, 1))
	var ins, outs []*ort.Tensor
	defer func() {
		for _, x := range append(ins, outs...) {
			x.Destroy()
		}
	}()
	for _, ti := range s.Inputs() {
		x, err := s.NewInput(ti.Name, shape(ti)...)
		if err != nil {
			t.Fatal(err)
		}
		ins = append(ins, x)
		switch ti.Type {
		case onnx.Float:
			v := x.Float32s()
			for i := range v {
				v[i] = float32(r.NormFloat64())
			}
			if ti.Name == "timestep" || ti.Name == "guidance" {
				for i := range v {
					v[i] = 0.3 + 0.5*r.Float32()
				}
			}
		case onnx.Int64:
			v := x.Int64s()
			for i := range v {
				v[i] = int64(r.IntN(4))
			}
		default:
			t.Fatalf("input %s of type %v", ti.Name, ti.Type)
		}
	}
	for _, ti := range s.Outputs() {
		sh := shape(ti)
		if ti.Name == "out_hidden_states" { // torch names its dimensions after nodes: take the input's
			for i, in := range s.Inputs() {
				if in.Name == "hidden_states" {
					sh = ins[i].Shape()
				}
			}
		}
		if ti.Name == "sample" && len(sh) == 4 { // the VAE decoder: 8× the latent
			sh[2], sh[3] = 8*dimSizes["latent_height"], 8*dimSizes["latent_width"]
		}
		x, err := s.NewOutput(ti.Name, sh...)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, x)
	}
	if err := s.Run(ctx, ins, outs); err != nil {
		t.Fatal(err)
	}
	res := map[string][]float32{}
	for i, ti := range s.Outputs() {
		v := make([]float32, outs[i].Len())
		if err := outs[i].ReadFloat32(v); err != nil {
			t.Fatal(err)
		}
		res[ti.Name] = v
	}
	return res
}

// maxDiff is the largest |a−b| and the largest |a|.
func maxDiff(a, b []float32) (d, m float64) {
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
		m = max(m, math.Abs(float64(a[i])))
	}
	return d, m
}

// opCounts counts nodes by type ("domain:op" outside ai.onnx).
func opCounts(m *onnx.Model) map[string]int {
	c := map[string]int{}
	walkNodes(&m.Graph, func(n *onnx.Node) {
		op := n.OpType
		if n.Domain != "" {
			op = n.Domain + ":" + op
		}
		c[op]++
	})
	return c
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
