package arch

import (
	"fmt"
	"strings"

	"github.com/rflowrt/rflow/internal/onnx"
)

// The graphs below let a runtime decode with an AutoencoderKL decoder without ever holding its
// full-resolution activations more than twice: the stem (post_quant_conv, conv_in, the mid block)
// runs whole at latent resolution, and every later layer is a row-strip graph that a caller feeds
// strip by strip, keeping the tensors between steps in its own buffers. Convolutions are local, so
// a strip with one row of halo above and below gives exactly the rows a whole convolution would; the
// GroupNorms are not, so the strip graphs take each norm as its per-channel affine (scale, shift),
// which the caller computes from the statistics of the whole tensor.

// VAEStepKind is what one streamed decoder step computes.
type VAEStepKind int

const (
	// VAEResnet is a ResnetBlock2D: its strips are VAEStripConv (norm1, conv1) and then
	// VAEStripConv with the residual (norm2, conv2, shortcut).
	VAEResnet VAEStepKind = iota + 1
	// VAEUpsample is an Upsample2D (nearest ×2, 3×3 conv): VAEStripUpsample.
	VAEUpsample
	// VAEOut is conv_norm_out, SiLU and conv_out: VAEStripConv.
	VAEOut
)

// VAEStep is one step of an AutoencoderKL decoder after its mid block.
type VAEStep struct {
	Kind VAEStepKind
	// Prefix names the step's parameters: "decoder.up_blocks.1.resnets.2",
	// "decoder.up_blocks.1.upsamplers.0.conv" or "decoder".
	Prefix  string
	In, Out int // channels
}

// DecoderSteps lists the decoder's up blocks, upsamplers and output layers in order, as
// VAEDecoder's decoder method builds them.
func (c VAEConfig) DecoderSteps() []VAEStep {
	last := len(c.BlockOut) - 1
	ch := c.BlockOut[last]
	var steps []VAEStep
	for i := range c.BlockOut {
		out := c.BlockOut[last-i]
		p := fmt.Sprintf("decoder.up_blocks.%d", i)
		for j := range c.LayersPerBlock + 1 {
			steps = append(steps, VAEStep{Kind: VAEResnet, Prefix: fmt.Sprintf("%s.resnets.%d", p, j), In: ch, Out: out})
			ch = out
		}
		if i < last {
			steps = append(steps, VAEStep{Kind: VAEUpsample, Prefix: p + ".upsamplers.0.conv", In: ch, Out: ch})
		}
	}
	return append(steps, VAEStep{Kind: VAEOut, Prefix: "decoder", In: ch, Out: c.OutChannels})
}

// VAEDecoderStem builds the decoder up to its mid block: input latent_sample [batch_size,
// latent_channels, latent_height, latent_width] (unscaled), output features [batch_size,
// BlockOut[last], latent_height, latent_width], to be continued by DecoderSteps.
func VAEDecoderStem(w Weights, c Config, io IO) (*onnx.Model, error) {
	cfg, io, err := vaeSetup(c, io)
	if err != nil {
		return nil, fmt.Errorf("vae decoder stem: %w", err)
	}
	v := vaeNet{Net: NewNet("vae_decoder_stem", w), c: cfg}
	v.UseAttention(io.Attention)
	z := v.FloatInput("latent_sample", io.Float, onnx.Sym("batch_size"), onnx.Fixed(int64(cfg.LatentChannels)),
		onnx.Sym("latent_height"), onnx.Sym("latent_width"))
	ch := cfg.BlockOut[len(cfg.BlockOut)-1]
	v.FloatOutput(v.stem(z), "features", onnx.Float, onnx.Sym("batch_size"), onnx.Fixed(int64(ch)),
		onnx.Sym("latent_height"), onnx.Sym("latent_width"))
	m, err := v.Model()
	if err != nil {
		return nil, fmt.Errorf("vae decoder stem: %w", err)
	}
	return m, nil
}

// Strip graphs hold activations row-major across channels, [rows, C, W] ("HCW": one image's
// NCHW tensor with H and C swapped), so that a strip of rows of a whole-image tensor is one
// contiguous window the caller can hand ORT without copying, and a strip's output is written straight
// into its rows. A strip of R output rows of a W-wide image reads the R rows and the halo rows above
// and below that exist (R+2 inside the image, fewer at its top and bottom edges, where pads adds the
// zero rows of the convolution's padding):
//
//	x     [R+top+bottom, in, W]  the layer's input rows, before the norm (top, bottom ∈ {0, 1})
//	scale [in, 1, 1]             the norm as an affine: gamma·rstd of the channel's group
//	shift [in, 1, 1]             beta − mean·gamma·rstd
//	pads  [8] int64              the zero rows to add: 0, 0, 1−top, 0, 0, 0, 1−bottom, 0
//	res   [R, resIn, W]          (with a residual) the ResNet's input rows, added through the shortcut
//	y     [R, out, W]            or [1, out, R, W] (NCHW) for the decoder's output layer
//
// An upsampler strip takes x [r+top+bottom, ch, W] and pads (r rows of the small input) and gives
// y [2r, ch, 2W].
const (
	StripX     = "x"
	StripScale = "scale"
	StripShift = "shift"
	StripPads  = "pads"
	StripRes   = "res"
	StripY     = "y"
)

// stripInput declares an HCW strip input and returns it as NCHW [1, C, rows, W].
func (v vaeNet) stripInput(name string, ch int, rows string) string {
	x := v.FloatInput(name, onnx.Float, onnx.Sym(rows), onnx.Fixed(int64(ch)), onnx.Sym("width"))
	return v.Unsqueeze(v.Transpose(x, 1, 0, 2), 0)
}

// stripOutput declares y from NCHW [1, C, rows, W], as HCW unless nchw.
func (v vaeNet) stripOutput(y string, ch int, rows, width string, nchw bool) {
	if nchw {
		v.FloatOutput(y, StripY, onnx.Float, onnx.Fixed(1), onnx.Fixed(int64(ch)), onnx.Sym(rows), onnx.Sym(width))
		return
	}
	y = v.Transpose(v.Squeeze(y, 0), 1, 0, 2)
	v.FloatOutput(y, StripY, onnx.Float, onnx.Sym(rows), onnx.Fixed(int64(ch)), onnx.Sym(width))
}

// padRows adds the zero rows pads asks for to NCHW h.
func (v vaeNet) padRows(h string) string {
	pads := v.B.Input(StripPads, onnx.Int64, onnx.Fixed(8))
	return v.Op("Pad", []string{h, pads}, onnx.AttrString("mode", "constant"))
}

// VAEStripConv builds one normalised convolution of a decoder step on a strip:
// conv(pad(act(x·scale + shift))) with the conv's own padding of one column left and right. For a
// ResNet's second half (residual true, conv "….conv2") it adds res, through "….conv_shortcut" when
// resIn differs from out. act is the ResNet activation (act_fn) or "silu" for conv_norm_out; nchw
// makes y NCHW (the decoder's output).
func VAEStripConv(w Weights, c Config, conv string, in, out, resIn int, residual bool, act string, nchw bool) (*onnx.Model, error) {
	cfg, err := ParseVAEConfig(c)
	if err != nil {
		return nil, fmt.Errorf("vae strip %s: %w", conv, err)
	}
	cfg.Act = act
	v := vaeNet{Net: NewNet("vae_strip", w), c: cfg}
	x := v.stripInput(StripX, in, "rows_in")
	scale := v.FloatInput(StripScale, onnx.Float, onnx.Fixed(int64(in)), onnx.Fixed(1), onnx.Fixed(1))
	shift := v.FloatInput(StripShift, onnx.Float, onnx.Fixed(int64(in)), onnx.Fixed(1), onnx.Fixed(1))
	h := v.padRows(v.act(v.Add(v.Mul(x, scale), shift)))
	y := v.Op("Conv", []string{h, v.Param(conv+".weight", out, in, 3, 3), v.Param(conv+".bias", out)},
		onnx.AttrInts("kernel_shape", 3, 3), onnx.AttrInts("pads", 0, 1, 0, 1))
	if residual {
		r := v.stripInput(StripRes, resIn, "rows")
		if resIn != out {
			r = v.Conv2D(r, strings.TrimSuffix(conv, ".conv2")+".conv_shortcut", resIn, out, 1, 1, 0)
		}
		y = v.Add(r, y)
	}
	v.stripOutput(y, out, "rows", "width", nchw)
	m, err := v.Model()
	if err != nil {
		return nil, fmt.Errorf("vae strip %s: %w", conv, err)
	}
	return m, nil
}

// VAEStripUpsample builds an Upsample2D (prefix "….upsamplers.0.conv") on a strip as SubPixelUpsampleConv
// does on the whole input: four 2×2 convs, one per output phase, without vertical padding (the halo
// rows and pads are the padding), each phase's rows cut to the strip, interleaved by DepthToSpace. The
// weights are prefix.weight [ch, ch, 3, 3] or, in a compiled decoder, the folded kernels
// prefix.weight.subpixel<a><b> [ch, ch, 2, 2].
func VAEStripUpsample(w Weights, prefix string, ch int) (*onnx.Model, error) {
	v := vaeNet{Net: NewNet("vae_strip_upsample", w)}
	x := v.padRows(v.stripInput(StripX, ch, "rows_in"))
	b := v.Param(prefix+".bias", ch)
	_, unfolded := w.Shape(prefix + ".weight")
	phases := make([]string, len(subPixelLayouts))
	// phase a of small row i reads rows i−1+a and i+a, which are padded rows i−lo+a and i−lo+a+1:
	// its r+1 output rows, cut to [a, a+r), are the strip's r rows
	rows := v.Sub(v.Dim(x, 2), v.Ints(2))
	for i, l := range subPixelLayouts {
		a, c, _ := l.subPixelPhase()
		var k string
		if unfolded {
			k = v.param(prefix+".weight", shapeOf(ch, ch, 3, 3), l)
		} else {
			k = v.Param(paramInitName(prefix+".weight", l), ch, ch, 2, 2)
		}
		p := v.Op("Conv", []string{x, k, b}, onnx.AttrInts("kernel_shape", 2, 2),
			onnx.AttrInts("pads", 0, int64(1-c), 0, int64(c)))
		start := v.Ints(int64(a))
		phases[i] = v.Op("Slice", []string{p, start, v.Add(start, rows), v.Ints(2)})
	}
	y := v.Op("DepthToSpace", []string{v.Concat(1, phases...)}, onnx.AttrInt("blocksize", 2), onnx.AttrString("mode", "DCR"))
	v.stripOutput(y, ch, "rows2", "width2", false)
	m, err := v.Model()
	if err != nil {
		return nil, fmt.Errorf("vae strip %s: %w", prefix, err)
	}
	return m, nil
}
