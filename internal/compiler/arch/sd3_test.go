package arch

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/onnx"
)

// sd3Golden loads a gen_sd3.py golden file and builds its graph from the config it records.
func sd3Golden(t *testing.T, name string) (golden, *onnx.Model) {
	t.Helper()
	g := loadGolden(t, name)
	var cfg Config
	if err := json.Unmarshal([]byte(g.meta["config"]), &cfg); err != nil {
		t.Fatalf("%s: config metadata: %v", name, err)
	}
	m, err := SD3Transformer(g.weights, cfg, IO{})
	if err != nil {
		t.Fatal(err)
	}
	return g, m
}

// Tolerances against the real SD3Transformer2DModel (float32 on both sides).
const sd3Atol, sd3Rtol = 1e-5, 1e-5

// The whole transformer against diffusers: SD3-medium style (batch 2, out_channels ≠ in_channels),
// SD3.5-large style (qk RMSNorm, non-square latent), SD3.5-medium style (a dual-attention block, qk
// norm, non-square latent, batch 2).
func TestSD3TransformerMatchesDiffusers(t *testing.T) {
	for _, name := range []string{"sd3_medium", "sd35_large", "sd35_medium"} {
		t.Run(name, func(t *testing.T) {
			g, m := sd3Golden(t, name)
			got := runModel(t, m, g, "out_hidden_states")
			assertClose(t, name, got["out_hidden_states"], g.outputs["out_hidden_states"], sd3Atol, sd3Rtol)
		})
	}
}

// skip_layers against diffusers' forward(skip_layers=…): [1] (a middle block) and [0, 2] (the dual
// block and the context_pre_only last block).
func TestSD3SkipLayersMatchDiffusers(t *testing.T) {
	g, m := sd3Golden(t, "sd35_medium")
	for _, set := range []string{"a", "b"} {
		h := g
		h.inputs = maps.Clone(g.inputs)
		h.inputs["skip_layers"] = g.inputs["skip_layers_"+set]
		got := runModel(t, m, h, "out_hidden_states")["out_hidden_states"]
		assertClose(t, "skip "+set, got, g.outputs["out_hidden_states_skip_"+set], sd3Atol, sd3Rtol)
	}
	// The skipped runs are far from the full one, so the comparison above is sharp.
	for _, set := range []string{"a", "b"} {
		d := 0.0
		for i, v := range g.outputs["out_hidden_states_skip_"+set] {
			d = max(d, math.Abs(float64(v-g.outputs["out_hidden_states"][i])))
		}
		if d < 1e-2 {
			t.Errorf("skip %s: diffusers' output moves only %g", set, d)
		}
	}
}

// Without pos_embed.pos_embed in the weights, the table is computed as diffusers computes its buffer.
func TestSD3ComputedPosEmbed(t *testing.T) {
	for _, name := range []string{"sd3_medium", "sd35_large"} {
		g := loadGolden(t, name)
		var cfg Config
		if err := json.Unmarshal([]byte(g.meta["config"]), &cfg); err != nil {
			t.Fatal(err)
		}
		w := maps.Clone(g.weights)
		delete(w, "pos_embed.pos_embed")
		m, err := SD3Transformer(w, cfg, IO{})
		if err != nil {
			t.Fatal(err)
		}
		got := runModel(t, m, g, "out_hidden_states")
		assertClose(t, name, got["out_hidden_states"], g.outputs["out_hidden_states"], sd3Atol, sd3Rtol)
	}
}

// The computed table against the buffer diffusers' PatchEmbed registered.
func TestSD3SincosTable(t *testing.T) {
	g := loadGolden(t, "sd3_medium")
	want := g.weights["pos_embed.pos_embed"]
	var buf bytes.Buffer
	if err := (sincosTable{dim: 32, size: 12, base: 4}).WriteRaw(&buf); err != nil {
		t.Fatal(err)
	}
	got := make([]float32, buf.Len()/4)
	for i := range got {
		got[i] = math.Float32frombits(binary.LittleEndian.Uint32(buf.Bytes()[4*i:]))
	}
	assertClose(t, "pos_embed", got, want.Data, 0, 0)
}

func TestSD3ConfigErrors(t *testing.T) {
	good := func() Config {
		return Config{"num_layers": 2.0, "attention_head_dim": 16.0, "num_attention_heads": 2.0,
			"joint_attention_dim": 24.0, "caption_projection_dim": 32.0, "pooled_projection_dim": 20.0,
			"in_channels": 4.0, "out_channels": nil, "patch_size": 2.0, "pos_embed_max_size": 12.0,
			"sample_size": 8.0, "qk_norm": nil, "dual_attention_layers": []any{}}
	}
	c, err := ParseSD3Config(good())
	if err != nil {
		t.Fatal(err)
	}
	if c.OutChannels != 4 || c.Hidden() != 32 {
		t.Fatalf("parsed %+v", c)
	}
	for _, tc := range []struct {
		key  string
		val  any
		want string
	}{
		{"num_layers", nil, `"num_layers" is missing`},
		{"caption_projection_dim", 48.0, "caption_projection_dim 48"},
		{"qk_norm", "l2", `qk_norm "l2"`},
		{"patch_size", 0.0, `"patch_size" is 0`},
		{"dual_attention_layers", "all", `"dual_attention_layers"`},
	} {
		cfg := good()
		if tc.val == nil {
			delete(cfg, tc.key)
		} else {
			cfg[tc.key] = tc.val
		}
		if _, err := ParseSD3Config(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%v: err = %v, want %q", tc.key, tc.val, err, tc.want)
		}
	}
	// A checkpoint whose tensor disagrees with the config names the tensor and both shapes.
	g := loadGolden(t, "sd3_medium")
	cfg := good()
	cfg["joint_attention_dim"] = 25.0
	if _, err := SD3Transformer(g.weights, cfg, IO{}); err == nil ||
		!strings.Contains(err.Error(), `"context_embedder.weight": expected shape [32 25], found [32 24]`) {
		t.Errorf("err = %v", err)
	}
}

// The graph uses every tensor of diffusers' state dict (none ignored, so a misnamed optional tensor
// such as a qk norm cannot silently drop out) and no other.
func TestSD3UsesWholeStateDict(t *testing.T) {
	for _, name := range []string{"sd3_medium", "sd35_large", "sd35_medium"} {
		g, m := sd3Golden(t, name)
		used := map[string]bool{}
		for _, init := range m.Graph.Initializers {
			if _, ok := g.weights[strings.TrimSuffix(init.Name, ".T")]; ok {
				used[strings.TrimSuffix(init.Name, ".T")] = true
			}
		}
		for k := range g.weights {
			if !used[k] {
				t.Errorf("%s: tensor %q is not used", name, k)
			}
		}
	}
}

// The real SD3-medium config parses and builds (weights are not made: parameters are lazy) with
// diffusers' parameter count: 2 028 328 000, from SD3Transformer2DModel(**config) with num_layers 2
// and 3, extrapolated to 24 (p2 + 22·(p3 − p2)), the pos_embed buffer excluded.
func TestSD3RealConfig(t *testing.T) {
	cfg, err := ReadConfig("../../../../shared/model-configs/stabilityai/stable-diffusion-3-medium-diffusers/transformer/config.json")
	if err != nil {
		t.Skip(err)
	}
	c, err := ParseSD3Config(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c.Layers != 24 || c.Hidden() != 1536 || c.PosEmbedMaxSize != 192 || c.OutChannels != 16 || c.QKNorm != "" {
		t.Fatalf("parsed %+v", c)
	}
	m, err := BuildSD3(lazyWeights{}, c, IO{})
	if err != nil {
		t.Fatal(err)
	}
	var params int64
	for _, init := range m.Graph.Initializers {
		if init.Source != nil && init.Name != "pos_embed.pos_embed" {
			params += init.RawSize() / 4
		}
	}
	if params != 2028328000 {
		t.Errorf("SD3-medium: %d parameters, diffusers has 2028328000", params)
	}
}

// lazyWeights has every tensor, of whatever shape the builder expects, and is never read.
type lazyWeights struct{}

func (lazyWeights) Shape(string) ([]int64, bool) { return nil, true }
func (lazyWeights) Float32(string, []int64) ([]float32, error) {
	return nil, fmt.Errorf("lazyWeights are not for writing")
}

// Float16 I/O (fp16 exports): the inputs are rounded to float16 and cast to float32 at the graph's
// entry, the output is cast back; the result stays within float16 rounding of diffusers' float32 run.
func TestSD3Float16IO(t *testing.T) {
	g := loadGolden(t, "sd3_medium")
	var cfg Config
	if err := json.Unmarshal([]byte(g.meta["config"]), &cfg); err != nil {
		t.Fatal(err)
	}
	m, err := SD3Transformer(g.weights, cfg, IO{Float: onnx.Float16})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range m.Graph.Inputs {
		if want := map[bool]onnx.DataType{true: onnx.Int64, false: onnx.Float16}[in.Name == "skip_layers"]; in.Type != want {
			t.Errorf("input %s is %v, want %v", in.Name, in.Type, want)
		}
	}
	if out := m.Graph.Outputs[0]; out.Name != "out_hidden_states" || out.Type != onnx.Float16 {
		t.Errorf("output %s is %v", out.Name, out.Type)
	}
	got := runModel(t, m, g, "out_hidden_states")
	assertClose(t, "float16 I/O", got["out_hidden_states"], g.outputs["out_hidden_states"], 3e-3, 3e-3)
}
