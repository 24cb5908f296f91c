package testmodels

import (
	"fmt"
	"math"

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
// pooled_projections [batch_size,PooledDim], timestep [step] (σ·1000); output out_hidden_states.
func SD3Transformer(c SD3Config) (*onnx.Model, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	n := NewNet("sd3_transformer", DefaultOpset, c.Seed)
	batch, h, w := onnx.Sym("batch_size"), onnx.Sym("height"), onnx.Sym("width")
	ch := onnx.Fixed(int64(c.InChannels))
	x := n.FloatInput("hidden_states", c.IO, batch, ch, h, w)
	ctx := n.FloatInput("encoder_hidden_states", c.IO, batch, onnx.Sym("sequence_length"), onnx.Fixed(int64(c.JointDim)))
	pooled := n.FloatInput("pooled_projections", c.IO, batch, onnx.Fixed(int64(c.PooledDim)))
	t := n.FloatInput("timestep", c.IO, onnx.Sym("step"))

	d := c.Hidden
	tokens := n.sd3PatchEmbed(x, c)
	temb := n.Add(n.mlpEmbed(n.timestepProj(t), 256, d), n.mlpEmbed(pooled, c.PooledDim, d))
	act := n.SiLU(temb) // every adaLN modulation starts with SiLU(temb)
	ctx = n.Linear(ctx, c.JointDim, d, true)
	for i := range c.Layers {
		tokens, ctx = n.jointBlock(tokens, ctx, act, d, c.Heads, i == c.Layers-1)
	}
	tokens = n.adaNormContinuous(tokens, act, d)
	p := c.PatchSize
	tokens = n.Linear(tokens, d, p*p*c.InChannels, true)
	n.FloatOutput(n.unpatchify(tokens, x, p, c.InChannels), "out_hidden_states", c.IO, batch, ch, h, w)
	return n.Model()
}

// sd3PatchEmbed is diffusers' PatchEmbed with pos_embed_max_size: a p×p stride-p convolution, the
// patches flattened row-major into tokens, plus the cropped 2-D sincos positional embedding.
func (n *Net) sd3PatchEmbed(x string, c SD3Config) string {
	grid := n.Conv2D(x, c.InChannels, c.Hidden, c.PatchSize, c.PatchSize, 0)
	return n.Add(n.gridTokens(grid, c.Hidden), n.posCrop(grid, c))
}

// posCrop is PatchEmbed.cropped_pos_embed for a [B,D,h,w] patch grid: rows top…top+h and columns
// left…left+w of the PosEmbedMaxSize² sincos table, top = (max−h)/2, left = (max−w)/2, as [1,h·w,D].
func (n *Net) posCrop(grid string, c SD3Config) string {
	d, m := int64(c.Hidden), int64(c.PosEmbedMaxSize)
	hp, wp := n.Dim(grid, 2), n.Dim(grid, 3)
	two, mx := n.ConstInt64([]int64{2}, 1), n.ConstInt64([]int64{m}, 1)
	top := n.Div(n.Sub(mx, hp), two)
	left := n.Div(n.Sub(mx, wp), two)
	table := n.Const(sincos2D(c.Hidden, c.PosEmbedMaxSize, c.SampleSize/c.PatchSize), m, m, d)
	pos := n.Op("Slice", []string{table, n.Concat(0, top, left),
		n.Concat(0, n.Add(top, hp), n.Add(left, wp)), n.ints(0, 1)})
	return n.Reshape(pos, 1, -1, d)
}

// gridTokens turns a [B,D,h,w] feature map into [B,h·w,D] tokens (flatten(2).transpose(1,2)).
func (n *Net) gridTokens(grid string, d int) string {
	return n.Transpose(n.Reshape(grid, 0, int64(d), -1), 0, 2, 1)
}

// unpatchify turns [B,h·w,p·p·C] tokens back into an image shaped like ref [B,C,h·p,w·p]:
// reshape (B,h,w,p,p,C), einsum nhwpqc→nchpwq, reshape.
func (n *Net) unpatchify(tokens, ref string, p, c int) string {
	pp := int64(p)
	hp := n.Div(n.Dim(ref, 2), n.ConstInt64([]int64{pp}, 1))
	wp := n.Div(n.Dim(ref, 3), n.ConstInt64([]int64{pp}, 1))
	shape := n.Concat(0, n.Dim(ref, 0), hp, wp, n.ints(pp, pp, int64(c)))
	y := n.Op("Reshape", []string{tokens, shape})
	y = n.Transpose(y, 0, 5, 1, 3, 2, 4)
	return n.Op("Reshape", []string{y, n.Op("Shape", []string{ref})})
}

// sincos2D is diffusers' get_2d_sincos_pos_embed(dim, size, base_size) as a [size,size,dim] table:
// positions arange(size)/(size/base); the first dim/2 features encode the column, the rest the row,
// each half [sin, cos] with ω_k = 10000^(−k/(dim/4)). Computed in float64 like NumPy.
func sincos2D(dim, size, base int) []float32 {
	out := make([]float32, 0, size*size*dim)
	scale := float64(size) / float64(base)
	for i := range size {
		for j := range size {
			out = append(out, sincos1D(dim/2, float64(float32(float32(j)/float32(scale))))...)
			out = append(out, sincos1D(dim/2, float64(float32(float32(i)/float32(scale))))...)
		}
	}
	return out
}

func sincos1D(dim int, pos float64) []float32 {
	half := dim / 2
	v := make([]float32, dim)
	for k := range half {
		omega := 1 / math.Pow(10000, float64(k)/(float64(dim)/2))
		v[k] = float32(math.Sin(pos * omega))
		v[half+k] = float32(math.Cos(pos * omega))
	}
	return v
}

// timestepFreqs are f_k = exp(−ln(10000)·k/128), k < 128, rounded as torch computes them in float32.
func timestepFreqs() []float32 {
	f := make([]float32, 128)
	for k := range f {
		e := float32(-math.Log(10000)) * float32(k) / 128
		f[k] = float32(math.Exp(float64(e)))
	}
	return f
}

// timestepProj is diffusers' Timesteps(256, flip_sin_to_cos=True, downscale_freq_shift=0) of t [B]:
// [cos(t·f_k), sin(t·f_k)] → [B,256].
func (n *Net) timestepProj(t string) string {
	arg := n.Mul(n.Unsqueeze(t, 1), n.Const(timestepFreqs(), 128))
	return n.Concat(-1, n.Op("Cos", []string{arg}), n.Op("Sin", []string{arg}))
}

// mlpEmbed is linear_1 → SiLU → linear_2 (TimestepEmbedding, PixArtAlphaTextProjection with silu).
func (n *Net) mlpEmbed(x string, in, dim int) string {
	return n.Linear(n.SiLU(n.Linear(x, in, dim, true)), dim, dim, true)
}

// feedForward is diffusers' FeedForward(dim, activation_fn="gelu-approximate"): 4× MLP, tanh GELU.
func (n *Net) feedForward(x string, dim int) string {
	return n.Linear(n.GELU(n.Linear(x, dim, 4*dim, true), true), 4*dim, dim, true)
}

// adaLNZero is AdaLayerNormZero (chunks 6) or AdaLayerNormZeroSingle (chunks 3) given act = SiLU(temb):
// the modulation chunks [shift_msa, scale_msa, gate_msa, (shift_mlp, scale_mlp, gate_mlp)] and
// LayerNorm(x)·(1+scale_msa)+shift_msa.
func (n *Net) adaLNZero(x, act string, dim, chunks int) (string, []string) {
	m := n.Chunk(n.Linear(act, dim, chunks*dim, true), 1, chunks, dim)
	return n.Modulate(n.LayerNorm(x, dim, false, 1e-6), m[0], m[1]), m
}

// adaNormContinuous is AdaLayerNormContinuous(dim, dim, elementwise_affine=False, eps=1e-6): scale,
// shift (in that order) from Linear(act), then LayerNorm(x)·(1+scale)+shift.
func (n *Net) adaNormContinuous(x, act string, dim int) string {
	m := n.Chunk(n.Linear(act, dim, 2*dim, true), 1, 2, dim)
	return n.Modulate(n.LayerNorm(x, dim, false, 1e-6), m[1], m[0])
}

// splitTokens cuts x [B, len(a)+len(b), D] along axis 1 into the lengths of a and b (axis 1 of each).
func (n *Net) splitTokens(x, a, b string) (string, string) {
	parts := n.B.OpN("Split", []string{x, n.Concat(0, n.Dim(a, 1), n.Dim(b, 1))}, 2, onnx.AttrInt("axis", 1))
	return parts[0], parts[1]
}

// jointBlock is JointTransformerBlock: adaLN-Zero for both streams, joint attention over
// cat(x, context), gated residual MLPs. The last block is context_pre_only: the context gets only
// the attention-input modulation (AdaLayerNormContinuous) and no output path.
func (n *Net) jointBlock(x, ctx, act string, dim, heads int, preOnly bool) (string, string) {
	nx, m := n.adaLNZero(x, act, dim, 6)
	var nc string
	var cm []string
	if preOnly {
		nc = n.adaNormContinuous(ctx, act, dim)
	} else {
		nc, cm = n.adaLNZero(ctx, act, dim, 6)
	}
	q := n.Concat(1, n.Linear(nx, dim, dim, true), n.Linear(nc, dim, dim, true))
	k := n.Concat(1, n.Linear(nx, dim, dim, true), n.Linear(nc, dim, dim, true))
	v := n.Concat(1, n.Linear(nx, dim, dim, true), n.Linear(nc, dim, dim, true))
	ax, ac := n.splitTokens(n.Attention(q, k, v, heads, ""), x, ctx)
	x = n.gatedResidual(x, n.Linear(ax, dim, dim, true), m, dim)
	if preOnly {
		return x, ""
	}
	return x, n.gatedResidual(ctx, n.Linear(ac, dim, dim, true), cm, dim)
}

// gatedResidual finishes a stream of a joint block: x += gate_msa·attn; x += gate_mlp·FF(LN(x)
// modulated by shift_mlp, scale_mlp).
func (n *Net) gatedResidual(x, attn string, m []string, dim int) string {
	x = n.Add(x, n.Gate(attn, m[2]))
	h := n.Modulate(n.LayerNorm(x, dim, false, 1e-6), m[3], m[4])
	return n.Add(x, n.Gate(n.feedForward(h, dim), m[5]))
}
