package testmodels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rflowrt/rflow/internal/onnx"
)

// fluxFeeds are random inputs for a FLUX transformer at batch b, packed grid gh×gw, text length s,
// with img_ids [0, i, j] and txt_ids zero as the pipeline makes them.
func fluxFeeds(r *rand.Rand, c FluxConfig, b, gh, gw, s int64) (map[string]feed, map[string][]int64) {
	hw := gh * gw
	img := make([]float32, 0, 3*hw)
	for i := range gh {
		for j := range gw {
			img = append(img, 0, float32(i), float32(j))
		}
	}
	t, g := make([]float32, b), make([]float32, b)
	for i := range t {
		t[i], g[i] = float32(r.Float64()), 3.5
	}
	in := map[string]feed{
		"hidden_states":         randFeed(r, b, hw, int64(c.InChannels)),
		"encoder_hidden_states": randFeed(r, b, s, int64(c.JointDim)),
		"pooled_projections":    randFeed(r, b, int64(c.PooledDim)),
		"timestep":              floats([]int64{b}, t),
		"img_ids":               floats([]int64{hw, 3}, img),
		"txt_ids":               floats([]int64{s, 3}, make([]float32, 3*s)),
	}
	if c.Guidance {
		in["guidance"] = floats([]int64{b}, g)
	}
	return in, map[string][]int64{"out_hidden_states": {b, hw, int64(c.InChannels)}}
}

func TestFluxTransformerRuns(t *testing.T) {
	cases := []struct {
		guidance bool
		io, ids  onnx.DataType
	}{
		{true, onnx.Float, onnx.Int64},
		{false, onnx.Float, onnx.Int64},
		{true, onnx.Float16, onnx.Float16},
		{false, onnx.Float16, onnx.Int64},
		{false, onnx.Float, onnx.Float},
	}
	for _, tc := range cases {
		c := TinyFlux(tc.guidance)
		c.IO, c.IDs = tc.io, tc.ids
		t.Run(fmtCase(tc.guidance, tc.io, tc.ids), func(t *testing.T) {
			r := newRunner(t, mk(FluxTransformer(c)))
			ins := []string{"hidden_states", "encoder_hidden_states", "pooled_projections", "timestep", "img_ids", "txt_ids"}
			types := map[string]onnx.DataType{"hidden_states": c.IO, "encoder_hidden_states": c.IO,
				"pooled_projections": c.IO, "timestep": c.IO, "img_ids": c.IDs, "txt_ids": c.IDs, "out_hidden_states": c.IO}
			if c.Guidance {
				ins = append(ins, "guidance")
				types["guidance"] = c.IO
			}
			r.names(ins, []string{"out_hidden_states"})
			r.types(types)
			rng := rand.New(rand.NewPCG(7, 8))
			for _, sz := range [][4]int64{{1, 4, 4, 5}, {2, 3, 6, 9}} {
				in, outs := fluxFeeds(rng, c, sz[0], sz[1], sz[2], sz[3])
				finite(t, "out_hidden_states", r.run(in, outs)["out_hidden_states"])
			}
		})
	}
}

func fmtCase(guidance bool, io, ids onnx.DataType) string {
	g := "schnell"
	if guidance {
		g = "dev"
	}
	return g + "_" + io.String() + "_ids_" + ids.String()
}

func TestFluxTransformerSensitivity(t *testing.T) {
	c := TinyFlux(true)
	r := newRunner(t, mk(FluxTransformer(c)))
	in, outs := fluxFeeds(rand.New(rand.NewPCG(9, 10)), c, 2, 4, 4, 6)
	sensitivity(t, r, in, outs, "out_hidden_states", map[string]func(feed) feed{
		"hidden_states": bump, "encoder_hidden_states": bump, "pooled_projections": bump,
		"timestep": func(f feed) feed { f.f[0] += 0.1; return f },
		"guidance": func(f feed) feed { f.f[0] += 1; return f },
		"img_ids":  func(f feed) feed { f.f[4] += 3; return f }, // token 1's row
		"txt_ids":  func(f feed) feed { f.f[3*2+1] += 5; return f },
	})
}

func TestFluxTransformerDeterministic(t *testing.T) {
	for _, g := range []bool{false, true} {
		c := TinyFlux(g)
		a := digest(t, mk(FluxTransformer(c)))
		if digest(t, mk(FluxTransformer(c))) != a {
			t.Fatal("same config, different bytes")
		}
		c.Seed++
		if digest(t, mk(FluxTransformer(c))) == a {
			t.Fatal("different seed, same bytes")
		}
	}
}

func TestFluxConfigErrors(t *testing.T) {
	for _, mod := range []func(*FluxConfig){
		func(c *FluxConfig) { c.AxesDim = [3]int{8, 8, 8} },
		func(c *FluxConfig) { c.AxesDim = [3]int{7, 13, 12} },
		func(c *FluxConfig) { c.Heads = 3 },
		func(c *FluxConfig) { c.IDs = onnx.Bool },
		func(c *FluxConfig) { c.IO = onnx.Int32 },
	} {
		c := TinyFlux(false)
		mod(&c)
		if _, err := FluxTransformer(c); err == nil {
			t.Errorf("config %+v: no error", c)
		}
	}
}

// TestFluxRoPE checks FluxPosEmbed and apply_rotary_emb against diffusers' formulas written in Go:
// per axis i, freqs 1/θ^(2k/d_i) in float64, angles pos·freq, cos/sin repeat_interleave(2);
// out = x·cos + rot(x)·sin with rot = stack(−x_odd, x_even).flatten.
func TestFluxRoPE(t *testing.T) {
	axes := [3]int{4, 6, 6}
	const d, s = 16, 5
	n := NewNet("rope", DefaultOpset, 0)
	ids := n.B.Input("ids", onnx.Float, onnx.Sym("s"), onnx.Fixed(3))
	x := n.B.Input("x", onnx.Float, onnx.Fixed(1), onnx.Fixed(2), onnx.Sym("s"), onnx.Fixed(d))
	cos, sin := n.fluxRoPE(ids, axes)
	n.B.Output(cos, "cos", onnx.Float, onnx.Sym("s"), onnx.Fixed(d))
	n.B.Output(sin, "sin", onnx.Float, onnx.Sym("s"), onnx.Fixed(d))
	n.B.Output(n.applyRoPE(x, cos, sin), "y", onnx.Float, onnx.Fixed(1), onnx.Fixed(2), onnx.Sym("s"), onnx.Fixed(d))
	r := newRunner(t, mk(n.Model()))
	rng := rand.New(rand.NewPCG(11, 12))
	idv := []float32{0, 0, 0, 0, 3, 7, 1, 63, 2, 0, 0.5, 127, 5, 1000, 31}
	xf := randFeed(rng, 1, 2, s, d)
	got := r.run(map[string]feed{"ids": floats([]int64{s, 3}, idv), "x": xf},
		map[string][]int64{"cos": {s, d}, "sin": {s, d}, "y": {1, 2, s, d}})
	wantCos, wantSin := make([]float64, s*d), make([]float64, s*d)
	for p := range s {
		col := 0
		for a, da := range axes {
			for k := 0; k < da/2; k++ {
				f := 1 / math.Pow(10000, float64(2*k)/float64(da))
				ang := float64(idv[p*3+a]) * f
				for rep := range 2 {
					wantCos[p*d+col+2*k+rep], wantSin[p*d+col+2*k+rep] = math.Cos(ang), math.Sin(ang)
				}
			}
			col += da
		}
	}
	worst := 0.0
	for i := range wantCos {
		worst = max(worst, math.Abs(float64(got["cos"][i])-wantCos[i]), math.Abs(float64(got["sin"][i])-wantSin[i]))
	}
	for h := range 2 {
		for p := range s {
			for j := range d {
				i := (h*s+p)*d + j
				var rot float64
				if j%2 == 0 {
					rot = -float64(xf.f[i+1])
				} else {
					rot = float64(xf.f[i-1])
				}
				want := float64(xf.f[i])*wantCos[p*d+j] + rot*wantSin[p*d+j]
				worst = max(worst, math.Abs(float64(got["y"][i])-want)/(1+math.Abs(want)))
			}
		}
	}
	if worst > 1e-6 {
		t.Fatalf("rope off by %g", worst)
	}
}
