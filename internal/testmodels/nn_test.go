package testmodels

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rflowrt/rflow/internal/onnx"
)

// lastWeights returns the float32 values of the k initializers added last to n, oldest first.
func lastWeights(t *testing.T, n *Net, k int) [][]float32 {
	t.Helper()
	g, err := n.B.Graph()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]float32
	for _, init := range g.Initializers[len(g.Initializers)-k:] {
		if init.Type != onnx.Float {
			t.Fatalf("initializer %s is %v", init.Name, init.Type)
		}
		v := make([]float32, len(init.Raw)/4)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(init.Raw[4*i:]))
		}
		out = append(out, v)
	}
	return out
}

func TestNetWeightsDeterministic(t *testing.T) {
	a, b, c := NewNet("a", DefaultOpset, 7), NewNet("b", DefaultOpset, 7), NewNet("c", DefaultOpset, 8)
	for _, n := range []*Net{a, b, c} {
		n.Weight("w", []int64{100, 100}, 0.5)
	}
	wa, wb, wc := lastWeights(t, a, 1)[0], lastWeights(t, b, 1)[0], lastWeights(t, c, 1)[0]
	if maxDiff(wa, wb) != 0 || maxDiff(wa, wc) == 0 {
		t.Fatal("weights do not follow the seed")
	}
	var s2 float64
	for _, x := range wa {
		s2 += float64(x) * float64(x)
	}
	if std := math.Sqrt(s2 / float64(len(wa))); math.Abs(std-0.5) > 0.02 {
		t.Fatalf("std %g, want 0.5", std)
	}
}

// TestNNActivations checks the element-wise blocks and LayerNorm without affine against Go.
func TestNNActivations(t *testing.T) {
	n := NewNet("act", DefaultOpset, 1)
	x := n.B.Input("x", onnx.Float, onnx.Fixed(3), onnx.Fixed(8))
	outs := map[string]string{
		"gelu": n.GELU(x, false), "gelu_tanh": n.GELU(x, true), "quick_gelu": n.QuickGELU(x),
		"silu": n.SiLU(x), "ln": n.LayerNorm(x, 8, false, 1e-5),
	}
	shapes := map[string][]int64{}
	for _, name := range []string{"gelu", "gelu_tanh", "quick_gelu", "silu", "ln"} {
		n.B.Output(outs[name], name, onnx.Float, onnx.Fixed(3), onnx.Fixed(8))
		shapes[name] = []int64{3, 8}
	}
	in := randFeed(rand.New(rand.NewPCG(1, 1)), 3, 8)
	for i := range in.f {
		in.f[i] *= 3
	}
	got := newRunner(t, mk(n.Model())).run(map[string]feed{"x": in}, shapes)
	sig := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	ref := map[string]func(v float64) float64{
		"gelu": func(v float64) float64 { return v * 0.5 * (1 + math.Erf(v/math.Sqrt2)) },
		"gelu_tanh": func(v float64) float64 {
			return 0.5 * v * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(v+0.044715*v*v*v)))
		},
		"quick_gelu": func(v float64) float64 { return v * sig(1.702*v) },
		"silu":       func(v float64) float64 { return v * sig(v) },
	}
	for name, f := range ref {
		for i, v := range in.f {
			if d := math.Abs(float64(got[name][i]) - f(float64(v))); d > 1e-5 {
				t.Errorf("%s(%v) = %v, want %v", name, v, got[name][i], f(float64(v)))
			}
		}
	}
	for r := range 3 {
		row := in.f[r*8 : r*8+8]
		mean, vr := meanVar(row)
		for j, v := range row {
			want := (float64(v) - mean) / math.Sqrt(vr+1e-5)
			if d := math.Abs(float64(got["ln"][r*8+j]) - want); d > 1e-5 {
				t.Errorf("ln[%d,%d] = %v, want %v", r, j, got["ln"][r*8+j], want)
			}
		}
	}
}

func meanVar(v []float32) (mean, variance float64) {
	for _, x := range v {
		mean += float64(x)
	}
	mean /= float64(len(v))
	for _, x := range v {
		variance += (float64(x) - mean) * (float64(x) - mean)
	}
	return mean, variance / float64(len(v))
}

func TestNNRMSNorm(t *testing.T) {
	n := NewNet("rms", DefaultOpset, 2)
	x := n.B.Input("x", onnx.Float, onnx.Fixed(2), onnx.Fixed(6))
	n.B.Output(n.RMSNorm(x, 6, 1e-6), "y", onnx.Float, onnx.Fixed(2), onnx.Fixed(6))
	w := lastWeights(t, n, 1)[0]
	in := randFeed(rand.New(rand.NewPCG(2, 2)), 2, 6)
	got := newRunner(t, mk(n.Model())).run(map[string]feed{"x": in}, map[string][]int64{"y": {2, 6}})["y"]
	for r := range 2 {
		ms := 0.0
		for _, v := range in.f[r*6 : r*6+6] {
			ms += float64(v) * float64(v) / 6
		}
		for j := range 6 {
			want := float64(in.f[r*6+j]) / math.Sqrt(ms+1e-6) * float64(w[j])
			if d := math.Abs(float64(got[r*6+j]) - want); d > 1e-5 {
				t.Errorf("rms[%d,%d] = %v, want %v", r, j, got[r*6+j], want)
			}
		}
	}
}

// TestNNGroupNormUpsample checks GroupNorm (with its affine) and nearest ×2 upsampling on NCHW.
func TestNNGroupNormUpsample(t *testing.T) {
	const b, c, h, w, groups = 2, 4, 3, 5, 2
	n := NewNet("gn", DefaultOpset, 3)
	x := n.B.Input("x", onnx.Float, onnx.Sym("b"), onnx.Fixed(c), onnx.Sym("h"), onnx.Sym("w"))
	n.B.Output(n.GroupNorm(x, groups, c, 1e-6), "gn", onnx.Float, onnx.Sym("b"), onnx.Fixed(c), onnx.Sym("h"), onnx.Sym("w"))
	aff := lastWeights(t, n, 2)
	n.B.Output(n.Upsample2x(x), "up", onnx.Float, onnx.Sym("b"), onnx.Fixed(c), onnx.Sym("h2"), onnx.Sym("w2"))
	in := randFeed(rand.New(rand.NewPCG(3, 3)), b, c, h, w)
	got := newRunner(t, mk(n.Model())).run(map[string]feed{"x": in},
		map[string][]int64{"gn": {b, c, h, w}, "up": {b, c, 2 * h, 2 * w}})
	per := c / groups * h * w
	for i := 0; i < b*groups; i++ {
		mean, vr := meanVar(in.f[i*per : (i+1)*per])
		for k := range per {
			ch := (i%groups)*(c/groups) + k/(h*w)
			want := (float64(in.f[i*per+k])-mean)/math.Sqrt(vr+1e-6)*float64(aff[0][ch]) + float64(aff[1][ch])
			if d := math.Abs(float64(got["gn"][i*per+k]) - want); d > 1e-5 {
				t.Fatalf("gn[%d] = %v, want %v", i*per+k, got["gn"][i*per+k], want)
			}
		}
	}
	for p := 0; p < b*c; p++ {
		for y := range 2 * h {
			for xx := range 2 * w {
				if got["up"][(p*2*h+y)*2*w+xx] != in.f[(p*h+y/2)*w+xx/2] {
					t.Fatalf("up[%d,%d,%d] is not the nearest source pixel", p, y, xx)
				}
			}
		}
	}
}

// TestNNAttention checks multi-head attention with an additive bias against a float64 reference.
func TestNNAttention(t *testing.T) {
	const bt, sq, sk, heads, d = 2, 3, 5, 2, 4
	n := NewNet("attn", DefaultOpset, 4)
	q := n.B.Input("q", onnx.Float, onnx.Fixed(bt), onnx.Fixed(sq), onnx.Fixed(heads*d))
	k := n.B.Input("k", onnx.Float, onnx.Fixed(bt), onnx.Fixed(sk), onnx.Fixed(heads*d))
	v := n.B.Input("v", onnx.Float, onnx.Fixed(bt), onnx.Fixed(sk), onnx.Fixed(heads*d))
	bias := n.B.Input("bias", onnx.Float, onnx.Fixed(sq), onnx.Fixed(sk))
	n.B.Output(n.Attention(q, k, v, heads, bias), "y", onnx.Float, onnx.Fixed(bt), onnx.Fixed(sq), onnx.Fixed(heads*d))
	rng := rand.New(rand.NewPCG(4, 4))
	in := map[string]feed{"q": randFeed(rng, bt, sq, heads*d), "k": randFeed(rng, bt, sk, heads*d),
		"v": randFeed(rng, bt, sk, heads*d), "bias": randFeed(rng, sq, sk)}
	got := newRunner(t, mk(n.Model())).run(in, map[string][]int64{"y": {bt, sq, heads * d}})["y"]
	at := func(f feed, b, s, h, j, sl int) float64 { return float64(f.f[(b*sl+s)*heads*d+h*d+j]) }
	for b := range bt {
		for h := range heads {
			for i := range sq {
				w := make([]float64, sk)
				sum := 0.0
				for j := range sk {
					dot := 0.0
					for e := range d {
						dot += at(in["q"], b, i, h, e, sq) * at(in["k"], b, j, h, e, sk)
					}
					w[j] = math.Exp(dot/math.Sqrt(d) + float64(in["bias"].f[i*sk+j]))
					sum += w[j]
				}
				for e := range d {
					want := 0.0
					for j := range sk {
						want += w[j] / sum * at(in["v"], b, j, h, e, sk)
					}
					if g := float64(got[(b*sq+i)*heads*d+h*d+e]); math.Abs(g-want) > 1e-5 {
						t.Fatalf("y[%d,%d,h%d,%d] = %v, want %v", b, i, h, e, g, want)
					}
				}
			}
		}
	}
}
