package testmodels

import (
	"errors"
	"fmt"

	"github.com/rflowrt/rflow/internal/compiler/arch"
	"github.com/rflowrt/rflow/internal/onnx"
)

// VAEConfig sizes an AutoencoderKL (diffusers' Encoder/Decoder, as SD3 and FLUX configure it: no quant
// convs, SiLU, mid-block attention): conv_in, ResNet blocks with GroupNorm+SiLU, a mid block (ResNet,
// single-head spatial attention, ResNet), and one 2× resampling between consecutive entries of
// BlockOut, so the spatial factor is 2^(len(BlockOut)−1) (8 for four entries, as in SD3 and FLUX).
// The graphs are arch.VAEEncoder and arch.VAEDecoder on RandomWeights.
type VAEConfig struct {
	// LatentChannels is the latent width (16 for SD3 and FLUX).
	LatentChannels int
	// BlockOut is diffusers' block_out_channels, from the image side ([128, 256, 512, 512] for SD3).
	BlockOut []int
	// LayersPerBlock is the ResNet blocks per encoder down block (the decoder has one more per up
	// block, as in diffusers); 0 means 1.
	LayersPerBlock int
	// NormGroups is norm_num_groups (0 means 32); AutoencoderKL needs it to divide every width, so
	// the VAE uses the largest divisor of all the widths that also divides NormGroups.
	NormGroups int
	// IO is the element type of the graph inputs and outputs (Float or Float16; 0 means Float).
	// Weights and arithmetic stay float32.
	IO   onnx.DataType
	Seed uint64
	// BF16Weights rounds every weight to the nearest bfloat16 (stored as float32), as a bf16 checkpoint holds it.
	BF16Weights bool
}

// TinyVAE is a VAE for fast tests: 16 latent channels, 8× spatial factor, a few thousand weights per block.
func TinyVAE() VAEConfig {
	return VAEConfig{LatentChannels: 16, BlockOut: []int{16, 32, 32, 32}, LayersPerBlock: 1, NormGroups: 8, IO: onnx.Float}
}

// BenchVAE is a VAE for benchmarks: the real layout (two ResNets per block, 32 groups) at a quarter
// of the real widths.
func BenchVAE() VAEConfig {
	return VAEConfig{LatentChannels: 16, BlockOut: []int{64, 128, 256, 256}, LayersPerBlock: 2, NormGroups: 32, IO: onnx.Float}
}

// ScaleFactor is the ratio of image to latent size, 2^(len(BlockOut)−1) (diffusers' vae_scale_factor).
func (c VAEConfig) ScaleFactor() int { return 1 << max(len(c.BlockOut)-1, 0) }

// normalized returns c with defaults filled in, or an error for a config no VAE can have.
func (c VAEConfig) normalized() (VAEConfig, error) {
	if c.LayersPerBlock == 0 {
		c.LayersPerBlock = 1
	}
	if c.NormGroups == 0 {
		c.NormGroups = 32
	}
	if c.IO == 0 {
		c.IO = onnx.Float
	}
	switch {
	case c.LatentChannels < 1:
		return c, fmt.Errorf("vae: LatentChannels %d, want ≥ 1", c.LatentChannels)
	case len(c.BlockOut) == 0:
		return c, errors.New("vae: BlockOut is empty")
	case c.LayersPerBlock < 1 || c.NormGroups < 1:
		return c, fmt.Errorf("vae: LayersPerBlock %d, NormGroups %d: want ≥ 1", c.LayersPerBlock, c.NormGroups)
	case c.IO != onnx.Float && c.IO != onnx.Float16:
		return c, fmt.Errorf("vae: IO %v, want float32 or float16", c.IO)
	}
	for _, ch := range c.BlockOut {
		if ch < 1 {
			return c, fmt.Errorf("vae: BlockOut %v: every width must be ≥ 1", c.BlockOut)
		}
	}
	c.BlockOut = append([]int(nil), c.BlockOut...)
	for _, ch := range c.BlockOut {
		c.NormGroups = gcd(c.NormGroups, ch)
	}
	return c, nil
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// archConfig is c as an AutoencoderKL config.json.
func (c VAEConfig) archConfig() arch.Config {
	widths := make([]any, len(c.BlockOut))
	down, up := make([]any, len(c.BlockOut)), make([]any, len(c.BlockOut))
	for i, ch := range c.BlockOut {
		widths[i], down[i], up[i] = float64(ch), "DownEncoderBlock2D", "UpDecoderBlock2D"
	}
	return arch.Config{
		"in_channels": 3.0, "out_channels": 3.0, "latent_channels": float64(c.LatentChannels),
		"block_out_channels": widths, "layers_per_block": float64(c.LayersPerBlock),
		"norm_num_groups": float64(c.NormGroups), "act_fn": "silu",
		"down_block_types": down, "up_block_types": up, "mid_block_add_attention": true,
		"use_quant_conv": false, "use_post_quant_conv": false,
	}
}

// VAEDecoder builds the Optimum vae_decoder export: input latent_sample [batch_size, LatentChannels,
// latent_height, latent_width] (already unscaled and unshifted), output sample [batch_size, 3,
// height, width] with height = ScaleFactor()·latent_height.
func VAEDecoder(c VAEConfig) (*onnx.Model, error) {
	c, err := c.normalized()
	if err != nil {
		return nil, err
	}
	return arch.VAEDecoder(RandomWeights{Seed: c.Seed, BF16: c.BF16Weights}, c.archConfig(), arch.IO{Float: c.IO})
}

// VAEEncoder builds the Optimum vae_encoder export: input sample [batch_size, 3, height, width],
// output latent_parameters [batch_size, 2·LatentChannels, latent_height, latent_width], the
// diagonal Gaussian's mean followed by its log-variance along the channels.
func VAEEncoder(c VAEConfig) (*onnx.Model, error) {
	c, err := c.normalized()
	if err != nil {
		return nil, err
	}
	return arch.VAEEncoder(RandomWeights{Seed: c.Seed, BF16: c.BF16Weights}, c.archConfig(), arch.IO{Float: c.IO})
}
