package testmodels

import (
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
