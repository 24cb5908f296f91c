package arch

import (
	"fmt"
	"math"

	"github.com/rflowrt/rflow/internal/onnx"
)

// VAEConfig is an AutoencoderKL's config.json (diffusers' field names), as the graph builders use it.
type VAEConfig struct {
	InChannels     int    // in_channels: image channels the encoder takes (3)
	OutChannels    int    // out_channels: image channels the decoder makes (3)
	LatentChannels int    // latent_channels (16 for SD3 and FLUX, 4 for SD 1.x/2.x/XL)
	BlockOut       []int  // block_out_channels, from the image side
	LayersPerBlock int    // layers_per_block: ResNets per encoder block (the decoder has one more)
	NormGroups     int    // norm_num_groups
	Act            string // act_fn of the ResNets
	MidAttention   bool   // mid_block_add_attention
	QuantConv      bool   // use_quant_conv: a 1×1 conv on the encoder's output
	PostQuantConv  bool   // use_post_quant_conv: a 1×1 conv on the decoder's input
	// ScalingFactor and ShiftFactor are read for the caller (the vae package applies them outside the
	// graph: latents = (z − shift)·scaling); the graphs do not use them.
	ScalingFactor float64
	ShiftFactor   float64
}

// ScaleFactor is the ratio of image to latent size, 2^(len(BlockOut)−1) (diffusers' vae_scale_factor).
func (c VAEConfig) ScaleFactor() int { return 1 << max(len(c.BlockOut)-1, 0) }

// VAENormEps is the GroupNorm epsilon of every norm in diffusers' Encoder and Decoder.
const VAENormEps = 1e-6

// ParseVAEConfig reads an AutoencoderKL config.json, with diffusers' defaults for absent fields.
func ParseVAEConfig(c Config) (VAEConfig, error) {
	r := configReader{c: c}
	v := VAEConfig{
		InChannels:     r.int("in_channels", 3),
		OutChannels:    r.int("out_channels", 3),
		LatentChannels: r.int("latent_channels", 4),
		BlockOut:       r.ints("block_out_channels", []int{64}),
		LayersPerBlock: r.int("layers_per_block", 1),
		NormGroups:     r.int("norm_num_groups", 32),
		Act:            r.str("act_fn", "silu"),
		MidAttention:   r.bool("mid_block_add_attention", true),
		QuantConv:      r.bool("use_quant_conv", true),
		PostQuantConv:  r.bool("use_post_quant_conv", true),
		ScalingFactor:  r.float("scaling_factor", 0.18215),
		ShiftFactor:    r.float("shift_factor", 0),
	}
	down := r.strs("down_block_types", []string{"DownEncoderBlock2D"})
	up := r.strs("up_block_types", []string{"UpDecoderBlock2D"})
	if r.err != nil {
		return v, r.err
	}
	const maxWidth = 1 << 16 // far above any real VAE; keeps a corrupt config from asking for absurd tensors
	switch {
	case v.InChannels < 1 || v.OutChannels < 1 || v.LatentChannels < 1:
		return v, fmt.Errorf("config: in_channels %d, out_channels %d, latent_channels %d: want ≥ 1",
			v.InChannels, v.OutChannels, v.LatentChannels)
	case v.InChannels > maxWidth || v.OutChannels > maxWidth || v.LatentChannels > maxWidth:
		return v, fmt.Errorf("config: in_channels %d, out_channels %d, latent_channels %d: want ≤ %d",
			v.InChannels, v.OutChannels, v.LatentChannels, maxWidth)
	case len(v.BlockOut) == 0 || len(v.BlockOut) > 16:
		return v, fmt.Errorf("config: block_out_channels %v: want 1 to 16 entries", v.BlockOut)
	case v.LayersPerBlock < 1 || v.LayersPerBlock > 64:
		return v, fmt.Errorf("config: layers_per_block %d: want 1 to 64", v.LayersPerBlock)
	case v.NormGroups < 1:
		return v, fmt.Errorf("config: norm_num_groups %d: want ≥ 1", v.NormGroups)
	case !vaeActivations[v.Act]:
		return v, fmt.Errorf("config: act_fn %q: want silu, swish, mish, gelu or relu", v.Act)
	case len(down) != len(v.BlockOut) || len(up) != len(v.BlockOut):
		return v, fmt.Errorf("config: %d down_block_types and %d up_block_types for %d block_out_channels",
			len(down), len(up), len(v.BlockOut))
	}
	for _, ch := range v.BlockOut {
		if ch < 1 || ch > maxWidth || ch%v.NormGroups != 0 {
			return v, fmt.Errorf("config: block_out_channels %v: every width must be 1 to %d and divisible by norm_num_groups %d",
				v.BlockOut, maxWidth, v.NormGroups)
		}
	}
	for i := range down {
		if down[i] != "DownEncoderBlock2D" || up[i] != "UpDecoderBlock2D" {
			return v, fmt.Errorf("config: block types %q / %q: only DownEncoderBlock2D / UpDecoderBlock2D are supported",
				down[i], up[i])
		}
	}
	return v, nil
}

// vaeActivations are the act_fn names diffusers' get_activation knows.
var vaeActivations = map[string]bool{"silu": true, "swish": true, "mish": true, "gelu": true, "relu": true}

// VAEDecoder builds AutoencoderKL.decode as Optimum's vae_decoder export: input latent_sample
// [batch_size, latent_channels, latent_height, latent_width] (already unscaled and unshifted), output
// sample [batch_size, out_channels, height, width], height = ScaleFactor()·latent_height. Parameters
// are decoder.* and post_quant_conv.* (when use_post_quant_conv).
//
// The upsamplers are sub-pixel convolutions (SubPixelUpsampleConv: the same values, less than half
// the work) unless io.Attention is UnfusedAttention, which keeps torch's export form throughout
// (Resize, then a 3×3 conv).
func VAEDecoder(w Weights, c Config, io IO) (*onnx.Model, error) {
	return vaeDecoder(w, c, io, io.Attention == UnfusedAttention)
}

// vaeDecoder is VAEDecoder with the upsampler form chosen apart from the attention operator.
func vaeDecoder(w Weights, c Config, io IO, resizeUpsample bool) (*onnx.Model, error) {
	cfg, io, err := vaeSetup(c, io)
	if err != nil {
		return nil, fmt.Errorf("vae decoder: %w", err)
	}
	v := vaeNet{Net: NewNet("vae_decoder", w), c: cfg, resizeUpsample: resizeUpsample}
	v.UseAttention(io.Attention)
	x := v.FloatInput("latent_sample", io.Float, onnx.Sym("batch_size"), onnx.Fixed(int64(cfg.LatentChannels)),
		onnx.Sym("latent_height"), onnx.Sym("latent_width"))
	v.FloatOutput(v.decoder(x), "sample", io.Float, onnx.Sym("batch_size"), onnx.Fixed(int64(cfg.OutChannels)),
		onnx.Sym("height"), onnx.Sym("width"))
	m, err := v.Model()
	if err != nil {
		return nil, fmt.Errorf("vae decoder: %w", err)
	}
	return m, nil
}

// VAEEncoder builds AutoencoderKL.encode as Optimum's vae_encoder export: input sample [batch_size,
// in_channels, height, width] in [−1, 1], output latent_parameters [batch_size, 2·latent_channels,
// latent_height, latent_width], the diagonal Gaussian's parameters (mean, then log-variance along the
// channels, unclamped). Parameters are encoder.* and quant_conv.* (when use_quant_conv).
func VAEEncoder(w Weights, c Config, io IO) (*onnx.Model, error) {
	cfg, io, err := vaeSetup(c, io)
	if err != nil {
		return nil, fmt.Errorf("vae encoder: %w", err)
	}
	v := vaeNet{Net: NewNet("vae_encoder", w), c: cfg}
	v.UseAttention(io.Attention)
	x := v.FloatInput("sample", io.Float, onnx.Sym("batch_size"), onnx.Fixed(int64(cfg.InChannels)),
		onnx.Sym("height"), onnx.Sym("width"))
	v.FloatOutput(v.encoder(x), "latent_parameters", io.Float, onnx.Sym("batch_size"),
		onnx.Fixed(int64(2*cfg.LatentChannels)), onnx.Sym("latent_height"), onnx.Sym("latent_width"))
	m, err := v.Model()
	if err != nil {
		return nil, fmt.Errorf("vae encoder: %w", err)
	}
	return m, nil
}

func vaeSetup(c Config, io IO) (VAEConfig, IO, error) {
	cfg, err := ParseVAEConfig(c)
	if err != nil {
		return cfg, io, err
	}
	io, err = io.withDefaults()
	return cfg, io, err
}

// vaeNet builds diffusers' Encoder and Decoder blocks on a Net.
type vaeNet struct {
	*Net
	c VAEConfig
	// resizeUpsample makes the upsamplers Resize then a 3×3 conv (torch's form) instead of sub-pixel
	// convolutions
	resizeUpsample bool
}

// encoder is Encoder.forward (conv_in, down blocks, mid block, conv_norm_out, SiLU, conv_out with
// double_z) followed by quant_conv.
func (v vaeNet) encoder(x string) string {
	c := v.c
	ch := c.BlockOut[0]
	h := v.Conv2D(x, "encoder.conv_in", c.InChannels, ch, 3, 1, 1)
	for i, out := range c.BlockOut {
		p := fmt.Sprintf("encoder.down_blocks.%d", i)
		for j := range c.LayersPerBlock {
			h = v.resnet(h, fmt.Sprintf("%s.resnets.%d", p, j), ch, out)
			ch = out
		}
		if i < len(c.BlockOut)-1 {
			h = v.downsample(h, p+".downsamplers.0.conv", ch)
		}
	}
	h = v.mid(h, "encoder.mid_block", ch)
	// conv_act is always SiLU (act_fn only reaches the ResNets)
	h = v.SiLU(v.GroupNorm(h, "encoder.conv_norm_out", c.NormGroups, ch, VAENormEps))
	h = v.Conv2D(h, "encoder.conv_out", ch, 2*c.LatentChannels, 3, 1, 1)
	if c.QuantConv {
		h = v.Conv2D(h, "quant_conv", 2*c.LatentChannels, 2*c.LatentChannels, 1, 1, 0)
	}
	return h
}

// decoder is post_quant_conv followed by Decoder.forward (conv_in, mid block, up blocks of
// layers_per_block+1 ResNets from the widest level, conv_norm_out, SiLU, conv_out).
func (v vaeNet) decoder(z string) string {
	c := v.c
	last := len(c.BlockOut) - 1
	ch := c.BlockOut[last]
	h := v.stem(z)
	for i := range c.BlockOut {
		out := c.BlockOut[last-i]
		p := fmt.Sprintf("decoder.up_blocks.%d", i)
		for j := range c.LayersPerBlock + 1 {
			h = v.resnet(h, fmt.Sprintf("%s.resnets.%d", p, j), ch, out)
			ch = out
		}
		if i < last {
			h = v.upsample(h, p+".upsamplers.0.conv", ch)
		}
	}
	h = v.SiLU(v.GroupNorm(h, "decoder.conv_norm_out", c.NormGroups, ch, VAENormEps))
	return v.Conv2D(h, "decoder.conv_out", ch, c.OutChannels, 3, 1, 1)
}

// stem is the decoder up to its mid block: post_quant_conv, conv_in, mid block.
func (v vaeNet) stem(z string) string {
	c := v.c
	if c.PostQuantConv {
		z = v.Conv2D(z, "post_quant_conv", c.LatentChannels, c.LatentChannels, 1, 1, 0)
	}
	ch := c.BlockOut[len(c.BlockOut)-1]
	return v.mid(v.Conv2D(z, "decoder.conv_in", c.LatentChannels, ch, 3, 1, 1), "decoder.mid_block", ch)
}

// act is the ResNets' activation (act_fn).
func (v vaeNet) act(x string) string {
	if v.c.Act == "mish" {
		return v.Mul(x, v.Op("Tanh", []string{v.Op("Softplus", []string{x})}))
	}
	return v.Activation(x, v.c.Act)
}

// resnet is ResnetBlock2D without a time embedding (output_scale_factor 1):
// shortcut(x) + conv2(act(norm2(conv1(act(norm1(x)))))), the shortcut a 1×1 conv when the width changes.
func (v vaeNet) resnet(x, p string, in, out int) string {
	g := v.c.NormGroups
	h := v.Conv2D(v.act(v.GroupNorm(x, p+".norm1", g, in, VAENormEps)), p+".conv1", in, out, 3, 1, 1)
	h = v.Conv2D(v.act(v.GroupNorm(h, p+".norm2", g, out, VAENormEps)), p+".conv2", out, out, 3, 1, 1)
	if in != out {
		x = v.Conv2D(x, p+".conv_shortcut", in, out, 1, 1, 0)
	}
	return v.Add(x, h)
}

// mid is UNetMidBlock2D: ResNet, attention (when mid_block_add_attention), ResNet at constant width.
func (v vaeNet) mid(x, p string, ch int) string {
	h := v.resnet(x, p+".resnets.0", ch, ch)
	if v.c.MidAttention {
		h = v.attention(h, p+".attentions.0", ch)
	}
	return v.resnet(h, p+".resnets.1", ch, ch)
}

// attentionChunks is how many row blocks of queries the mid-block attention is computed in.
const attentionChunks = 8

// attention is the mid block's Attention over the H·W positions: GroupNorm, to_q/to_k/to_v, scaled
// dot-product attention, to_out.0, plus the residual (rescale_output_factor 1). diffusers gives it
// attention_head_dim = channels, so it has one head of width ch and the scale is 1/√ch.
//
// At 1024² pixels the latent has 128² = 16384 positions, so a whole score matrix [B, HW, HW] would be
// 1 GiB per image in float32, and its softmax another. The queries are therefore taken in
// attentionChunks row blocks, each block's scores, softmax and product with v finished before the next
// (rows of a softmax are independent, so the result is the same). The scale goes on q (HW×C) rather
// than on the scores, and k is made directly in the [C, HW] layout the products need. The fused
// operator (FusedAttention) needs neither: it never holds more than a tile of scores.
func (v vaeNet) attention(x, p string, ch int) string {
	hn := v.Reshape(v.GroupNorm(x, p+".group_norm", v.c.NormGroups, ch, VAENormEps), 0, int64(ch), -1) // [B, C, HW]
	h := v.Transpose(hn, 0, 2, 1)                                                                      // [B, HW, C]
	scale := float32(1 / math.Sqrt(float64(ch)))
	var a string
	if v.Net.attention == UnfusedAttention {
		a = v.blockAttention(hn, h, p, ch, scale)
	} else {
		a, _ = v.fusedAttention(v.Linear(h, p+".to_q", ch, ch, true), v.Linear(h, p+".to_k", ch, ch, true),
			v.Linear(h, p+".to_v", ch, ch, true), 1, scale)
	}
	a = v.Linear(a, p+".to_out.0", ch, ch, true) // [B, HW, C]
	a = v.Op("Reshape", []string{v.Transpose(a, 0, 2, 1), v.Op("Shape", []string{x})})
	return v.Add(a, x)
}

// blockAttention is the unfused single-head attention of h [B, HW, C] (hn is h as [B, C, HW]) in
// attentionChunks query blocks, before to_out.
func (v vaeNet) blockAttention(hn, h, p string, ch int, scale float32) string {
	q := v.Mul(v.Linear(h, p+".to_q", ch, ch, true), v.Scalar(scale))
	kT := v.Add(v.MatMul(v.Param(p+".to_k.weight", ch, ch), hn), v.Reshape(v.Param(p+".to_k.bias", ch), int64(ch), 1))
	val := v.Linear(h, p+".to_v", ch, ch, true)
	// block i is rows [i·n, (i+1)·n) with n = ⌊HW/chunks⌋, the last block running to the end (blocks
	// are empty when HW < chunks; Slice allows that)
	n := v.Div(v.Dim(h, 1), v.Ints(attentionChunks))
	blocks := make([]string, attentionChunks)
	for i := range blocks {
		start := v.Mul(n, v.Ints(int64(i)))
		end := v.Ints(math.MaxInt64)
		if i < attentionChunks-1 {
			end = v.Mul(n, v.Ints(int64(i+1)))
		}
		qi := v.Op("Slice", []string{q, start, end, v.Ints(1)})
		probs := v.Op("Softmax", []string{v.MatMul(qi, kT)}, onnx.AttrInt("axis", -1)) // [B, rows, HW]
		blocks[i] = v.MatMul(probs, val)
	}
	return v.Concat(1, blocks...)
}

// downsample is Downsample2D as the Encoder configures it (padding 0): pad right and bottom by one,
// then a 3×3 conv with stride 2 (the pad is the conv's own asymmetric padding).
func (v vaeNet) downsample(x, p string, ch int) string {
	wt := v.Param(p+".weight", ch, ch, 3, 3)
	b := v.Param(p+".bias", ch)
	return v.Op("Conv", []string{x, wt, b}, onnx.AttrInts("kernel_shape", 3, 3), onnx.AttrInts("strides", 2, 2),
		onnx.AttrInts("pads", 0, 0, 1, 1))
}

// upsample is Upsample2D with a conv: nearest ×2, then a 3×3 conv, as four 2×2 convs on x interleaved
// (unless resizeUpsample).
func (v vaeNet) upsample(x, p string, ch int) string {
	if v.resizeUpsample {
		return v.Conv2D(v.Upsample2x(x), p, ch, ch, 3, 1, 1)
	}
	return v.SubPixelUpsampleConv(x, p, ch, ch)
}
