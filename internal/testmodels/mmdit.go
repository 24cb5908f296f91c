package testmodels

import (
	"fmt"

	"github.com/rflowrt/rflow/internal/compiler/arch"
	"github.com/rflowrt/rflow/internal/onnx"
)

// SD3Config sizes an SD3Transformer2DModel (diffusers) built by SD3Transformer. Hidden is
// num_attention_heads·attention_head_dim (= caption_projection_dim); SampleSize is the latent size the
// positional grid is scaled for (config sample_size).
type SD3Config struct {
	Hidden, Layers, Heads, PatchSize, InChannels, JointDim, PooledDim, PosEmbedMaxSize, SampleSize int
	// IO is the element type of the float inputs and outputs: Float or Float16.
	IO   onnx.DataType
	Seed uint64
	// BF16Weights rounds every weight to the nearest bfloat16 (stored as float32), as a bf16 checkpoint holds it.
	BF16Weights bool
}

// TinySD3 is an SD3 transformer that runs a 64×64 px step (latent 8×8, 16 tokens) in milliseconds. Its
// JointDim is TinyT5's DModel, wider than two concatenated TinyCLIP hidden states (64) so that the
// pipeline's zero padding is exercised; its PooledDim is two TinyCLIP(16) text_embeds.
func TinySD3() SD3Config {
	return SD3Config{Hidden: 64, Layers: 2, Heads: 2, PatchSize: 2, InChannels: 16, JointDim: 96, PooledDim: 32,
		PosEmbedMaxSize: 32, SampleSize: 8, IO: onnx.Float, Seed: 0x5d3}
}

// BenchSD3 is an SD3 transformer with the real I/O widths (4096-d context, 2048-d pooled) sized for
// one 512×512 px step (1024 image tokens) in a fraction of a second on two cores.
func BenchSD3() SD3Config {
	return SD3Config{Hidden: 384, Layers: 8, Heads: 6, PatchSize: 2, InChannels: 16, JointDim: 4096, PooledDim: 2048,
		PosEmbedMaxSize: 96, SampleSize: 64, IO: onnx.Float, Seed: 0x5d3b}
}

// LargeSD3 is an SD3 transformer of about 530M parameters (6 blocks at width 1536, head size 64): 1.1 GB
// as bf16, for conversion and memory benchmarks.
func LargeSD3() SD3Config {
	return SD3Config{Hidden: 1536, Layers: 6, Heads: 24, PatchSize: 2, InChannels: 16, JointDim: 4096, PooledDim: 2048,
		PosEmbedMaxSize: 96, SampleSize: 64, IO: onnx.Float, Seed: 0x5d3c}
}

func (c SD3Config) validate() error {
	switch {
	case c.Hidden <= 0 || c.Layers <= 0 || c.Heads <= 0 || c.PatchSize <= 0 || c.InChannels <= 0 ||
		c.JointDim <= 0 || c.PooledDim <= 0 || c.PosEmbedMaxSize <= 0 || c.SampleSize <= 0:
		return fmt.Errorf("sd3 config %+v: every size must be positive", c)
	case c.Hidden%c.Heads != 0:
		return fmt.Errorf("sd3 config: hidden %d is not a multiple of heads %d", c.Hidden, c.Heads)
	case c.Hidden%4 != 0:
		return fmt.Errorf("sd3 config: hidden %d is not a multiple of 4 (2-D sincos embedding)", c.Hidden)
	case c.SampleSize < c.PatchSize:
		return fmt.Errorf("sd3 config: sample size %d is smaller than the patch size %d", c.SampleSize, c.PatchSize)
	}
	return checkIO(c.IO)
}

func checkIO(io onnx.DataType) error {
	if io != onnx.Float && io != onnx.Float16 {
		return fmt.Errorf("float I/O type %v, want float32 or float16", io)
	}
	return nil
}

// SD3Transformer builds SD3Transformer2DModel as Optimum exports it (sd3-transformer-2d): inputs
// hidden_states [batch_size,C,height,width], encoder_hidden_states [batch_size,sequence_length,JointDim],
// pooled_projections [batch_size,PooledDim], timestep [step] (σ·1000); output out_hidden_states. The
// graph is arch.BuildSD3 on RandomWeights, without the skip_layers input (Optimum's exports have none).
func SD3Transformer(c SD3Config) (*onnx.Model, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	sc, err := arch.ParseSD3Config(c.archConfig())
	if err != nil {
		return nil, err
	}
	sc.NoSkipLayers = true
	return arch.BuildSD3(RandomWeights{Seed: c.Seed, BF16: c.BF16Weights}, sc, arch.IO{Float: c.IO})
}

// archConfig is c as a diffusers SD3Transformer2DModel config.json (SD3-medium style: no qk norm, no
// dual-attention blocks).
func (c SD3Config) archConfig() arch.Config {
	return arch.Config{
		"num_layers":             float64(c.Layers),
		"attention_head_dim":     float64(c.Hidden / c.Heads),
		"num_attention_heads":    float64(c.Heads),
		"joint_attention_dim":    float64(c.JointDim),
		"caption_projection_dim": float64(c.Hidden),
		"pooled_projection_dim":  float64(c.PooledDim),
		"in_channels":            float64(c.InChannels),
		"out_channels":           float64(c.InChannels),
		"patch_size":             float64(c.PatchSize),
		"pos_embed_max_size":     float64(c.PosEmbedMaxSize),
		"sample_size":            float64(c.SampleSize),
		"qk_norm":                nil,
		"dual_attention_layers":  []any{},
	}
}
