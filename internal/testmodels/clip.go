package testmodels

import (
	"fmt"

	"github.com/rflowrt/rflow/internal/compiler/arch"
	"github.com/rflowrt/rflow/internal/onnx"
)

// CLIPConfig sizes a transformers CLIP text encoder built by CLIPTextEncoder.
type CLIPConfig struct {
	Vocab, Hidden, Layers, Heads, Intermediate, MaxPositions int
	// Projection > 0 builds CLIPTextModelWithProjection (outputs text_embeds, last_hidden_state,
	// hidden_states.0…Layers, as SD3's text_encoder/text_encoder_2); 0 builds CLIPTextModel
	// (last_hidden_state, pooler_output, as FLUX's text_encoder).
	Projection int
	// EOSTokenID selects the pooled position: the first occurrence of this id, or argmax(input_ids)
	// when it is 2 (legacy configs, including SD3's and FLUX's).
	EOSTokenID int64
	// IDs is input_ids' element type (Int64, or Int32 as older exports); IO the float outputs' type.
	IDs, IO onnx.DataType
	Seed    uint64
	// BF16Weights rounds every weight to the nearest bfloat16 (stored as float32), as a bf16 checkpoint holds it.
	BF16Weights bool
}

// TinyCLIP is a CLIP text encoder with the real vocabulary (49408) and 77 positions but 32-d,
// 2-layer width; proj > 0 gives the with-projection variant.
func TinyCLIP(proj int) CLIPConfig {
	return CLIPConfig{Vocab: 49408, Hidden: 32, Layers: 2, Heads: 2, Intermediate: 64, MaxPositions: 77,
		Projection: proj, EOSTokenID: 2, IDs: onnx.Int64, IO: onnx.Float, Seed: 0xc11 + uint64(proj)}
}

func (c CLIPConfig) validate() error {
	switch {
	case c.Vocab <= 0 || c.Hidden <= 0 || c.Layers <= 0 || c.Heads <= 0 || c.Intermediate <= 0 ||
		c.MaxPositions <= 0 || c.Projection < 0:
		return fmt.Errorf("clip config %+v: sizes must be positive", c)
	case c.Hidden%c.Heads != 0:
		return fmt.Errorf("clip config: hidden %d is not a multiple of heads %d", c.Hidden, c.Heads)
	case c.IDs != onnx.Int64 && c.IDs != onnx.Int32:
		return fmt.Errorf("clip config: ids type %v, want int64 or int32", c.IDs)
	}
	return checkIO(c.IO)
}

// CLIPTextEncoder builds CLIPTextModel(WithProjection) as Optimum exports it (clip-text,
// clip-text-with-projection): input input_ids [batch_size,sequence_length]; outputs in Optimum order.
// The graph is arch.CLIPText on RandomWeights (quick_gelu, as CLIP-L).
func CLIPTextEncoder(c CLIPConfig) (*onnx.Model, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	return arch.CLIPText(RandomWeights{Seed: c.Seed, BF16: c.BF16Weights}, c.archConfig(), arch.IO{Float: c.IO, IDs: c.IDs})
}

// archConfig is c as a transformers CLIPTextConfig config.json.
func (c CLIPConfig) archConfig() arch.Config {
	variant, proj := "CLIPTextModel", c.Projection
	if c.Projection > 0 {
		variant = "CLIPTextModelWithProjection"
	} else {
		proj = c.Hidden // CLIPTextModel configs carry an unused projection_dim
	}
	return arch.Config{
		"architectures": []any{variant}, "vocab_size": float64(c.Vocab), "hidden_size": float64(c.Hidden),
		"intermediate_size": float64(c.Intermediate), "num_hidden_layers": float64(c.Layers),
		"num_attention_heads": float64(c.Heads), "max_position_embeddings": float64(c.MaxPositions),
		"projection_dim": float64(proj), "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5,
		"eos_token_id": float64(c.EOSTokenID),
	}
}
