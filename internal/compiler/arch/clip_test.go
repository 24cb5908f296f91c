package arch

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/onnx"
)

// graphOutputs are m's output names, in graph order.
func graphOutputs(m *onnx.Model) []string {
	var names []string
	for _, o := range m.Graph.Outputs {
		names = append(names, o.Name)
	}
	return names
}

// TestCLIPTextMatchesTransformers runs the real CLIPTextModel / CLIPTextModelWithProjection golden
// files (testdata/gen_text.py) through CLIPText: quick_gelu and gelu, legacy eos 2 (argmax pooling)
// and a real eos_token_id (first-EOS pooling, with an id above the EOS in the prompt), padded prompts.
func TestCLIPTextMatchesTransformers(t *testing.T) {
	for _, tc := range []struct {
		name string
		outs []string
	}{
		{"clip_quick_eos2", []string{"last_hidden_state", "pooler_output"}},
		{"clip_gelu_proj", []string{"text_embeds", "last_hidden_state",
			"hidden_states.0", "hidden_states.1", "hidden_states.2", "hidden_states.3"}},
		{"clip_eos_first", []string{"text_embeds", "last_hidden_state", "hidden_states.0", "hidden_states.1", "hidden_states.2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := loadGolden(t, tc.name)
			m, err := CLIPText(g.weights, goldenConfig(t, g), IO{})
			if err != nil {
				t.Fatal(err)
			}
			if got := graphOutputs(m); !slices.Equal(got, tc.outs) {
				t.Fatalf("outputs %v, want %v", got, tc.outs)
			}
			if tc.name == "clip_eos_first" {
				// the golden input must tell the two pooling rules apart: argmax(ids) is not the first EOS
				ids, row := g.inputs["input_ids"], 12*8
				if argmax, first := leUint64(ids.Data[row+3*8:]), leUint64(ids.Data[row+7*8:]); argmax != 998 || first != 997 {
					t.Fatalf("golden ids changed: row 1 has %d at 3 and %d at 7, want 998 and the EOS 997", argmax, first)
				}
			}
			got := runModel(t, m, g, tc.outs...)
			for _, name := range tc.outs {
				assertClose(t, name, got[name], g.outputs[name], 1e-5, 1e-5)
			}
		})
	}
}

// The variant follows "architectures"; without it, the presence of text_projection.weight.
func TestCLIPTextVariant(t *testing.T) {
	g := loadGolden(t, "clip_gelu_proj")
	for _, tc := range []struct {
		arch    any
		dropW   bool
		pooling string
	}{
		{[]any{"CLIPTextModel"}, false, "pooler_output"},
		{[]any{"CLIPTextModelWithProjection"}, false, "text_embeds"},
		{nil, false, "text_embeds"},
		{nil, true, "pooler_output"},
	} {
		c := goldenConfig(t, g)
		c["architectures"] = tc.arch
		w := Tensors{}
		for k, v := range g.weights {
			if !(tc.dropW && k == "text_projection.weight") {
				w[k] = v
			}
		}
		m, err := CLIPText(w, c, IO{})
		if err != nil {
			t.Fatal(err)
		}
		if outs := graphOutputs(m); !slices.Contains(outs, tc.pooling) {
			t.Errorf("architectures %v, projection weight dropped %v: outputs %v, want %s", tc.arch, tc.dropW, outs, tc.pooling)
		}
	}
	c := goldenConfig(t, g)
	w := Tensors{}
	for k, v := range g.weights {
		if k != "text_projection.weight" {
			w[k] = v
		}
	}
	if _, err := CLIPText(w, c, IO{}); err == nil || !strings.Contains(err.Error(), `"text_projection.weight" is missing`) {
		t.Errorf("CLIPTextModelWithProjection without its projection: err = %v", err)
	}
}

// float16 I/O and int32 ids (older Optimum exports) keep the names and give the same numbers.
func TestCLIPTextIOTypes(t *testing.T) {
	g := loadGolden(t, "clip_gelu_proj")
	m, err := CLIPText(g.weights, goldenConfig(t, g), IO{Float: onnx.Float16, IDs: onnx.Int32})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range m.Graph.Inputs {
		if in.Name != "input_ids" || in.Type != onnx.Int32 {
			t.Errorf("input %s %v, want input_ids int32", in.Name, in.Type)
		}
	}
	for _, o := range m.Graph.Outputs {
		if o.Type != onnx.Float16 {
			t.Errorf("output %s is %v, want float16", o.Name, o.Type)
		}
	}
}

func TestParseCLIPConfig(t *testing.T) {
	for _, path := range []string{
		"stabilityai/stable-diffusion-3-medium-diffusers/text_encoder",
		"stabilityai/stable-diffusion-3-medium-diffusers/text_encoder_2",
		"black-forest-labs/FLUX.1-dev/text_encoder",
	} {
		c, err := ReadConfig("/work/shared/model-configs/" + path + "/config.json")
		if err != nil {
			t.Skip(err)
		}
		cc, err := ParseCLIPConfig(c)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		t.Logf("%s: %+v", path, cc)
		if cc.EOSTokenID != 2 || cc.Vocab != 49408 || cc.MaxPositions != 77 || cc.LayerNormEps != 1e-5 {
			t.Errorf("%s: %+v", path, cc)
		}
	}
	base := func() Config {
		return Config{"vocab_size": 100.0, "hidden_size": 32.0, "intermediate_size": 64.0, "num_hidden_layers": 2.0,
			"num_attention_heads": 2.0, "max_position_embeddings": 77.0}
	}
	cc, err := ParseCLIPConfig(base())
	if err != nil {
		t.Fatal(err)
	}
	// transformers' CLIPTextConfig defaults
	if cc.HiddenAct != "quick_gelu" || cc.EOSTokenID != 49407 || cc.ProjectionDim != 512 || cc.LayerNormEps != 1e-5 {
		t.Errorf("defaults: %+v", cc)
	}
	var msgs []string
	for key, val := range map[string]any{"num_attention_heads": 5.0, "hidden_size": nil, "layer_norm_eps": 0.0,
		"architectures": "CLIPTextModel", "num_hidden_layers": 1.5} {
		c := base()
		c[key] = val
		if val == nil {
			delete(c, key)
		}
		_, err := ParseCLIPConfig(c)
		if err == nil {
			t.Errorf("%s = %v: no error", key, val)
			continue
		}
		msgs = append(msgs, fmt.Sprintf("%s: %v", key, err))
	}
	sort.Strings(msgs)
	t.Log(strings.Join(msgs, "\n"))
	c := base()
	c["hidden_act"] = "mish"
	if _, err := CLIPText(textZeroWeights{}, c, IO{}); err == nil || !strings.Contains(err.Error(), "mish") {
		t.Errorf("unknown activation: err = %v", err)
	}
}

// textZeroWeights has every tensor (zeros of the builder's shape): graph-structure tests.
type textZeroWeights struct{}

func (textZeroWeights) Shape(string) ([]int64, bool) { return nil, true }
func (textZeroWeights) Float32(_ string, shape []int64) ([]float32, error) {
	return make([]float32, numel(shape)), nil
}
