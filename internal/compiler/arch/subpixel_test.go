package arch

import (
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/safetensors"
)

// withInput is g with one float32 input x of the given shape in place of its inputs, and one output
// of shape outShape.
func withInput(g golden, in string, x []float32, shape []int, out string, outShape ...int64) golden {
	g.inputs = map[string]safetensors.Tensor{in: safetensors.F32(in, shape, x)}
	g.shapes = map[string][]int64{out: outShape}
	return g
}

func normals(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// upsampleConvReference is nearest ×2 then a 3×3 conv with padding 1, written out: x [n, in, h, w],
// wt [out, in, 3, 3], the result [n, out, 2h, 2w].
func upsampleConvReference(x, wt, bias []float32, n, in, out, h, w int) []float32 {
	H, W := 2*h, 2*w
	y := make([]float32, n*out*H*W)
	for b := range n {
		for o := range out {
			for Y := range H {
				for X := range W {
					s := float64(bias[o])
					for c := range in {
						for dy := range 3 {
							for dx := range 3 {
								uy, ux := Y+dy-1, X+dx-1
								if uy < 0 || uy >= H || ux < 0 || ux >= W {
									continue // the ×2 tensor's zero padding
								}
								s += float64(wt[((o*in+c)*3+dy)*3+dx]) * float64(x[((b*in+c)*h+uy/2)*w+ux/2])
							}
						}
					}
					y[((b*out+o)*H+Y)*W+X] = float32(s)
				}
			}
		}
	}
	return y
}

// SubPixelUpsampleConv equals nearest ×2 + 3×3 conv computed directly, on odd, non-square and 1×1
// inputs, a batch of two and a conv that changes the width.
func TestSubPixelUpsampleConvMatchesDirect(t *testing.T) {
	const in, out = 5, 6
	rng := rand.New(rand.NewPCG(5, 6))
	wt, bias := normals(rng, out*in*9), normals(rng, out)
	w := Tensors{"up.weight": {Shape: []int64{out, in, 3, 3}, Data: wt}, "up.bias": {Shape: []int64{out}, Data: bias}}
	for _, s := range [][3]int{{2, 3, 4}, {1, 5, 3}, {2, 1, 1}} {
		n, h, wd := s[0], s[1], s[2]
		net := NewNet("up", w)
		x := net.FloatInput("x", onnx.Float, onnx.Sym("n"), onnx.Fixed(in), onnx.Sym("h"), onnx.Sym("w"))
		net.FloatOutput(net.SubPixelUpsampleConv(x, "up", in, out), "y", onnx.Float)
		m, err := net.Model()
		if err != nil {
			t.Fatal(err)
		}
		xs := normals(rng, n*in*h*wd)
		g := withInput(golden{}, "x", xs, []int{n, in, h, wd}, "y", int64(n), out, int64(2*h), int64(2*wd))
		got := runModel(t, m, g, "y")["y"]
		assertClose(t, "y", got, upsampleConvReference(xs, wt, bias, n, in, out, h, wd), 1e-5, 1e-5)
	}
}

// The sub-pixel decoder equals the Resize + 3×3 conv decoder on the same weights, for odd non-square
// latents in a batch of two (the upsamplers then see odd sizes at every level).
func TestSubPixelDecoderMatchesResize(t *testing.T) {
	for _, tc := range []struct {
		golden string
		h, w   int
	}{{"vae_sd3", 7, 5}, {"vae_noattn", 3, 5}} {
		g := loadGolden(t, tc.golden)
		c := goldenConfig(t, g)
		cfg, err := ParseVAEConfig(c)
		if err != nil {
			t.Fatal(err)
		}
		sf := cfg.ScaleFactor()
		z := normals(rand.New(rand.NewPCG(1, 2)), 2*cfg.LatentChannels*tc.h*tc.w)
		in := withInput(g, "latent_sample", z, []int{2, cfg.LatentChannels, tc.h, tc.w}, "sample",
			2, int64(cfg.OutChannels), int64(sf*tc.h), int64(sf*tc.w))
		var outs [2][]float32
		for i, resize := range []bool{false, true} {
			m, err := vaeDecoder(g.weights, c, IO{}, resize)
			if err != nil {
				t.Fatal(err)
			}
			outs[i] = runModel(t, m, in, "sample")["sample"]
		}
		assertClose(t, tc.golden+" sample", outs[0], outs[1], 1e-5, 1e-5)
	}
}

// The fused decoder has sub-pixel upsamplers whose kernels are made from the 3×3 weight only when
// the graph is written; the unfused one keeps torch's Resize + Conv.
func TestSubPixelDecoderGraph(t *testing.T) {
	g := loadGolden(t, "vae_noattn") // two upsamplers
	for _, io := range []IO{{}, {Attention: UnfusedAttention}} {
		cw := countingWeights{Weights: g.weights, mu: &sync.Mutex{}, calls: map[string]int{}}
		m, err := VAEDecoder(cw, goldenConfig(t, g), io)
		if err != nil {
			t.Fatal(err)
		}
		const conv = "decoder.up_blocks.0.upsamplers.0.conv.weight"
		if k := cw.calls[conv]; k != 0 {
			t.Errorf("%v: building read %s %d times, want 0 (it is read as the graph is written)", io.Attention, conv, k)
		}
		ops := map[string]int{}
		for _, n := range m.Graph.Nodes {
			ops[n.OpType]++
		}
		phases := 0
		for _, in := range m.Graph.Initializers {
			if strings.HasPrefix(in.Name, conv+subPixelSuffix) {
				phases++
				if len(in.Dims) != 4 || in.Dims[2] != 2 || in.Dims[3] != 2 {
					t.Errorf("%s: dims %v, want [out in 2 2]", in.Name, in.Dims)
				}
			}
		}
		if _, err := m.Marshal(); err != nil {
			t.Fatal(err)
		}
		if io.Attention == UnfusedAttention {
			if ops["Resize"] != 2 || ops["DepthToSpace"] != 0 || phases != 0 || cw.calls[conv] != 1 {
				t.Errorf("unfused: %d Resize, %d DepthToSpace, %d phase kernels, weight read %d times; want 2, 0, 0, 1",
					ops["Resize"], ops["DepthToSpace"], phases, cw.calls[conv])
			}
			continue
		}
		if ops["Resize"] != 0 || ops["DepthToSpace"] != 2 || phases != 4 || cw.calls[conv] != 4 {
			t.Errorf("fused: %d Resize, %d DepthToSpace, %d phase kernels, weight read %d times; want 0, 2, 4, 4",
				ops["Resize"], ops["DepthToSpace"], phases, cw.calls[conv])
		}
	}
}
