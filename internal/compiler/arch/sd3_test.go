package arch

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
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
