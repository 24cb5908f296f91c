package arch

import (
	"fmt"

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
	// VAEResnet is a ResnetBlock2D: its strips are VAEStripConv (norm1, conv1, and the shortcut when
	// the width changes) and then VAEStripConv with the residual (norm2, conv2).
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

// Strip graphs are NCHW throughout, so that a caller keeping its tensors in blocks of rows ([C, R, W]
// each, one after another) can hand ONNX Runtime a block as it is and have the output written straight
// into its place. A strip of R output rows of a W-wide image reads its R rows and one row of halo above
// and below, given apart (rows of the neighbouring blocks; zeros at the image's edges):
//
//	x      [1, in, R, W]     the layer's input rows, before the norm
//	top    [1, in, 1, W]     the row above them
//	bottom [1, in, 1, W]     the row below them
//	scale  [in, 1, 1]        the norm as an affine: gamma·rstd of the channel's group
//	shift  [in, 1, 1]        beta − mean·gamma·rstd
//	mask   [1, 1, R+2, 1]    1 for the rows in the image, 0 for a top or bottom row that is the
//	                         convolution's zero padding (the norm and activation of a zero row are not 0)
//	res    [1, resIn, R, W]  (with a residual) the ResNet's input rows, added through the shortcut
//	y      [1, out, R, W]
//
// An upsampler strip takes x, top and bottom (r rows of the small input, zeros outside it: its padding
// comes before any norm) and gives the four phases of the 2r×2W output (StripPhases).
const (
	StripX      = "x"
	StripTop    = "top"
	StripBottom = "bottom"
	StripScale  = "scale"
	StripShift  = "shift"
	StripMask   = "mask"
	StripRes    = "res"
	StripY      = "y"
)

// stripInputs declares x, top and bottom with ch channels.
func (v vaeNet) stripInputs(ch int) (x, top, bottom string) {
	c, w := onnx.Fixed(int64(ch)), onnx.Sym("width")
	x = v.FloatInput(StripX, onnx.Float, onnx.Fixed(1), c, onnx.Sym("rows"), w)
	top = v.FloatInput(StripTop, onnx.Float, onnx.Fixed(1), c, onnx.Fixed(1), w)
	bottom = v.FloatInput(StripBottom, onnx.Float, onnx.Fixed(1), c, onnx.Fixed(1), w)
	return x, top, bottom
}

// stripOutput declares output name from y [1, ch, rows, width].
func (v vaeNet) stripOutput(y, name string, ch int, rows, width string) {
	v.FloatOutput(y, name, onnx.Float, onnx.Fixed(1), onnx.Fixed(int64(ch)), onnx.Sym(rows), onnx.Sym(width))
}

// StripConv describes one normalised convolution of a decoder step for VAEStripConv.
type StripConv struct {
	Conv    string // the conv: "….conv1", "….conv2", "decoder.conv_out"
	In, Out int
	Act     string // the ResNet activation (act_fn), "silu" for conv_norm_out
	// Residual is the width of res, added to the output (0: no residual), through Shortcut when it
	// differs from Out.
	Residual int
	// Shortcut is the ResNet's 1×1 "….conv_shortcut". With no Residual it makes a second output,
	// StripShortcut [1, Out, R, W]: the shortcut of x, so that the caller can drop x before the
	// ResNet's second half.
	Shortcut string
}

// StripShortcut is the second output of a StripConv with a Shortcut and no Residual.
const StripShortcut = "shortcut"

// VAEStripConv builds one normalised convolution of a decoder step on a strip:
// conv(act(norm(top, x, bottom))·mask) (the halo rows zeroed where they are padding), the conv's own padding
// one column left and right, plus the residual or the shortcut output that s asks for.
func VAEStripConv(w Weights, s StripConv) (*onnx.Model, error) {
	v := vaeNet{Net: NewNet("vae_strip", w), c: VAEConfig{Act: s.Act}} // the activation is all the net reads of c
	x, top, bottom := v.stripInputs(s.In)
	scale := v.FloatInput(StripScale, onnx.Float, onnx.Fixed(int64(s.In)), onnx.Fixed(1), onnx.Fixed(1))
	shift := v.FloatInput(StripShift, onnx.Float, onnx.Fixed(int64(s.In)), onnx.Fixed(1), onnx.Fixed(1))
	mask := v.FloatInput(StripMask, onnx.Float, onnx.Fixed(1), onnx.Fixed(1), onnx.Sym("rows_halo"), onnx.Fixed(1))
	h := v.Mul(v.act(v.Add(v.Mul(v.Concat(2, top, x, bottom), scale), shift)), mask)
	y := v.Op("Conv", []string{h, v.Param(s.Conv+".weight", s.Out, s.In, 3, 3), v.Param(s.Conv+".bias", s.Out)},
		onnx.AttrInts("kernel_shape", 3, 3), onnx.AttrInts("pads", 0, 1, 0, 1))
	if s.Residual > 0 {
		r := v.FloatInput(StripRes, onnx.Float, onnx.Fixed(1), onnx.Fixed(int64(s.Residual)), onnx.Sym("rows"), onnx.Sym("width"))
		if s.Residual != s.Out {
			r = v.Conv2D(r, s.Shortcut, s.Residual, s.Out, 1, 1, 0)
		}
		y = v.Add(r, y)
	}
	v.stripOutput(y, StripY, s.Out, "rows", "width")
	if s.Residual == 0 && s.Shortcut != "" {
		v.stripOutput(v.Conv2D(x, s.Shortcut, s.In, s.Out, 1, 1, 0), StripShortcut, s.Out, "rows", "width")
	}
	m, err := v.Model()
	if err != nil {
		return nil, fmt.Errorf("vae strip %s: %w", s.Conv, err)
	}
	return m, nil
}

// StripPhases are the outputs of VAEStripUpsample: phase (a, b) is the upsampled image's rows 2i+a,
// columns 2j+b.
var StripPhases = [4]string{"y00", "y01", "y10", "y11"}

// VAEStripUpsample builds an Upsample2D (prefix "….upsamplers.0.conv") on a strip as SubPixelUpsampleConv
// does on the whole input, but leaves the four phases apart: each 2×2 conv runs over the strip's r
// rows and their halo without vertical padding and gives r+1 rows, of which phase (a, b)'s rows
// [a, a+r) are the strip's; the caller interleaves them (ONNX Runtime's DepthToSpace on strips cost a
// tenth of the decode). The weights are prefix.weight [ch, ch, 3, 3] or, in a compiled decoder, the
// folded kernels prefix.weight.subpixel<a><b> [ch, ch, 2, 2].
func VAEStripUpsample(w Weights, prefix string, ch int) (*onnx.Model, error) {
	v := vaeNet{Net: NewNet("vae_strip_upsample", w)}
	x, top, bottom := v.stripInputs(ch)
	x = v.Concat(2, top, x, bottom)
	b := v.Param(prefix+".bias", ch)
	_, unfolded := w.Shape(prefix + ".weight")
	for i, l := range subPixelLayouts {
		_, c, _ := l.subPixelPhase()
		var k string
		if unfolded {
			k = v.param(prefix+".weight", shapeOf(ch, ch, 3, 3), l)
		} else {
			k = v.Param(paramInitName(prefix+".weight", l), ch, ch, 2, 2)
		}
		p := v.Op("Conv", []string{x, k, b}, onnx.AttrInts("kernel_shape", 2, 2),
			onnx.AttrInts("pads", 0, int64(1-c), 0, int64(c)))
		v.stripOutput(p, StripPhases[i], ch, "rows1", "width")
	}
	m, err := v.Model()
	if err != nil {
		return nil, fmt.Errorf("vae strip %s: %w", prefix, err)
	}
	return m, nil
}
