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

// stripOutput declares output name from NCHW y [1, C, rows, W], as HCW unless nchw.
func (v vaeNet) stripOutput(y, name string, ch int, rows, width string, nchw bool) {
	if nchw {
		v.FloatOutput(y, name, onnx.Float, onnx.Fixed(1), onnx.Fixed(int64(ch)), onnx.Sym(rows), onnx.Sym(width))
		return
	}
	y = v.Transpose(v.Squeeze(y, 0), 1, 0, 2)
	v.FloatOutput(y, name, onnx.Float, onnx.Sym(rows), onnx.Fixed(int64(ch)), onnx.Sym(width))
}

// stripPads declares the pads input.
func (v vaeNet) stripPads() string { return v.B.Input(StripPads, onnx.Int64, onnx.Fixed(8)) }

// padRows adds the zero rows pads asks for to NCHW h.
func (v vaeNet) padRows(h, pads string) string {
	return v.Op("Pad", []string{h, pads}, onnx.AttrString("mode", "constant"))
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
	// StripShortcut [R, Out, W]: the shortcut of the strip's own rows of x, so that the caller can drop
	// x before the ResNet's second half.
	Shortcut string
	NCHW     bool // y is NCHW [1, Out, R, W] (the decoder's output)
}

// StripShortcut is the second output of a StripConv with a Shortcut and no Residual.
const StripShortcut = "shortcut"

// VAEStripConv builds one normalised convolution of a decoder step on a strip:
// conv(pad(act(x·scale + shift))) with the conv's own padding of one column left and right, plus the
// residual or the shortcut output that s asks for.
func VAEStripConv(w Weights, c Config, s StripConv) (*onnx.Model, error) {
	cfg, err := ParseVAEConfig(c)
	if err != nil {
		return nil, fmt.Errorf("vae strip %s: %w", s.Conv, err)
	}
	cfg.Act = s.Act
	v := vaeNet{Net: NewNet("vae_strip", w), c: cfg}
	x := v.stripInput(StripX, s.In, "rows_in")
	scale := v.FloatInput(StripScale, onnx.Float, onnx.Fixed(int64(s.In)), onnx.Fixed(1), onnx.Fixed(1))
	shift := v.FloatInput(StripShift, onnx.Float, onnx.Fixed(int64(s.In)), onnx.Fixed(1), onnx.Fixed(1))
	pads := v.stripPads()
	h := v.padRows(v.act(v.Add(v.Mul(x, scale), shift)), pads)
	y := v.Op("Conv", []string{h, v.Param(s.Conv+".weight", s.Out, s.In, 3, 3), v.Param(s.Conv+".bias", s.Out)},
		onnx.AttrInts("kernel_shape", 3, 3), onnx.AttrInts("pads", 0, 1, 0, 1))
	if s.Residual > 0 {
		r := v.stripInput(StripRes, s.Residual, "rows")
		if s.Residual != s.Out {
			r = v.Conv2D(r, s.Shortcut, s.Residual, s.Out, 1, 1, 0)
		}
		y = v.Add(r, y)
	}
	v.stripOutput(y, StripY, s.Out, "rows", "width", s.NCHW)
	if s.Residual == 0 && s.Shortcut != "" {
		// the strip's own rows of x: from 1 − pads[2] (1 when a halo row above was given), R of them
		start := v.Sub(v.Ints(1), v.Slice(pads, []int64{2}, []int64{3}, []int64{0}))
		own := v.Op("Slice", []string{x, start, v.Add(start, v.Dim(y, 2)), v.Ints(2)})
		v.stripOutput(v.Conv2D(own, s.Shortcut, s.In, s.Out, 1, 1, 0), StripShortcut, s.Out, "rows", "width", false)
	}
	m, err := v.Model()
	if err != nil {
		return nil, fmt.Errorf("vae strip %s: %w", s.Conv, err)
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
	x := v.padRows(v.stripInput(StripX, ch, "rows_in"), v.stripPads())
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
	v.stripOutput(y, StripY, ch, "rows2", "width2", false)
	m, err := v.Model()
	if err != nil {
		return nil, fmt.Errorf("vae strip %s: %w", prefix, err)
	}
	return m, nil
}
