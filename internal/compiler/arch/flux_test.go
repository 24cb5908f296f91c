package arch

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/safetensors"
)

// fluxGoldenConfig is the config.json the gen script stored in the golden file's metadata.
func fluxGoldenConfig(t *testing.T, g golden) Config {
	t.Helper()
	var c Config
	if err := json.Unmarshal([]byte(g.meta["config"]), &c); err != nil {
		t.Fatalf("golden config: %v", err)
	}
	return c
}

// FluxTransformer2DModel against diffusers 0.38 (testdata/gen_flux.py): FLUX.1-dev with the guidance
// embedder and schnell without, batch 2, 15 image tokens (a 3×5 packed grid with the pipeline's img_ids),
// 7 text tokens with zero txt_ids, two different timesteps.
func TestFluxTransformerMatchesDiffusers(t *testing.T) {
	for _, name := range []string{"flux_dev", "flux_schnell"} {
		t.Run(name, func(t *testing.T) {
			g := loadGolden(t, name)
			m, err := FluxTransformer(g.weights, fluxGoldenConfig(t, g), IO{})
			if err != nil {
				t.Fatal(err)
			}
			got := runModel(t, m, g, "out_hidden_states")
			assertClose(t, name, got["out_hidden_states"], g.outputs["out_hidden_states"], 1e-5, 1e-5)
		})
	}
}

// Float ids (some exports declare them so) give the same result as integer ids.
func TestFluxTransformerFloatIDs(t *testing.T) {
	g := loadGolden(t, "flux_schnell")
	m, err := FluxTransformer(g.weights, fluxGoldenConfig(t, g), IO{IDs: onnx.Float})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"img_ids", "txt_ids"} {
		ids := g.inputs[name]
		v := make([]float32, len(ids.Data)/8)
		for i := range v {
			v[i] = float32(int64(leUint64(ids.Data[8*i:])))
		}
		ids.DType, ids.Data = "F32", float32Bytes(v)
		g.inputs[name] = ids
	}
	got := runModel(t, m, g, "out_hidden_states")
	assertClose(t, "float ids", got["out_hidden_states"], g.outputs["out_hidden_states"], 1e-5, 1e-5)
}

func float32Bytes(v []float32) []byte { return safetensors.F32("", []int{len(v)}, v).Data }

// FluxPosEmbed and apply_rotary_emb against diffusers' formulas in float64: per axis of width d,
// angles pos·10000^(−2k/d), cos/sin repeated for each pair and rounded to float32;
// out = x·cos + rot(x)·sin with rot = stack(−x_odd, x_even).flatten. Positions reach 4095, where a
// float32 angle alone would be off by 2e-4.
func TestFluxRoPE(t *testing.T) {
	axes := []int{4, 6, 6}
	const d, s = 16, 6
	n := NewNet("rope", Tensors{})
	ids := n.B.Input("ids", onnx.Float, onnx.Fixed(s), onnx.Fixed(3))
	x := n.B.Input("x", onnx.Float, onnx.Fixed(1), onnx.Fixed(2), onnx.Fixed(s), onnx.Fixed(d))
	cos, sin := n.fluxRoPE(ids, axes)
	n.B.Output(cos, "cos", onnx.Float, onnx.Fixed(s), onnx.Fixed(d))
	n.B.Output(sin, "sin", onnx.Float, onnx.Fixed(s), onnx.Fixed(d))
	y := n.fluxApplyRoPE(x, fluxRotary{cos: cos, sin: sin, heads: 2, headDim: d})
	n.B.Output(y, "y", onnx.Float, onnx.Fixed(1), onnx.Fixed(2), onnx.Fixed(s), onnx.Fixed(d))
	m, err := n.Model()
	if err != nil {
		t.Fatal(err)
	}
	idv := []float32{0, 0, 0, 0, 3, 7, 1, 63, 2, 0, 0.5, 127, 5, 1000, 31, 4095, 2047, 4094}
	xv := make([]float32, 2*s*d)
	for i := range xv {
		xv[i] = float32(math.Sin(float64(i)*0.7)) * 2
	}
	g := golden{inputs: map[string]safetensors.Tensor{
		"ids": safetensors.F32("ids", []int{s, 3}, idv), "x": safetensors.F32("x", []int{1, 2, s, d}, xv)},
		shapes: map[string][]int64{"cos": {s, d}, "sin": {s, d}, "y": {1, 2, s, d}}}
	got := runModel(t, m, g, "cos", "sin", "y")
	wantCos, wantSin := make([]float32, s*d), make([]float32, s*d)
	for p := range s {
		col := 0
		for a, da := range axes {
			for k := 0; k < da/2; k++ {
				ang := float64(idv[p*3+a]) * (1 / math.Pow(10000, float64(2*k)/float64(da)))
				for rep := range 2 {
					wantCos[p*d+col+2*k+rep], wantSin[p*d+col+2*k+rep] = float32(math.Cos(ang)), float32(math.Sin(ang))
				}
			}
			col += da
		}
	}
	wantY := make([]float32, len(xv))
	for h := range 2 {
		for p := range s {
			for j := range d {
				i := (h*s+p)*d + j
				var rot float32
				if j%2 == 0 {
					rot = -xv[i+1]
				} else {
					rot = xv[i-1]
				}
				wantY[i] = float32(float64(xv[i])*float64(wantCos[p*d+j]) + float64(rot)*float64(wantSin[p*d+j]))
			}
		}
	}
	assertClose(t, "cos", got["cos"], wantCos, 2e-7, 0)
	assertClose(t, "sin", got["sin"], wantSin, 2e-7, 0)
	assertClose(t, "rotated", got["y"], wantY, 1e-6, 0)
}

// The real FLUX.1 configs (no axes_dims_rope, no out_channels) parse to FLUX.1's sizes.
func TestParseFluxConfigReal(t *testing.T) {
	for _, tc := range []struct {
		path     string
		guidance bool
	}{
		{"../../../../shared/model-configs/black-forest-labs/FLUX.1-dev/transformer/config.json", true},
		{"../../../../shared/model-configs/black-forest-labs/FLUX.1-schnell/transformer/config.json", false},
	} {
		c, err := ReadConfig(tc.path)
		if err != nil {
			t.Skipf("real configs not available: %v", err)
		}
		f, err := ParseFluxConfig(c)
		if err != nil {
			t.Fatal(err)
		}
		want := FluxConfig{PatchSize: 1, InChannels: 64, OutChannels: 64, Layers: 19, SingleLayers: 38, HeadDim: 128,
			Heads: 24, JointDim: 4096, PooledDim: 768, Guidance: tc.guidance, AxesDims: []int{16, 56, 56}}
		if f.Hidden() != 3072 || !fluxConfigEqual(f, want) {
			t.Errorf("%s: %+v, want %+v", tc.path, f, want)
		}
	}
}

func fluxConfigEqual(a, b FluxConfig) bool {
	return slices.Equal(a.AxesDims, b.AxesDims) && fmt.Sprint(a) == fmt.Sprint(b)
}

func TestParseFluxConfigErrors(t *testing.T) {
	base := func() Config {
		return Config{"num_layers": 1.0, "num_single_layers": 2.0, "attention_head_dim": 16.0,
			"num_attention_heads": 2.0, "axes_dims_rope": []any{4.0, 6.0, 6.0}}
	}
	for _, tc := range []struct {
		key  string
		val  any
		want string
	}{
		{"axes_dims_rope", []any{4.0, 6.0, 8.0}, "sums to 18, not attention_head_dim 16"},
		{"axes_dims_rope", []any{5.0, 5.0, 6.0}, "positive even"},
		{"axes_dims_rope", []any{8.0, 8.0}, "want 3 axes"},
		{"axes_dims_rope", "16,56,56", "want a list of integers"},
		{"num_attention_heads", 0.0, "num_attention_heads is 0"},
		{"num_layers", -1.0, "must not be negative"},
		{"in_channels", 6.5, `"in_channels" is 6.5, want an integer`},
		{"guidance_embeds", "yes", `"guidance_embeds" is yes, want true or false`},
		{"joint_attention_dim", 1e12, "joint_attention_dim is 1000000000000"},
	} {
		c := base()
		c[tc.key] = tc.val
		_, err := ParseFluxConfig(c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%v: err %v, want %q", tc.key, tc.val, err, tc.want)
		}
	}
	if _, err := ParseFluxConfig(base()); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

// A checkpoint that disagrees with its config names the tensor and both shapes; a schnell checkpoint
// given a dev config names the missing guidance embedder.
func TestFluxTransformerWeightErrors(t *testing.T) {
	g := loadGolden(t, "flux_schnell")
	c := fluxGoldenConfig(t, g)
	c["joint_attention_dim"] = 48.0
	_, err := FluxTransformer(g.weights, c, IO{})
	if err == nil || !strings.Contains(err.Error(), `tensor "context_embedder.weight": expected shape [32 48], found [32 32]`) {
		t.Errorf("joint_attention_dim 48: %v", err)
	}
	c = fluxGoldenConfig(t, g)
	c["guidance_embeds"] = true
	_, err = FluxTransformer(g.weights, c, IO{})
	if err == nil || !strings.Contains(err.Error(), `"time_text_embed.guidance_embedder.linear_1.weight" is missing`) {
		t.Errorf("guidance_embeds on schnell weights: %v", err)
	}
	if _, err := FluxTransformer(g.weights, fluxGoldenConfig(t, g), IO{IDs: onnx.Bool}); err == nil {
		t.Error("bool ids accepted")
	}
}

// The timestep frequencies are exp(−ln(10000)·k/128) to float32 precision (the exponent is rounded to
// float32 as torch forms it), and the rotary frequencies
// follow get_1d_rotary_pos_embed: per axis d, 1/10000^(2k/d), each repeated for the pair.
func TestFluxFrequencies(t *testing.T) {
	for k, f := range fluxTimestepFreqs() {
		want := math.Exp(-math.Log(10000) * float64(k) / 128)
		if math.Abs(float64(f)-want) > 6e-7*want {
			t.Fatalf("timestep freq %d: %v, want %v", k, f, want)
		}
	}
	axis, freq := fluxRopeFreqs([]int{4, 6, 6})
	wantAxis := []int64{0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2}
	wantFreq := []float64{1, 1, 0.01, 0.01, 1, 1, math.Pow(10000, -1.0/3), math.Pow(10000, -1.0/3),
		math.Pow(10000, -2.0/3), math.Pow(10000, -2.0/3)}
	for i := range wantAxis {
		if axis[i] != wantAxis[i] {
			t.Fatalf("axis[%d] = %d, want %d", i, axis[i], wantAxis[i])
		}
	}
	for i, w := range wantFreq {
		if math.Abs(freq[i]-w) > 1e-15 {
			t.Fatalf("freq[%d] = %v, want %v", i, freq[i], w)
		}
	}
}
