package arch

import (
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/onnx"
)

// opCounts counts the graph's nodes by operator type ("domain:op" for other domains).
func opCounts(m *onnx.Model) map[string]int {
	c := map[string]int{}
	for _, nd := range m.Graph.Nodes {
		op := nd.OpType
		if nd.Domain != "" {
			op = nd.Domain + ":" + op
		}
		c[op]++
	}
	return c
}

const mha = "com.microsoft:MultiHeadAttention"

// Every attention operator gives the real modules' outputs within the golden tolerance (1e-5): SD3
// (joint attention, qk norm, a dual-attention block), FLUX (RoPE, joint and single blocks) and the VAE
// mid block (one head as wide as the channels). The default is the fused operator; the graphs hold
// exactly one attention operator per attention and, fused, no Softmax left.
func TestAttentionOpsMatchGoldens(t *testing.T) {
	type build func(g golden, io IO) (*onnx.Model, error)
	cases := []struct {
		golden, output string
		attentions     int // attention operators in the graph
		build          build
	}{
		{"sd35_medium", "out_hidden_states", 0, func(g golden, io IO) (*onnx.Model, error) {
			return SD3Transformer(g.weights, goldenConfig(t, g), io)
		}},
		{"flux_dev", "out_hidden_states", 0, func(g golden, io IO) (*onnx.Model, error) {
			return FluxTransformer(g.weights, goldenConfig(t, g), io)
		}},
		{"vae_sd3", "sample", 1, func(g golden, io IO) (*onnx.Model, error) {
			return VAEDecoder(g.weights, goldenConfig(t, g), io)
		}},
	}
	for _, c := range cases {
		g := loadGolden(t, c.golden)
		switch c.golden { // one attention per block, two in dual-attention blocks
		case "flux_dev":
			fc, err := ParseFluxConfig(goldenConfig(t, g))
			if err != nil {
				t.Fatal(err)
			}
			c.attentions = fc.Layers + fc.SingleLayers
		case "sd35_medium":
			sc, err := ParseSD3Config(goldenConfig(t, g))
			if err != nil {
				t.Fatal(err)
			}
			c.attentions = sc.Layers + len(sc.DualAttentionLayers)
		}
		for _, op := range []AttentionOp{FusedAttention, UnfusedAttention, ONNXAttention} {
			t.Run(c.golden+"/"+op.String(), func(t *testing.T) {
				m, err := c.build(g, IO{Attention: op})
				if err != nil {
					t.Fatal(err)
				}
				ops := opCounts(m)
				fused, standard := ops[mha], ops["Attention"]
				switch op {
				case FusedAttention:
					if fused != c.attentions || standard != 0 || ops["Softmax"] != 0 {
						t.Errorf("fused graph: %d MultiHeadAttention, %d Attention, %d Softmax; want %d, 0, 0",
							fused, standard, ops["Softmax"], c.attentions)
					}
				case UnfusedAttention:
					if fused != 0 || standard != 0 || ops["Softmax"] == 0 {
						t.Errorf("unfused graph: %d MultiHeadAttention, %d Attention, %d Softmax", fused, standard, ops["Softmax"])
					}
				case ONNXAttention:
					if standard != c.attentions || fused != 0 || m.Opsets[0].Version != 23 {
						t.Errorf("onnx graph: %d Attention (want %d), %d MultiHeadAttention, opset %d",
							standard, c.attentions, fused, m.Opsets[0].Version)
					}
				}
				got := runModel(t, m, g, c.output)
				assertClose(t, op.String(), got[c.output], g.outputs[c.output], 1e-5, 1e-5)
			})
		}
	}
}

// Attention with an additive bias (CLIP's causal mask, T5's relative position bias) stays unfused:
// ORT's fused kernels run it through the full score matrix anyway, so nothing would be saved.
func TestAttentionWithBiasStaysUnfused(t *testing.T) {
	for _, name := range []string{"clip_gelu_proj", "t5_gated"} {
		g := loadGolden(t, name)
		var m *onnx.Model
		var err error
		if name == "t5_gated" {
			m, err = T5Encoder(g.weights, goldenConfig(t, g), IO{})
		} else {
			m, err = CLIPText(g.weights, goldenConfig(t, g), IO{})
		}
		if err != nil {
			t.Fatal(err)
		}
		if ops := opCounts(m); ops[mha] != 0 || ops["Softmax"] == 0 {
			t.Errorf("%s: %d MultiHeadAttention, %d Softmax: want the unfused form", name, ops[mha], ops["Softmax"])
		}
	}
}

func TestParseAttentionOp(t *testing.T) {
	for _, op := range []AttentionOp{FusedAttention, UnfusedAttention, ONNXAttention} {
		if got, err := ParseAttentionOp(op.String()); err != nil || got != op {
			t.Errorf("ParseAttentionOp(%q) = %v, %v", op.String(), got, err)
		}
	}
	if _, err := ParseAttentionOp("flash"); err == nil || !strings.Contains(err.Error(), "unknown attention operator") {
		t.Errorf("ParseAttentionOp(flash): %v", err)
	}
	if _, err := (IO{Attention: AttentionOp(7)}).withDefaults(); err == nil {
		t.Error("IO with attention operator 7: no error")
	}
}
