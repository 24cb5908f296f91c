package testmodels

import (
	"errors"
	"fmt"

	"github.com/rflowrt/rflow/internal/onnx"
)

// VAEConfig sizes an AutoencoderKL-shaped VAE (diffusers' Encoder/Decoder): conv_in, ResNet blocks
// with GroupNorm+SiLU, a mid block (ResNet, single-head spatial attention, ResNet), and one 2×
// resampling between consecutive entries of BlockOut, so the spatial factor is 2^(len(BlockOut)−1)
// (8 for four entries, as in SD3 and FLUX).
type VAEConfig struct {
	// LatentChannels is the latent width (16 for SD3 and FLUX).
	LatentChannels int
	// BlockOut is diffusers' block_out_channels, from the image side ([128, 256, 512, 512] for SD3).
	BlockOut []int
	// LayersPerBlock is the ResNet blocks per encoder down block (the decoder has one more per up
	// block, as in diffusers); 0 means 1.
	LayersPerBlock int
	// NormGroups is norm_num_groups (0 means 32); a block with fewer channels uses gcd(NormGroups,
	// channels) groups.
	NormGroups int
	// IO is the element type of the graph inputs and outputs (Float or Float16; 0 means Float).
	// Weights and arithmetic stay float32.
	IO   onnx.DataType
	Seed uint64
}

// vaeEps is the GroupNorm epsilon of diffusers' AutoencoderKL.
const vaeEps = 1e-6

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
	return c, nil
}

// vaeNet builds VAE blocks on a Net.
type vaeNet struct {
	*Net
	c VAEConfig
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// norm is GroupNorm over ch channels with gcd(NormGroups, ch) groups.
func (v vaeNet) norm(x string, ch int) string {
	return v.GroupNorm(x, gcd(v.c.NormGroups, ch), ch, vaeEps)
}

// resnet is diffusers' ResnetBlock2D without a time embedding: x + conv(silu(norm(conv(silu(norm(x)))))),
// with a 1×1 conv_shortcut when the width changes.
func (v vaeNet) resnet(x string, in, out int) string {
	h := v.Conv2D(v.SiLU(v.norm(x, in)), in, out, 3, 1, 1)
	h = v.Conv2D(v.SiLU(v.norm(h, out)), out, out, 3, 1, 1)
	if in != out {
		x = v.Conv2D(x, in, out, 1, 1, 0)
	}
	return v.Add(x, h)
}

// attention is the mid block's single-head self-attention over the H·W positions, with a residual.
func (v vaeNet) attention(x string, ch int) string {
	shape := v.Op("Shape", []string{x})
	h := v.Transpose(v.Reshape(v.norm(x, ch), 0, int64(ch), -1), 0, 2, 1) // [B, HW, C]
	q, k, val := v.Linear(h, ch, ch, true), v.Linear(h, ch, ch, true), v.Linear(h, ch, ch, true)
	a := v.Linear(v.Attention(q, k, val, 1, ""), ch, ch, true)
	a = v.Op("Reshape", []string{v.Transpose(a, 0, 2, 1), shape})
	return v.Add(x, a)
}

// mid is UNetMidBlock2D: ResNet, attention, ResNet at constant width.
func (v vaeNet) mid(x string, ch int) string {
	return v.resnet(v.attention(v.resnet(x, ch, ch), ch), ch, ch)
}

// downsample is diffusers' Downsample2D with a conv: pad right and bottom by one, 3×3 conv, stride 2.
func (v vaeNet) downsample(x string, ch int) string {
	p := v.Op("Pad", []string{x, v.ConstInt64([]int64{0, 0, 0, 0, 0, 0, 1, 1}, 8)}, onnx.AttrString("mode", "constant"))
	return v.Conv2D(p, ch, ch, 3, 2, 0)
}

// upsample is diffusers' Upsample2D with a conv: nearest 2× then a 3×3 conv.
func (v vaeNet) upsample(x string, ch int) string {
	return v.Conv2D(v.Upsample2x(x), ch, ch, 3, 1, 1)
}

// out is the final conv_norm_out, SiLU and conv_out.
func (v vaeNet) out(x string, in, out int) string {
	return v.Conv2D(v.SiLU(v.norm(x, in)), in, out, 3, 1, 1)
}

// VAEDecoder builds the Optimum vae_decoder export: input latent_sample [batch_size, LatentChannels,
// latent_height, latent_width] (already unscaled and unshifted), output sample [batch_size, 3,
// height, width] with height = ScaleFactor()·latent_height.
func VAEDecoder(c VAEConfig) (*onnx.Model, error) {
	c, err := c.normalized()
	if err != nil {
		return nil, err
	}
	v := vaeNet{NewNet("vae_decoder", DefaultOpset, c.Seed), c}
	x := v.FloatInput("latent_sample", c.IO, onnx.Sym("batch_size"), onnx.Fixed(int64(c.LatentChannels)),
		onnx.Sym("latent_height"), onnx.Sym("latent_width"))
	last := len(c.BlockOut) - 1
	ch := c.BlockOut[last]
	h := v.mid(v.Conv2D(x, c.LatentChannels, ch, 3, 1, 1), ch)
	for i := last; i >= 0; i-- {
		for range c.LayersPerBlock + 1 {
			h = v.resnet(h, ch, c.BlockOut[i])
			ch = c.BlockOut[i]
		}
		if i > 0 {
			h = v.upsample(h, ch)
		}
	}
	v.FloatOutput(v.out(h, ch, 3), "sample", c.IO, onnx.Sym("batch_size"), onnx.Fixed(3), onnx.Sym("height"), onnx.Sym("width"))
	return v.Model()
}

// VAEEncoder builds the Optimum vae_encoder export: input sample [batch_size, 3, height, width],
// output latent_parameters [batch_size, 2·LatentChannels, latent_height, latent_width], the
// diagonal Gaussian's mean followed by its log-variance along the channels (no quant_conv, as in
// SD3 and FLUX).
func VAEEncoder(c VAEConfig) (*onnx.Model, error) {
	c, err := c.normalized()
	if err != nil {
		return nil, err
	}
	v := vaeNet{NewNet("vae_encoder", DefaultOpset, c.Seed), c}
	x := v.FloatInput("sample", c.IO, onnx.Sym("batch_size"), onnx.Fixed(3), onnx.Sym("height"), onnx.Sym("width"))
	ch := c.BlockOut[0]
	h := v.Conv2D(x, 3, ch, 3, 1, 1)
	for i, out := range c.BlockOut {
		for range c.LayersPerBlock {
			h = v.resnet(h, ch, out)
			ch = out
		}
		if i < len(c.BlockOut)-1 {
			h = v.downsample(h, ch)
		}
	}
	h = v.out(v.mid(h, ch), ch, 2*c.LatentChannels)
	v.FloatOutput(h, "latent_parameters", c.IO, onnx.Sym("batch_size"), onnx.Fixed(int64(2*c.LatentChannels)),
		onnx.Sym("latent_height"), onnx.Sym("latent_width"))
	return v.Model()
}
