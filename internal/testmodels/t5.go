package testmodels

import (
	"fmt"

	"github.com/rflowrt/rflow/internal/compiler/arch"
	"github.com/rflowrt/rflow/internal/onnx"
)

// T5Config sizes a transformers T5EncoderModel (T5 v1.1: gated-GELU FFN) built by T5Encoder.
type T5Config struct {
	Vocab, DModel, Layers, Heads, DKV, FF int
	// IDs is input_ids' element type (Int64 as Optimum exports it); IO the output's float type.
	IDs, IO onnx.DataType
	Seed    uint64
	// BF16Weights rounds every weight to the nearest bfloat16 (stored as float32), as a bf16 checkpoint holds it.
	BF16Weights bool
}

// TinyT5 is a T5 encoder with the real vocabulary (32128) but 96-d, 2-layer width; DModel matches
// TinySD3's and TinyFlux's JointDim.
func TinyT5() T5Config {
	return T5Config{Vocab: 32128, DModel: 96, Layers: 2, Heads: 2, DKV: 16, FF: 96, IDs: onnx.Int64, IO: onnx.Float,
		Seed: 0x75}
}

func (c T5Config) validate() error {
	switch {
	case c.Vocab <= 0 || c.DModel <= 0 || c.Layers <= 0 || c.Heads <= 0 || c.DKV <= 0 || c.FF <= 0:
		return fmt.Errorf("t5 config %+v: sizes must be positive", c)
	case c.IDs != onnx.Int64 && c.IDs != onnx.Int32:
		return fmt.Errorf("t5 config: ids type %v, want int64 or int32", c.IDs)
	}
	return checkIO(c.IO)
}

// T5Encoder builds T5EncoderModel as Optimum exports it (t5-encoder): input input_ids
// [batch_size,sequence_length], output last_hidden_state [batch_size,sequence_length,DModel].
// The graph is arch.T5Encoder on RandomWeights: T5 v1.1's gated-GELU FFN and relative position bias
// (32 buckets up to distance 128, as every T5 v1.1 / XXL config). No attention mask, as the pipelines
// pass none.
func T5Encoder(c T5Config) (*onnx.Model, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	return arch.T5Encoder(RandomWeights{Seed: c.Seed, BF16: c.BF16Weights}, c.archConfig(), arch.IO{Float: c.IO, IDs: c.IDs})
}

// archConfig is c as a transformers T5Config config.json.
func (c T5Config) archConfig() arch.Config {
	return arch.Config{
		"architectures": []any{"T5EncoderModel"}, "vocab_size": float64(c.Vocab), "d_model": float64(c.DModel),
		"d_kv": float64(c.DKV), "num_heads": float64(c.Heads), "num_layers": float64(c.Layers), "d_ff": float64(c.FF),
		"feed_forward_proj": "gated-gelu", "relative_attention_num_buckets": 32.0,
		"relative_attention_max_distance": 128.0, "layer_norm_epsilon": 1e-6,
	}
}
