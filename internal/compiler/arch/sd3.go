package arch

import (
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/rflowrt/rflow/internal/onnx"
)

// SD3Config is diffusers' SD3Transformer2DModel configuration (config.json field names in the comments).
// It covers SD3-medium, SD3.5-large (qk RMSNorm) and SD3.5-medium (MMDiT-X: dual-attention blocks).
type SD3Config struct {
	Layers          int // num_layers
	HeadDim         int // attention_head_dim
	Heads           int // num_attention_heads
	JointDim        int // joint_attention_dim: the text encoders' context width
	CaptionDim      int // caption_projection_dim: must equal Heads·HeadDim
	PooledDim       int // pooled_projection_dim
	InChannels      int // in_channels
	OutChannels     int // out_channels (null: in_channels)
	PatchSize       int // patch_size
	PosEmbedMaxSize int // pos_embed_max_size: the positional table is PosEmbedMaxSize² patches
	SampleSize      int // sample_size: the latent size the positional grid is scaled for
	QKNorm          string
	// DualAttentionLayers are the blocks with a second, image-only self-attention (attn2); indices
	// outside [0, Layers) are ignored, as diffusers ignores them.
	DualAttentionLayers []int
	// NoSkipLayers leaves out the skip_layers input, for graphs that mimic Optimum's export (which has
	// none); compiled checkpoints keep it so that skip-layer guidance works.
	NoSkipLayers bool
}

// Hidden is the transformer width, num_attention_heads·attention_head_dim.
func (c SD3Config) Hidden() int { return c.Heads * c.HeadDim }

// ParseSD3Config reads an SD3Transformer2DModel config.json.
func ParseSD3Config(cfg Config) (SD3Config, error) {
	r := configReader{c: cfg}
	c := SD3Config{
		Layers:          r.required("num_layers"),
		HeadDim:         r.required("attention_head_dim"),
		Heads:           r.required("num_attention_heads"),
		JointDim:        r.required("joint_attention_dim"),
		CaptionDim:      r.required("caption_projection_dim"),
		PooledDim:       r.required("pooled_projection_dim"),
		InChannels:      r.required("in_channels"),
		PatchSize:       r.required("patch_size"),
		PosEmbedMaxSize: r.required("pos_embed_max_size"),
		SampleSize:      r.required("sample_size"),
		QKNorm:          r.str("qk_norm", ""),
	}
	c.OutChannels = r.int("out_channels", c.InChannels)
	c.DualAttentionLayers = r.ints("dual_attention_layers", nil)
	if r.err != nil {
		return SD3Config{}, fmt.Errorf("sd3 transformer: %w", r.err)
	}
	return c, c.validate()
}

func (c SD3Config) validate() error {
	switch {
	case c.Layers <= 0 || c.HeadDim <= 0 || c.Heads <= 0 || c.JointDim <= 0 || c.PooledDim <= 0 ||
		c.InChannels <= 0 || c.OutChannels <= 0 || c.PatchSize <= 0 || c.PosEmbedMaxSize <= 0 || c.SampleSize <= 0:
		return fmt.Errorf("sd3 transformer: config %+v: every size must be positive", c)
	case c.CaptionDim != c.Hidden():
		return fmt.Errorf("sd3 transformer: caption_projection_dim %d differs from num_attention_heads·attention_head_dim = %d",
			c.CaptionDim, c.Hidden())
	case c.QKNorm != "" && c.QKNorm != "rms_norm":
		return fmt.Errorf("sd3 transformer: qk_norm %q is not supported (null or \"rms_norm\")", c.QKNorm)
	case c.Layers > 1<<12 || c.Hidden() > 1<<16 || c.PosEmbedMaxSize > 1<<12 || c.PatchSize > 64:
		return fmt.Errorf("sd3 transformer: config %+v is implausibly large", c)
	}
	return nil
}

// SD3Transformer builds SD3Transformer2DModel from its config.json and weights (diffusers state-dict
// names), with Optimum's sd3 I/O: hidden_states [batch_size, in_channels, height, width],
// encoder_hidden_states [batch_size, sequence_length, joint_attention_dim], pooled_projections
// [batch_size, pooled_projection_dim], timestep [step] (σ·1000) → out_hidden_states
// [batch_size, out_channels, height, width]; plus skip_layers (int64 [num_skip]): the blocks whose
// indices it holds are skipped, as diffusers' forward(skip_layers=…) does (-1 or any index no block has
// skips nothing).
func SD3Transformer(w Weights, cfg Config, io IO) (*onnx.Model, error) {
	c, err := ParseSD3Config(cfg)
	if err != nil {
		return nil, err
	}
	return BuildSD3(w, c, io)
}

// BuildSD3 builds SD3Transformer2DModel from a parsed configuration (see SD3Transformer).
func BuildSD3(w Weights, c SD3Config, io IO) (*onnx.Model, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	io, err := io.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("sd3 transformer: %w", err)
	}
	n := NewNet("sd3_transformer", w)
	n.UseAttention(io.Attention)
	s := sd3Net{Net: n, c: c, d: c.Hidden()}
	batch, h, wd := onnx.Sym("batch_size"), onnx.Sym("height"), onnx.Sym("width")
	x := n.FloatInput("hidden_states", io.Float, batch, onnx.Fixed(int64(c.InChannels)), h, wd)
	ctx := n.FloatInput("encoder_hidden_states", io.Float, batch, onnx.Sym("sequence_length"),
		onnx.Fixed(int64(c.JointDim)))
	pooled := n.FloatInput("pooled_projections", io.Float, batch, onnx.Fixed(int64(c.PooledDim)))
	t := n.FloatInput("timestep", io.Float, onnx.Sym("step"))
	var skip string
	if !c.NoSkipLayers {
		skip = n.B.Input("skip_layers", onnx.Int64, onnx.Sym("num_skip"))
	}

	grid := n.Conv2D(x, "pos_embed.proj", c.InChannels, s.d, c.PatchSize, c.PatchSize, 0) // [B,D,h,w]
	tokens := n.Add(n.Transpose(n.Reshape(grid, 0, int64(s.d), -1), 0, 2, 1), s.posEmbed(grid))
	temb := n.Add(s.mlp(s.timestepProj(t), "time_text_embed.timestep_embedder", 256),
		s.mlp(pooled, "time_text_embed.text_embedder", c.PooledDim))
	act := n.SiLU(temb) // every adaLN's input is SiLU(temb)
	ctx = n.Linear(ctx, "context_embedder", c.JointDim, c.CaptionDim, true)
	for i := range c.Layers {
		nx, nc := s.block(i, tokens, ctx, act)
		if skip != "" {
			skipped := s.isSkipped(skip, i)
			nx = n.Op("Where", []string{skipped, tokens, nx})
			if nc != "" {
				nc = n.Op("Where", []string{skipped, ctx, nc})
			}
		}
		tokens, ctx = nx, nc
	}
	tokens = s.adaNormContinuous(tokens, act, "norm_out")
	p := c.PatchSize
	tokens = n.Linear(tokens, "proj_out", s.d, p*p*c.OutChannels, true)
	n.FloatOutput(s.unpatchify(tokens, grid), "out_hidden_states", io.Float,
		batch, onnx.Fixed(int64(c.OutChannels)), h, wd)
	return n.Model()
}

// sd3Net is a Net building one SD3 transformer.
type sd3Net struct {
	*Net
	c SD3Config
	d int // hidden width
}

// isSkipped is a boolean scalar: whether skip_layers holds block i.
func (s sd3Net) isSkipped(skip string, i int) string {
	hits := s.Cast(s.Op("Equal", []string{skip, s.ConstInt64([]int64{int64(i)})}), onnx.Int64)
	// ReduceSum of an empty list is 0, so an empty skip_layers skips nothing.
	count := s.Op("ReduceSum", []string{hits}, onnx.AttrInt("keepdims", 0))
	return s.Op("Greater", []string{count, s.ConstInt64([]int64{0})})
}

// posEmbed is PatchEmbed.cropped_pos_embed for a [B,D,h,w] patch grid: rows top…top+h and columns
// left…left+w of the M×M table (M = pos_embed_max_size), top = (M−h)/2, left = (M−w)/2, as
// [1,h·w,D]. A grid larger than the table fails at the reshape (diffusers raises there too).
func (s sd3Net) posEmbed(grid string) string {
	d, m := int64(s.d), int64(s.c.PosEmbedMaxSize)
	table := s.Reshape(s.posTable(), m, m, d)
	hp, wp := s.Dim(grid, 2), s.Dim(grid, 3)
	two, mx := s.ConstInt64([]int64{2}, 1), s.ConstInt64([]int64{m}, 1)
	top, left := s.Div(s.Sub(mx, hp), two), s.Div(s.Sub(mx, wp), two)
	pos := s.Op("Slice", []string{table, s.Concat(0, top, left), s.Concat(0, s.Add(top, hp), s.Add(left, wp)),
		s.Ints(0, 1)})
	pos = s.Op("Reshape", []string{pos, s.Concat(0, hp, wp, s.Ints(d))}) // fails unless the crop is h×w
	return s.Reshape(pos, 1, -1, d)
}

// posTable is the [1, M², D] positional table pos_embed.pos_embed: the checkpoint's (diffusers loads
// that persistent buffer, in whatever precision it was saved), or, when the weights do not have it
// (or can make any tensor, like random test weights), get_2d_sincos_pos_embed(D, M, base_size =
// sample_size/patch_size) computed as diffusers does.
func (s sd3Net) posTable() string {
	const name = "pos_embed.pos_embed"
	m, d := s.c.PosEmbedMaxSize, s.d
	if shape, ok := s.w.Shape(name); ok && shape != nil {
		return s.Param(name, 1, m*m, d)
	}
	base := s.c.SampleSize / s.c.PatchSize
	if d%4 != 0 || base == 0 {
		s.Fail("sd3 transformer: tensor %q is missing and cannot be computed: hidden %d must be a multiple of 4 "+
			"and sample_size %d at least patch_size %d", name, d, s.c.SampleSize, s.c.PatchSize)
		return ""
	}
	return s.B.Initializer(onnx.Tensor{Name: name, Type: onnx.Float, Dims: []int64{1, int64(m * m), int64(d)},
		Source: sincosTable{dim: d, size: m, base: base}})
}

// sincosTable streams diffusers' get_2d_sincos_pos_embed(dim, size, base_size=base) as float32: grid
// positions arange(size)/(size/base) in float32; the first dim/2 features encode the column, the rest
// the row, each half [sin, cos] with ω_k = 1/10000^(k/(dim/4)), in float64 like torch.
type sincosTable struct{ dim, size, base int }

func (t sincosTable) WriteRaw(w io.Writer) error {
	scale := float32(float64(t.size) / float64(t.base))
	row := make([]float32, 0, t.size*t.dim)
	for i := range t.size {
		row = row[:0]
		for j := range t.size {
			row = append(row, sincos1D(t.dim/2, float64(float32(j)/scale))...)
			row = append(row, sincos1D(t.dim/2, float64(float32(i)/scale))...)
		}
		if err := writeFloats(w, row, onnx.Float); err != nil {
			return err
		}
	}
	return nil
}

// sincos1D is get_1d_sincos_pos_embed_from_grid(dim, pos): [sin(pos·ω_k), cos(pos·ω_k)], k < dim/2.
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

// sd3TimestepFreqs are exp(−ln(10000)·k/128), k < 128, with the exponent rounded as torch computes it
// in float32 (get_timestep_embedding with half_dim 128, downscale_freq_shift 0).
func sd3TimestepFreqs() []float32 {
	f := make([]float32, 128)
	for k := range f {
		e := float32(-math.Log(10000)) * float32(k) / 128
		f[k] = float32(math.Exp(float64(e)))
	}
	return f
}

// timestepProj is Timesteps(256, flip_sin_to_cos=True, downscale_freq_shift=0) of t [B]:
// [cos(t·f_k), sin(t·f_k)] → [B,256].
func (s sd3Net) timestepProj(t string) string {
	arg := s.Mul(s.Unsqueeze(t, 1), s.Const(sd3TimestepFreqs(), 128))
	return s.Concat(-1, s.Op("Cos", []string{arg}), s.Op("Sin", []string{arg}))
}

// mlp is linear_1 → SiLU → linear_2 (TimestepEmbedding; PixArtAlphaTextProjection with act_fn silu).
func (s sd3Net) mlp(x, prefix string, in int) string {
	h := s.SiLU(s.Linear(x, prefix+".linear_1", in, s.d, true))
	return s.Linear(h, prefix+".linear_2", s.d, s.d, true)
}

// layerNorm is the modulated norms' LayerNorm(dim, elementwise_affine=False, eps=1e-6).
func (s sd3Net) layerNorm(x string) string { return s.LayerNorm(x, "", s.d, 1e-6) }

// adaLNZero is AdaLayerNormZero (chunks 6) or SD35AdaLayerNormZeroX (chunks 9) named prefix, given
// act = SiLU(temb): the modulation chunks (shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp,
// gate_mlp[, shift_msa2, scale_msa2, gate_msa2]), LN(x)·(1+scale_msa)+shift_msa and, with 9 chunks,
// LN(x)·(1+scale_msa2)+shift_msa2.
func (s sd3Net) adaLNZero(x, act, prefix string, chunks int) (norm, norm2 string, m []string) {
	m = s.Chunk(s.Linear(act, prefix+".linear", s.d, chunks*s.d, true), 1, chunks, s.d)
	ln := s.layerNorm(x)
	norm = s.Modulate(ln, m[0], m[1])
	if chunks == 9 {
		norm2 = s.Modulate(ln, m[6], m[7])
	}
	return norm, norm2, m
}

// adaNormContinuous is AdaLayerNormContinuous(D, D, elementwise_affine=False, eps=1e-6) named prefix:
// scale, shift (in that order) from Linear(act), then LN(x)·(1+scale)+shift.
func (s sd3Net) adaNormContinuous(x, act, prefix string) string {
	m := s.Chunk(s.Linear(act, prefix+".linear", s.d, 2*s.d, true), 1, 2, s.d)
	return s.Modulate(s.layerNorm(x), m[1], m[0])
}

// heads projects x with Linear prefix and splits it into heads [B,h,S,d], RMS-normalising each head
// with norm (a state-dict prefix) when the model has qk_norm.
func (s sd3Net) heads(x, prefix, norm string) string {
	y := s.SplitHeads(s.Linear(x, prefix, s.d, s.d, true), s.c.Heads)
	if norm != "" && s.c.QKNorm == "rms_norm" {
		y = s.RMSNorm(y, norm+".weight", s.c.HeadDim, 1e-6)
	}
	return y
}

// jointAttention is Attention with JointAttnProcessor2_0 named prefix on the image stream x and the
// context c: both streams' q, k, v (q and k RMS-normalised with qk_norm), one softmax attention over
// the concatenated tokens (image first), then to_out.0 on the image part and, unless preOnly,
// to_add_out on the context part.
func (s sd3Net) jointAttention(x, c, prefix string, preOnly bool) (string, string) {
	q := s.Concat(2, s.heads(x, prefix+".to_q", prefix+".norm_q"), s.heads(c, prefix+".add_q_proj", prefix+".norm_added_q"))
	k := s.Concat(2, s.heads(x, prefix+".to_k", prefix+".norm_k"), s.heads(c, prefix+".add_k_proj", prefix+".norm_added_k"))
	v := s.Concat(2, s.heads(x, prefix+".to_v", ""), s.heads(c, prefix+".add_v_proj", ""))
	o := s.AttentionHeads(q, k, v, "", s.c.Heads, float32(1/math.Sqrt(float64(s.c.HeadDim))))
	parts := s.B.OpN("Split", []string{o, s.Concat(0, s.Dim(x, 1), s.Dim(c, 1))}, 2, onnx.AttrInt("axis", 1))
	ox := s.Linear(parts[0], prefix+".to_out.0", s.d, s.d, true)
	if preOnly {
		return ox, ""
	}
	return ox, s.Linear(parts[1], prefix+".to_add_out", s.d, s.d, true)
}

// selfAttention is Attention with JointAttnProcessor2_0 and no context (the dual blocks' attn2).
func (s sd3Net) selfAttention(x, prefix string) string {
	q, k, v := s.heads(x, prefix+".to_q", prefix+".norm_q"), s.heads(x, prefix+".to_k", prefix+".norm_k"),
		s.heads(x, prefix+".to_v", "")
	o := s.AttentionHeads(q, k, v, "", s.c.Heads, float32(1/math.Sqrt(float64(s.c.HeadDim))))
	return s.Linear(o, prefix+".to_out.0", s.d, s.d, true)
}

// feedForward is FeedForward(D, D, activation_fn="gelu-approximate") named prefix: Linear(D, 4D),
// tanh GELU, Linear(4D, D).
func (s sd3Net) feedForward(x, prefix string) string {
	h := s.GELU(s.Linear(x, prefix+".net.0.proj", s.d, 4*s.d, true), true)
	return s.Linear(h, prefix+".net.2", 4*s.d, s.d, true)
}

// block is JointTransformerBlock i on the image tokens x and the context c. The last block is
// context_pre_only: its context gets only AdaLayerNormContinuous before the attention, and it returns
// no context. A dual-attention block (MMDiT-X) adds a second, image-only self-attention on the
// norm1's second modulation of x.
func (s sd3Net) block(i int, x, c, act string) (string, string) {
	p := fmt.Sprintf("transformer_blocks.%d", i)
	preOnly := i == s.c.Layers-1
	dual := slices.Contains(s.c.DualAttentionLayers, i)
	chunks := 6
	if dual {
		chunks = 9
	}
	nx, nx2, m := s.adaLNZero(x, act, p+".norm1", chunks)
	var nc string
	var cm []string
	if preOnly {
		nc = s.adaNormContinuous(c, act, p+".norm1_context")
	} else {
		nc, _, cm = s.adaLNZero(c, act, p+".norm1_context", 6)
	}
	ax, ac := s.jointAttention(nx, nc, p+".attn", preOnly)
	x = s.Add(x, s.Gate(ax, m[2]))
	if dual {
		x = s.Add(x, s.Gate(s.selfAttention(nx2, p+".attn2"), m[8]))
	}
	x = s.Add(x, s.Gate(s.feedForward(s.Modulate(s.layerNorm(x), m[3], m[4]), p+".ff"), m[5]))
	if preOnly {
		return x, ""
	}
	c = s.Add(c, s.Gate(ac, cm[2]))
	c = s.Add(c, s.Gate(s.feedForward(s.Modulate(s.layerNorm(c), cm[3], cm[4]), p+".ff_context"), cm[5]))
	return x, c
}

// unpatchify turns [B,h·w,p·p·C] tokens back into an image [B,C,h·p,w·p] for the [B,D,h,w] patch
// grid: reshape (B,h,w,p,p,C), einsum nhwpqc→nchpwq, reshape.
func (s sd3Net) unpatchify(tokens, grid string) string {
	p, ch := int64(s.c.PatchSize), int64(s.c.OutChannels)
	b, hp, wp := s.Dim(grid, 0), s.Dim(grid, 2), s.Dim(grid, 3)
	y := s.Op("Reshape", []string{tokens, s.Concat(0, b, hp, wp, s.Ints(p, p, ch))})
	y = s.Transpose(y, 0, 5, 1, 3, 2, 4)
	pp := s.Ints(p)
	return s.Op("Reshape", []string{y, s.Concat(0, b, s.Ints(ch), s.Mul(hp, pp), s.Mul(wp, pp))})
}
