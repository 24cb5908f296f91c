package testmodels

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/rflowrt/rflow/internal/onnx"
)

// dimNames renders a value's dims as names or sizes ("batch_size", "16", …).
func dimNames(v onnx.ValueInfo) []string {
	var s []string
	for _, d := range v.Dims {
		s = append(s, d.String())
	}
	return s
}

func TestVAESignature(t *testing.T) {
	for _, tc := range []struct {
		name    string
		build   func(VAEConfig) (*onnx.Model, error)
		in, out string
		inDims  []string
		outDims []string
	}{
		{"decoder", VAEDecoder, "latent_sample", "sample",
			[]string{"batch_size", "16", "latent_height", "latent_width"}, []string{"batch_size", "3", "height", "width"}},
		{"encoder", VAEEncoder, "sample", "latent_parameters",
			[]string{"batch_size", "3", "height", "width"}, []string{"batch_size", "32", "latent_height", "latent_width"}},
	} {
		for _, io := range []onnx.DataType{onnx.Float, onnx.Float16} {
			c := TinyVAE()
			c.IO = io
			info, err := onnx.ReadInfoBytes(modelBytes(t, mk(tc.build(c))))
			if err != nil {
				t.Fatal(err)
			}
			if len(info.Inputs) != 1 || len(info.Outputs) != 1 {
				t.Fatalf("%s: inputs %v outputs %v", tc.name, info.Inputs, info.Outputs)
			}
			in, out := info.Inputs[0], info.Outputs[0]
			if in.Name != tc.in || in.Type != io || !slices.Equal(dimNames(in), tc.inDims) {
				t.Errorf("%s %v: input %s %v %v, want %s %v %v", tc.name, io, in.Name, in.Type, dimNames(in), tc.in, io, tc.inDims)
			}
			if out.Name != tc.out || out.Type != io || !slices.Equal(dimNames(out), tc.outDims) {
				t.Errorf("%s %v: output %s %v %v, want %s %v %v", tc.name, io, out.Name, out.Type, dimNames(out), tc.out, io, tc.outDims)
			}
		}
	}
}

func TestVAERuns(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, io := range []onnx.DataType{onnx.Float, onnx.Float16} {
		c := TinyVAE()
		c.IO = io
		// batch 2 and a non-square latent, so a swapped or fixed dimension shows up as a shape error
		dec := newRunner(t, mk(VAEDecoder(c)))
		img := dec.run(map[string]feed{"latent_sample": randFeed(r, 2, 16, 6, 5)}, map[string][]int64{"sample": {2, 3, 48, 40}})["sample"]
		finite(t, "sample", img)
		if m := maxAbs(img); m > 20 {
			t.Errorf("%v: decoded |sample| up to %g; random weights should keep it O(1)", io, m)
		}
		enc := newRunner(t, mk(VAEEncoder(c)))
		lat := enc.run(map[string]feed{"sample": randFeed(r, 2, 3, 48, 40)},
			map[string][]int64{"latent_parameters": {2, 32, 6, 5}})["latent_parameters"]
		finite(t, "latent_parameters", lat)
	}
}

func maxAbs(v []float32) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, math.Abs(float64(x)))
	}
	return m
}

// TestVAELocality checks the decoder is a convolutional upsampler: changing one latent pixel changes
// the image near the matching 8×8 block and leaves far corners alone (the mid-block attention spreads
// a little everywhere, so "far" is judged relative to the near change).
func TestVAELocality(t *testing.T) {
	c := TinyVAE()
	c.LayersPerBlock = 1
	dec := newRunner(t, mk(VAEDecoder(c)))
	r := rand.New(rand.NewPCG(3, 4))
	base := randFeed(r, 1, 16, 8, 8)
	outs := map[string][]int64{"sample": {1, 3, 64, 64}}
	a := dec.run(map[string]feed{"latent_sample": base}, outs)["sample"]
	moved := base.clone()
	for ch := range 16 {
		moved.f[ch*64+0*8+0] += 3 // latent pixel (0,0) in every channel
	}
	b := dec.run(map[string]feed{"latent_sample": moved}, outs)["sample"]
	near, far := 0.0, 0.0
	for ch := range 3 {
		for y := range 64 {
			for x := range 64 {
				d := math.Abs(float64(a[ch*4096+y*64+x] - b[ch*4096+y*64+x]))
				if y < 8 && x < 8 {
					near = max(near, d)
				} else if y >= 48 && x >= 48 {
					far = max(far, d)
				}
			}
		}
	}
	if near < 1e-3 || far > near {
		t.Errorf("changing latent (0,0): max change %g in its 8×8 block, %g in the far corner", near, far)
	}
}

func TestVAEDeterministic(t *testing.T) {
	c := TinyVAE()
	first, second := digest(t, mk(VAEDecoder(c))), digest(t, mk(VAEDecoder(c)))
	if first != second {
		t.Error("same config, different decoder bytes")
	}
	c2 := c
	c2.Seed++
	if digest(t, mk(VAEDecoder(c))) == digest(t, mk(VAEDecoder(c2))) {
		t.Error("another seed gave the same decoder")
	}
	if digest(t, mk(VAEEncoder(c))) == digest(t, mk(VAEEncoder(c2))) {
		t.Error("another seed gave the same encoder")
	}
}

func TestVAEConfig(t *testing.T) {
	if f := TinyVAE().ScaleFactor(); f != 8 {
		t.Errorf("TinyVAE scale factor %d, want 8", f)
	}
	if f := BenchVAE().ScaleFactor(); f != 8 {
		t.Errorf("BenchVAE scale factor %d, want 8", f)
	}
	// the zero-value defaults: one layer per block, 32 groups (gcd with small widths), float32 I/O
	if _, err := VAEDecoder(VAEConfig{LatentChannels: 16, BlockOut: []int{8, 8, 16, 16}}); err != nil {
		t.Errorf("defaults: %v", err)
	}
	for _, c := range []VAEConfig{
		{LatentChannels: 0, BlockOut: []int{8}},
		{LatentChannels: 16},
		{LatentChannels: 16, BlockOut: []int{8, 0}},
		{LatentChannels: 16, BlockOut: []int{8}, IO: onnx.Int64},
		{LatentChannels: 16, BlockOut: []int{8}, LayersPerBlock: -1},
	} {
		if _, err := VAEDecoder(c); err == nil {
			t.Errorf("VAEDecoder(%+v): no error", c)
		}
		if _, err := VAEEncoder(c); err == nil {
			t.Errorf("VAEEncoder(%+v): no error", c)
		}
	}
}
