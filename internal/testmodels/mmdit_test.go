package testmodels

import (
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
