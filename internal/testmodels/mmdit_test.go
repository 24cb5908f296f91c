package testmodels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rflowrt/rflow/internal/onnx"
)

// sd3Feeds are random inputs for a TinySD3-like transformer at batch b, latent h×w, context length s.
func sd3Feeds(r *rand.Rand, c SD3Config, b, h, w, s int64) (map[string]feed, map[string][]int64) {
	t := make([]float32, b)
	for i := range t {
		t[i] = float32(1000 * r.Float64())
	}
	in := map[string]feed{
		"hidden_states":         randFeed(r, b, int64(c.InChannels), h, w),
		"encoder_hidden_states": randFeed(r, b, s, int64(c.JointDim)),
		"pooled_projections":    randFeed(r, b, int64(c.PooledDim)),
		"timestep":              floats([]int64{b}, t),
	}
	return in, map[string][]int64{"out_hidden_states": {b, int64(c.InChannels), h, w}}
}

func TestSD3TransformerRuns(t *testing.T) {
	for _, io := range []onnx.DataType{onnx.Float, onnx.Float16} {
		t.Run(io.String(), func(t *testing.T) {
			c := TinySD3()
			c.IO = io
			r := newRunner(t, mk(SD3Transformer(c)))
			r.names([]string{"hidden_states", "encoder_hidden_states", "pooled_projections", "timestep"},
				[]string{"out_hidden_states"})
			r.types(map[string]onnx.DataType{"hidden_states": io, "encoder_hidden_states": io,
				"pooled_projections": io, "timestep": io, "out_hidden_states": io})
			rng := rand.New(rand.NewPCG(1, 2))
			for _, sz := range [][4]int64{{1, 8, 8, 5}, {2, 16, 12, 7}} {
				in, outs := sd3Feeds(rng, c, sz[0], sz[1], sz[2], sz[3])
				finite(t, "out_hidden_states", r.run(in, outs)["out_hidden_states"])
			}
		})
	}
}

func TestSD3TransformerSensitivity(t *testing.T) {
	c := TinySD3()
	r := newRunner(t, mk(SD3Transformer(c)))
	in, outs := sd3Feeds(rand.New(rand.NewPCG(3, 4)), c, 2, 8, 8, 6)
	sensitivity(t, r, in, outs, "out_hidden_states", map[string]func(feed) feed{
		"hidden_states": bump, "encoder_hidden_states": bump, "pooled_projections": bump,
		"timestep": func(f feed) feed { f.f[0] += 100; return f },
	})
}

func TestSD3TransformerDeterministic(t *testing.T) {
	c := TinySD3()
	a, b := digest(t, mk(SD3Transformer(c))), digest(t, mk(SD3Transformer(c)))
	if a != b {
		t.Fatal("same config, different bytes")
	}
	c.Seed++
	if digest(t, mk(SD3Transformer(c))) == a {
		t.Fatal("different seed, same bytes")
	}
}

func TestSD3ConfigErrors(t *testing.T) {
	for _, mod := range []func(*SD3Config){
		func(c *SD3Config) { c.Heads = 3 },
		func(c *SD3Config) { c.Layers = 0 },
		func(c *SD3Config) { c.IO = onnx.Int64 },
		func(c *SD3Config) { c.SampleSize = 1 },
	} {
		c := TinySD3()
		mod(&c)
		if _, err := SD3Transformer(c); err == nil {
			t.Errorf("config %+v: no error", c)
		}
	}
}

// TestTimestepProj checks the 256-d sinusoidal embedding against diffusers' get_timestep_embedding
// (flip_sin_to_cos=True, downscale_freq_shift=0) computed in Go.
func TestTimestepProj(t *testing.T) {
	n := NewNet("tproj", DefaultOpset, 0)
	ts := n.B.Input("t", onnx.Float, onnx.Sym("b"))
	n.B.Output(n.timestepProj(ts), "emb", onnx.Float, onnx.Sym("b"), onnx.Fixed(256))
	r := newRunner(t, mk(n.Model()))
	tv := []float32{0, 1, 28.5714, 500, 999, 1000}
	got := r.run(map[string]feed{"t": floats([]int64{6}, tv)}, map[string][]int64{"emb": {6, 256}})["emb"]
	worst := 0.0
	for i, tt := range tv {
		for k := range 128 {
			e := float32(-math.Log(10000)) * float32(k) / 128 // torch: float32 arange · float32 scalar / 128
			arg := float64(tt * float32(math.Exp(float64(e))))
			worst = max(worst, math.Abs(float64(got[i*256+k])-math.Cos(arg)),
				math.Abs(float64(got[i*256+128+k])-math.Sin(arg)))
		}
	}
	if worst > 2e-6 {
		t.Fatalf("timestep embedding off by %g", worst)
	}
}

// TestUnpatchifyRoundTrip patchifies with a one-hot convolution whose output channel (py·p+px)·C+c
// picks x[c, py, px] (the p·p·C order proj_out produces), flattens, unpatchifies, and expects x back
// exactly.
func TestUnpatchifyRoundTrip(t *testing.T) {
	const p, ch = 2, 3
	w := make([]float32, p*p*ch*ch*p*p)
	for py := range p {
		for px := range p {
			for c := range ch {
				o := (py*p+px)*ch + c
				w[((o*ch+c)*p+py)*p+px] = 1
			}
		}
	}
	n := NewNet("patch", DefaultOpset, 0)
	x := n.B.Input("x", onnx.Float, onnx.Sym("b"), onnx.Fixed(ch), onnx.Sym("h"), onnx.Sym("w"))
	grid := n.Op("Conv", []string{x, n.Const(w, p*p*ch, ch, p, p)},
		onnx.AttrInts("kernel_shape", p, p), onnx.AttrInts("strides", p, p))
	y := n.unpatchify(n.gridTokens(grid, p*p*ch), x, p, ch)
	n.B.Output(y, "y", onnx.Float, onnx.Sym("b"), onnx.Fixed(ch), onnx.Sym("h"), onnx.Sym("w"))
	r := newRunner(t, mk(n.Model()))
	rng := rand.New(rand.NewPCG(5, 6))
	for _, sz := range [][3]int64{{1, 4, 4}, {2, 6, 10}} {
		in := randFeed(rng, sz[0], ch, sz[1], sz[2])
		got := r.run(map[string]feed{"x": in}, map[string][]int64{"y": {sz[0], ch, sz[1], sz[2]}})["y"]
		for i := range got {
			if got[i] != in.f[i] {
				t.Fatalf("size %v: y[%d] = %v, want %v", sz, i, got[i], in.f[i])
			}
		}
	}
}

// TestPosCrop checks the cropped positional embedding against diffusers' get_2d_sincos_pos_embed,
// written out here independently: grid positions arange(M)/(M/base) in float32, first half of the
// features from the column, second from the row, each [sin, cos] with ω_k = 1/10000^(k/(D/4)).
func TestPosCrop(t *testing.T) {
	c := SD3Config{Hidden: 8, PatchSize: 2, PosEmbedMaxSize: 6, SampleSize: 4}
	n := NewNet("crop", DefaultOpset, 0)
	g := n.B.Input("g", onnx.Float, onnx.Fixed(1), onnx.Fixed(8), onnx.Sym("h"), onnx.Sym("w"))
	n.B.Output(n.posCrop(g, c), "pos", onnx.Float, onnx.Fixed(1), onnx.Sym("hw"), onnx.Fixed(8))
	r := newRunner(t, mk(n.Model()))
	const hp, wp = 2, 3
	got := r.run(map[string]feed{"g": floats([]int64{1, 8, hp, wp}, make([]float32, 8*hp*wp))},
		map[string][]int64{"pos": {1, hp * wp, 8}})["pos"]
	top, left := (6-hp)/2, (6-wp)/2
	for i := range hp {
		for j := range wp {
			row, col := float32(top+i)/float32(3), float32(left+j)/float32(3) // M/base = 6/2
			for k := range 2 {
				om := 1 / math.Pow(10000, float64(k)/2)
				want := []float64{math.Sin(float64(col) * om), math.Cos(float64(col) * om),
					math.Sin(float64(row) * om), math.Cos(float64(row) * om)}
				base := (i*wp + j) * 8
				for q, idx := range []int{k, 2 + k, 4 + k, 6 + k} {
					if d := math.Abs(float64(got[base+idx]) - want[q]); d > 1e-7 {
						t.Errorf("pos (%d,%d) feature %d = %v, want %v", i, j, idx, got[base+idx], want[q])
					}
				}
			}
		}
	}
}
