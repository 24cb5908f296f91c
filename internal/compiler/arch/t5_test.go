package arch

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/onnx"
)

// TestT5EncoderMatchesTransformers runs the real T5EncoderModel golden files (testdata/gen_text.py):
// T5 v1.1 (gated-gelu, 32 buckets up to 128, 140 positions so every bucket and the clamp are used) and
// original T5 (relu, not gated, 16 buckets up to 20), on prompts padded after the EOS.
func TestT5EncoderMatchesTransformers(t *testing.T) {
	for _, name := range []string{"t5_gated", "t5_relu"} {
		t.Run(name, func(t *testing.T) {
			g := loadGolden(t, name)
			m, err := T5Encoder(g.weights, goldenConfig(t, g), IO{})
			if err != nil {
				t.Fatal(err)
			}
			got := runModel(t, m, g, "last_hidden_state")
			assertClose(t, "last_hidden_state", got["last_hidden_state"], g.outputs["last_hidden_state"], 1e-5, 1e-5)
		})
	}
}

// Checkpoints keep one side of the tie between shared.weight and encoder.embed_tokens.weight (or
// both): each alone gives the same graph values.
func TestT5EncoderTiedEmbedding(t *testing.T) {
	g := loadGolden(t, "t5_gated")
	for _, drop := range []string{"shared.weight", "encoder.embed_tokens.weight"} {
		w := Tensors{}
		for k, v := range g.weights {
			if k != drop {
				w[k] = v
			}
		}
		m, err := T5Encoder(w, goldenConfig(t, g), IO{})
		if err != nil {
			t.Fatalf("without %s: %v", drop, err)
		}
		got := runModel(t, m, g, "last_hidden_state")
		assertClose(t, "without "+drop, got["last_hidden_state"], g.outputs["last_hidden_state"], 1e-5, 1e-5)
	}
	w := Tensors{}
	for k, v := range g.weights {
		if k != "shared.weight" && k != "encoder.embed_tokens.weight" {
			w[k] = v
		}
	}
	if _, err := T5Encoder(w, goldenConfig(t, g), IO{}); err == nil || !strings.Contains(err.Error(), `"shared.weight" is missing`) {
		t.Errorf("no embedding: err = %v", err)
	}
}

// TestT5BucketsMatchTransformers compares the bucket graph with T5Attention._relative_position_bucket
// itself over relative positions −600…600 for three (num_buckets, max_distance) settings.
func TestT5BucketsMatchTransformers(t *testing.T) {
	g := loadGolden(t, "t5_buckets")
	for _, s := range [][2]int{{32, 128}, {16, 20}, {48, 200}} {
		name := fmt.Sprintf("buckets_%d_%d", s[0], s[1])
		n := NewNet("buckets", textZeroWeights{})
		rel := n.B.Input("rel", onnx.Int64, onnx.Sym("n"))
		n.B.Output(n.Cast(n.t5Bucket(rel, T5EncoderConfig{Buckets: s[0], MaxDistance: s[1]}), onnx.Float), name, onnx.Float, onnx.Sym("n"))
		m, err := n.Model()
		if err != nil {
			t.Fatal(err)
		}
		got := runModel(t, m, g, name)[name]
		want := g.outputs[name]
		bad := 0
		for i := range want {
			if got[i] != want[i] {
				if bad++; bad <= 5 {
					t.Errorf("%s: rel %d → %v, want %v", name, i-600, got[i], want[i])
				}
			}
		}
	}
}

func TestParseT5Config(t *testing.T) {
	for _, path := range []string{
		"stabilityai/stable-diffusion-3-medium-diffusers/text_encoder_3",
		"black-forest-labs/FLUX.1-dev/text_encoder_2",
		"black-forest-labs/FLUX.1-schnell/text_encoder_2",
	} {
		c, err := ReadConfig("/work/shared/model-configs/" + path + "/config.json")
		if err != nil {
			t.Skip(err)
		}
		tc, err := ParseT5Config(c)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		t.Logf("%s: %+v", path, tc)
		want := T5EncoderConfig{Vocab: 32128, DModel: 4096, DKV: 64, Heads: 64, Layers: 24, DFF: 10240, Buckets: 32,
			MaxDistance: 128, Gated: true, Eps: 1e-6}
		if tc.Act != "gelu_new" && tc.Act != "gelu_pytorch_tanh" {
			t.Errorf("%s: activation %q", path, tc.Act)
		}
		tc.Act = ""
		if tc != want {
			t.Errorf("%s: %+v, want %+v", path, tc, want)
		}
	}
	base := func() Config {
		return Config{"vocab_size": 100.0, "d_model": 32.0, "d_kv": 8.0, "num_heads": 4.0, "num_layers": 2.0, "d_ff": 48.0}
	}
	tc, err := ParseT5Config(base())
	if err != nil {
		t.Fatal(err)
	}
	if tc.Act != "relu" || tc.Gated || tc.Buckets != 32 || tc.MaxDistance != 128 || tc.Eps != 1e-6 {
		t.Errorf("defaults: %+v", tc) // T5Config's
	}
	for _, tc := range []struct {
		key string
		val any
	}{{"feed_forward_proj", "gated-gelu-x"}, {"feed_forward_proj", "fast-gelu"}, {"d_model", nil},
		{"relative_attention_num_buckets", 2.0}, {"relative_attention_max_distance", 8.0}, {"layer_norm_epsilon", -1.0}} {
		c := base()
		c[tc.key] = tc.val
		if tc.val == nil {
			delete(c, tc.key)
		}
		_, err := ParseT5Config(c)
		if err == nil {
			t.Errorf("%s = %v: no error", tc.key, tc.val)
			continue
		}
		t.Logf("%s = %v: %v", tc.key, tc.val, err)
	}
}
