package testmodels

import (
	"fmt"

	"github.com/rflowrt/rflow/internal/compiler/arch"
	"github.com/rflowrt/rflow/internal/onnx"
)

// FluxConfig sizes a FluxTransformer2DModel (diffusers) built by FluxTransformer. Hidden is
// num_attention_heads·attention_head_dim; AxesDim (axes_dims_rope) must sum to the head size.
type FluxConfig struct {
	Hidden, Heads, DoubleLayers, SingleLayers int
	AxesDim                                   [3]int
	InChannels, JointDim, PooledDim           int
	// OutChannels is out_channels; 0 is InChannels (diffusers' null), FLUX.1-Fill's is 64 for 384 in.
	OutChannels int
	// Guidance adds the guidance input and embedder (FLUX.1-dev); off is FLUX.1-schnell.
	Guidance bool
	// IO is the element type of the float inputs and outputs: Float or Float16.
	IO onnx.DataType
	// IDs is the element type of txt_ids and img_ids: Int64 (as Optimum exports them) or Float.
	IDs  onnx.DataType
	Seed uint64
	// BF16Weights rounds every weight to the nearest bfloat16 (stored as float32), as a bf16 checkpoint holds it.
	BF16Weights bool
}

// TinyFlux is a FLUX transformer that runs a 64×64 px step (4×4 packed tokens) in milliseconds.
// JointDim is TinyT5's DModel and PooledDim TinyCLIP(0)'s hidden size.
func TinyFlux(guidance bool) FluxConfig {
	return FluxConfig{Hidden: 64, Heads: 2, DoubleLayers: 1, SingleLayers: 2, AxesDim: [3]int{8, 12, 12},
		InChannels: 64, JointDim: 96, PooledDim: 32, Guidance: guidance, IO: onnx.Float, IDs: onnx.Int64, Seed: 0xf1}
}

// BenchFlux is a FLUX transformer with the real I/O widths (4096-d context, 768-d pooled) sized for
// one 512×512 px step (1024 packed tokens) in a fraction of a second on two cores.
func BenchFlux(guidance bool) FluxConfig {
	return FluxConfig{Hidden: 384, Heads: 6, DoubleLayers: 3, SingleLayers: 6, AxesDim: [3]int{16, 24, 24},
		InChannels: 64, JointDim: 4096, PooledDim: 768, Guidance: guidance, IO: onnx.Float, IDs: onnx.Int64, Seed: 0xf1b}
}

// validate checks what the arch config cannot express; arch.ParseFluxConfig checks the rest (axes,
// sizes) and arch.BuildFlux the I/O types.
// LargeFlux is a FLUX transformer of about 550M parameters (8 double and 16 single blocks at width
// 1024, FLUX.1's head size 128 and rope axes): 1.1 GB as bf16, for conversion and memory benchmarks.
func LargeFlux(guidance bool) FluxConfig {
	return FluxConfig{Hidden: 1024, Heads: 8, DoubleLayers: 8, SingleLayers: 16, AxesDim: [3]int{16, 56, 56},
		InChannels: 64, JointDim: 4096, PooledDim: 768, Guidance: guidance, IO: onnx.Float, IDs: onnx.Int64, Seed: 0xf1c}
}

func (c FluxConfig) validate() error {
	if c.Hidden <= 0 || c.Heads <= 0 || c.Hidden%c.Heads != 0 {
		return fmt.Errorf("flux config: hidden %d must be a positive multiple of heads %d", c.Hidden, c.Heads)
	}
	return nil
}

// archConfig is c as FluxTransformer2DModel's config.json.
func (c FluxConfig) archConfig() arch.Config {
	axes := make([]any, len(c.AxesDim))
	for i, a := range c.AxesDim {
		axes[i] = float64(a)
	}
	return arch.Config{
		"_class_name": "FluxTransformer2DModel", "patch_size": 1.0, "in_channels": float64(c.InChannels),
		"num_layers": float64(c.DoubleLayers), "num_single_layers": float64(c.SingleLayers),
		"attention_head_dim": float64(c.Hidden / c.Heads), "num_attention_heads": float64(c.Heads),
		"joint_attention_dim": float64(c.JointDim), "pooled_projection_dim": float64(c.PooledDim),
		"guidance_embeds": c.Guidance, "axes_dims_rope": axes, "out_channels": float64(c.outChannels()),
	}
}

func (c FluxConfig) outChannels() int {
	if c.OutChannels == 0 {
		return c.InChannels
	}
	return c.OutChannels
}

// FluxTransformer builds FluxTransformer2DModel as Optimum exports it (flux-transformer-2d), inputs in
// forward order: hidden_states [batch_size,packed_height_width,InChannels], encoder_hidden_states
// [batch_size,sequence_length,JointDim], pooled_projections [batch_size,PooledDim], timestep [step]
// (σ; ×1000 in the graph), img_ids [packed_height_width,3], txt_ids [sequence_length,3], and with
// Guidance guidance [batch_size] (×1000 in the graph); output out_hidden_states. The graph is
// arch.FluxTransformer on RandomWeights.
func FluxTransformer(c FluxConfig) (*onnx.Model, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	return arch.FluxTransformer(RandomWeights{Seed: c.Seed, BF16: c.BF16Weights}, c.archConfig(), arch.IO{Float: c.IO, IDs: c.IDs})
}
