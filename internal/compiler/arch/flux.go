package arch

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/rflowrt/rflow/internal/onnx"
)

// FluxConfig is a FluxTransformer2DModel configuration (diffusers 0.38); the config.json field of each
// size is named beside it.
type FluxConfig struct {
	PatchSize    int   // patch_size
	InChannels   int   // in_channels: the packed latent width (64 for FLUX.1)
	OutChannels  int   // out_channels (null: in_channels)
	Layers       int   // num_layers: double-stream FluxTransformerBlocks
	SingleLayers int   // num_single_layers: FluxSingleTransformerBlocks
	HeadDim      int   // attention_head_dim
	Heads        int   // num_attention_heads
	JointDim     int   // joint_attention_dim: the T5 width
	PooledDim    int   // pooled_projection_dim: the pooled CLIP width
	Guidance     bool  // guidance_embeds: FLUX.1-dev's guidance embedder (schnell has none)
	AxesDims     []int // axes_dims_rope: rotary widths per position-id axis, summing to the head size
}

// Hidden is the transformer width, num_attention_heads·attention_head_dim.
func (c FluxConfig) Hidden() int { return c.Heads * c.HeadDim }

// fluxTimeChannels is the width of the sinusoidal timestep and guidance projections (Timesteps(256)).
const fluxTimeChannels = 256

// ParseFluxConfig reads a FluxTransformer2DModel config.json. Absent fields take the defaults of
// diffusers' FluxTransformer2DModel.__init__, as diffusers does when it loads the same file (the real
// FLUX.1 configs omit axes_dims_rope and out_channels).
func ParseFluxConfig(c Config) (FluxConfig, error) {
	r := &configReader{c: c}
	f := FluxConfig{
		PatchSize:    r.int("patch_size", 1),
		InChannels:   r.int("in_channels", 64),
		Layers:       r.int("num_layers", 19),
		SingleLayers: r.int("num_single_layers", 38),
		HeadDim:      r.int("attention_head_dim", 128),
		Heads:        r.int("num_attention_heads", 24),
		JointDim:     r.int("joint_attention_dim", 4096),
		PooledDim:    r.int("pooled_projection_dim", 768),
		Guidance:     r.bool("guidance_embeds", false),
		AxesDims:     r.ints("axes_dims_rope", []int{16, 56, 56}),
	}
	f.OutChannels = r.int("out_channels", f.InChannels)
	if r.err != nil {
		return FluxConfig{}, fmt.Errorf("FluxTransformer2DModel %w", r.err)
	}
	if err := f.validate(); err != nil {
		return FluxConfig{}, fmt.Errorf("FluxTransformer2DModel config: %w", err)
	}
	return f, nil
}

func (c FluxConfig) validate() error {
	const most = 1 << 20 // far above any real size; keeps products of sizes in range
	for _, s := range []struct {
		name string
		v    int
	}{{"patch_size", c.PatchSize}, {"in_channels", c.InChannels}, {"out_channels", c.OutChannels},
		{"attention_head_dim", c.HeadDim}, {"num_attention_heads", c.Heads}, {"joint_attention_dim", c.JointDim},
		{"pooled_projection_dim", c.PooledDim}} {
		if s.v <= 0 || s.v > most {
			return fmt.Errorf("%s is %d, want a positive size", s.name, s.v)
		}
	}
	if c.Layers < 0 || c.Layers > most || c.SingleLayers < 0 || c.SingleLayers > most {
		return fmt.Errorf("num_layers %d and num_single_layers %d must not be negative", c.Layers, c.SingleLayers)
	}
	if c.Hidden() > most {
		return fmt.Errorf("width %d·%d is too large", c.Heads, c.HeadDim)
	}
	if len(c.AxesDims) != 3 {
		return fmt.Errorf("axes_dims_rope %v: want 3 axes (FLUX position ids have 3 coordinates)", c.AxesDims)
	}
	sum := 0
	for _, d := range c.AxesDims {
		if d <= 0 || d%2 != 0 || d > most {
			return fmt.Errorf("axes_dims_rope %v: each axis must be a positive even width", c.AxesDims)
		}
		sum += d
	}
	if sum != c.HeadDim {
		return fmt.Errorf("axes_dims_rope %v sums to %d, not attention_head_dim %d", c.AxesDims, sum, c.HeadDim)
	}
	return nil
}

// FluxTransformer builds FluxTransformer2DModel from its config.json and weights (diffusers state-dict
// names), with the inputs and output Optimum's flux-transformer-2d export has, in forward order:
// hidden_states [batch_size, packed_height_width, in_channels], encoder_hidden_states [batch_size,
// sequence_length, joint_attention_dim], pooled_projections [batch_size, pooled_projection_dim],
// timestep [step] (t/1000 as FluxPipeline passes it; the model multiplies by 1000), img_ids
// [packed_height_width, 3], txt_ids [sequence_length, 3] and, with guidance_embeds, guidance
// [batch_size] (the guidance scale; also multiplied by 1000 in the model); output out_hidden_states
// [batch_size, packed_height_width, patch_size²·out_channels]. io.IDs may also be Float or Float16 for
// exports that take float ids.
func FluxTransformer(w Weights, c Config, io IO) (*onnx.Model, error) {
	fc, err := ParseFluxConfig(c)
	if err != nil {
		return nil, err
	}
	return BuildFlux(w, fc, io)
}

// BuildFlux is FluxTransformer from a parsed configuration.
func BuildFlux(w Weights, c FluxConfig, io IO) (*onnx.Model, error) {
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("FluxTransformer2DModel config: %w", err)
	}
	io, err := fluxIO(io)
	if err != nil {
		return nil, err
	}
	n := NewNet("flux_transformer", w)
	n.UseAttention(io.Attention)
	batch, hw, seq := onnx.Sym("batch_size"), onnx.Sym("packed_height_width"), onnx.Sym("sequence_length")
	x := n.FloatInput("hidden_states", io.Float, batch, hw, onnx.Fixed(int64(c.InChannels)))
	ctx := n.FloatInput("encoder_hidden_states", io.Float, batch, seq, onnx.Fixed(int64(c.JointDim)))
	pooled := n.FloatInput("pooled_projections", io.Float, batch, onnx.Fixed(int64(c.PooledDim)))
	t := n.FloatInput("timestep", io.Float, onnx.Sym("step"))
	imgIDs := n.fluxIDs("img_ids", io.IDs, hw)
	txtIDs := n.fluxIDs("txt_ids", io.IDs, seq)
	var g string
	if c.Guidance {
		g = n.FloatInput("guidance", io.Float, batch)
	}

	d := c.Hidden()
	x = n.Linear(x, "x_embedder", c.InChannels, d, true)
	temb := n.fluxTimeTextEmbed(t, g, pooled, c)
	ctx = n.Linear(ctx, "context_embedder", c.JointDim, d, true)
	cos, sin := n.fluxRoPE(n.Concat(0, txtIDs, imgIDs), c.AxesDims)
	r := fluxRotary{cos: cos, sin: sin, heads: c.Heads, headDim: c.HeadDim}

	act := n.SiLU(temb) // every adaLN applies linear(silu(temb))
	for i := range c.Layers {
		x, ctx = n.fluxDoubleBlock(fmt.Sprintf("transformer_blocks.%d.", i), x, ctx, act, d, r)
	}
	h := n.Concat(1, ctx, x)
	for i := range c.SingleLayers {
		h = n.fluxSingleBlock(fmt.Sprintf("single_transformer_blocks.%d.", i), h, act, d, r)
	}
	_, x = n.fluxSplitTokens(h, ctx, x)

	// norm_out (AdaLayerNormContinuous, no affine, eps 1e-6): scale comes before shift.
	m := n.Chunk(n.Linear(act, "norm_out.linear", d, 2*d, true), 1, 2, d)
	x = n.Modulate(n.LayerNorm(x, "", d, 1e-6), m[1], m[0])
	out := c.PatchSize * c.PatchSize * c.OutChannels
	x = n.Linear(x, "proj_out", d, out, true)
	n.FloatOutput(x, "out_hidden_states", io.Float, batch, hw, onnx.Fixed(int64(out)))
	return n.Model()
}

// fluxIO checks the I/O types; FLUX ids may also be float (some exports declare them so).
func fluxIO(io IO) (IO, error) {
	ids := io.IDs
	if ids == onnx.Float || ids == onnx.Float16 {
		io.IDs = 0
	}
	io, err := io.withDefaults()
	if err != nil {
		return io, fmt.Errorf("FluxTransformer2DModel: %w (FLUX ids may also be float32 or float16)", err)
	}
	if ids == onnx.Float || ids == onnx.Float16 {
		io.IDs = ids
	}
	return io, nil
}

// fluxIDs declares a [rows, 3] position-id input of type t and returns it as float32 (ids.float()).
func (n *Net) fluxIDs(name string, t onnx.DataType, rows onnx.Dim) string {
	x := n.B.Input(name, t, rows, onnx.Fixed(3))
	if t == onnx.Float {
		return x
	}
	return n.Cast(x, onnx.Float)
}

// fluxTimeTextEmbed is CombinedTimestep(Guidance)TextProjEmbeddings of timestep·1000 (and guidance·1000
// when g != ""): (timestep_embedder(proj(t)) + guidance_embedder(proj(g))) + text_embedder(pooled), in
// diffusers' order of additions.
func (n *Net) fluxTimeTextEmbed(t, g, pooled string, c FluxConfig) string {
	const p = "time_text_embed."
	d := c.Hidden()
	thousand := n.Scalar(1000)
	emb := n.fluxMLP(n.fluxTimestepProj(n.Mul(t, thousand)), p+"timestep_embedder", fluxTimeChannels, d)
	if g != "" {
		emb = n.Add(emb, n.fluxMLP(n.fluxTimestepProj(n.Mul(g, thousand)), p+"guidance_embedder", fluxTimeChannels, d))
	}
	return n.Add(emb, n.fluxMLP(pooled, p+"text_embedder", c.PooledDim, d))
}

// fluxMLP is linear_1 → SiLU → linear_2 (TimestepEmbedding; PixArtAlphaTextProjection with act_fn silu).
func (n *Net) fluxMLP(x, prefix string, in, out int) string {
	return n.Linear(n.SiLU(n.Linear(x, prefix+".linear_1", in, out, true)), prefix+".linear_2", out, out, true)
}

// fluxTimestepFreqs are Timesteps(256, flip_sin_to_cos=True, downscale_freq_shift=0)'s frequencies
// exp(−ln(10000)·k/128): the exponent rounded to float32 step by step as torch forms it, its exp rounded
// once from float64 (torch's own float32 exp is within an ulp of this).
func fluxTimestepFreqs() []float32 {
	half := fluxTimeChannels / 2
	f := make([]float32, half)
	c := float32(-math.Log(10000))
	for k := range f {
		e := float32(float32(c*float32(k)) / float32(half))
		f[k] = float32(math.Exp(float64(e)))
	}
	return f
}

// fluxTimestepProj is the sinusoidal projection of t [N]: [cos(t·f_k) | sin(t·f_k)] → [N, 256].
func (n *Net) fluxTimestepProj(t string) string {
	freqs := fluxTimestepFreqs()
	arg := n.Mul(n.Unsqueeze(t, 1), n.Const(freqs, int64(len(freqs))))
	return n.Concat(-1, n.Op("Cos", []string{arg}), n.Op("Sin", []string{arg}))
}

// fluxRopeFreqs lists, for each column of a head, the id axis it encodes and its float64 frequency
// θ^(−2k/d_axis) (θ = 10000), each repeated for the (real, imaginary) pair (repeat_interleave_real).
func fluxRopeFreqs(axes []int) (axis []int64, freq []float64) {
	for i, d := range axes {
		for k := 0; k < d; k += 2 {
			f := 1 / math.Pow(10000, float64(k)/float64(d))
			axis = append(axis, int64(i), int64(i))
			freq = append(freq, f, f)
		}
	}
	return axis, freq
}

// fluxRoPE is FluxPosEmbed(theta=10000, axes_dims_rope) of ids [S, 3] (float32): cos and sin [S,
// head size]. diffusers forms the angles pos·freq and their cos/sin in float64 and rounds the tables to
// float32. ORT's CPU Cos and Sin are float32 only, so the graph forms the angles in float64, reduces them
// modulo 2π, splits each into a float32 head hi and the float32 remainder lo, and takes
// cos(hi+lo) ≈ cos hi − lo·sin hi, sin(hi+lo) ≈ sin hi + lo·cos hi (|lo| ≤ 2.4e-7, so the dropped terms
// are below 3e-14): the tables come out within an ulp or two of diffusers'.
func (n *Net) fluxRoPE(ids string, axes []int) (cos, sin string) {
	axis, freq := fluxRopeFreqs(axes)
	pos := n.Op("Gather", []string{n.Cast(ids, onnx.Double), n.ConstInt64(axis, int64(len(axis)))},
		onnx.AttrInt("axis", 1))
	ang := n.Mul(pos, n.B.Initializer(fluxFloat64s([]int64{int64(len(freq))}, freq...)))
	ang = n.Op("Mod", []string{ang, n.B.Initializer(fluxFloat64s(nil, 2*math.Pi))}, onnx.AttrInt("fmod", 1))
	hi := n.Cast(ang, onnx.Float)
	lo := n.Cast(n.Sub(ang, n.Cast(hi, onnx.Double)), onnx.Float)
	c, s := n.Op("Cos", []string{hi}), n.Op("Sin", []string{hi})
	return n.Sub(c, n.Mul(lo, s)), n.Add(s, n.Mul(lo, c))
}

// fluxFloat64s is a float64 constant of the given dims (nil: a scalar).
func fluxFloat64s(dims []int64, v ...float64) onnx.Tensor {
	raw := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(raw[8*i:], math.Float64bits(x))
	}
	return onnx.Tensor{Type: onnx.Double, Dims: dims, Raw: raw}
}

// fluxRotary carries the rotary tables and head layout through the blocks.
type fluxRotary struct {
	cos, sin       string
	heads, headDim int
}

// fluxApplyRoPE is apply_rotary_emb(use_real=True, use_real_unbind_dim=-1) on x [B,h,S,d]:
// x·cos + rot(x)·sin, rot pairing (x₂ᵢ, x₂ᵢ₊₁) → (−x₂ᵢ₊₁, x₂ᵢ).
func (n *Net) fluxApplyRoPE(x string, r fluxRotary) string {
	pairs := n.Split(n.Reshape(x, 0, 0, 0, -1, 2), -1, 1, 1)
	rot := n.Reshape(n.Concat(-1, n.Op("Neg", []string{pairs[1]}), pairs[0]), 0, 0, 0, -1)
	return n.Add(n.Mul(x, r.cos), n.Mul(rot, r.sin))
}

// fluxProject is one of FluxAttention's projections unflattened to heads, [B, S, heads, head size],
// with its RMSNorm (eps 1e-6) when norm is not "".
func (n *Net) fluxProject(x, proj, norm string, dim int, r fluxRotary) string {
	y := n.Reshape(n.Linear(x, proj, dim, dim, true), 0, 0, int64(r.heads), int64(r.headDim))
	if norm == "" {
		return y
	}
	return n.RMSNorm(y, norm+".weight", r.headDim, 1e-6)
}

// fluxAttention is FluxAttnProcessor's core on [B, S, heads, head size] q, k, v: RoPE on q and k,
// scaled dot-product attention, heads merged back to [B, S, dim].
func (n *Net) fluxAttention(q, k, v string, r fluxRotary) string {
	q, k, v = n.Transpose(q, 0, 2, 1, 3), n.Transpose(k, 0, 2, 1, 3), n.Transpose(v, 0, 2, 1, 3)
	q, k = n.fluxApplyRoPE(q, r), n.fluxApplyRoPE(k, r)
	return n.AttentionHeads(q, k, v, "", r.heads, float32(1/math.Sqrt(float64(r.headDim))))
}

// fluxAdaLNZero is AdaLayerNormZero (6 chunks) or AdaLayerNormZeroSingle (3) named prefix, given
// act = SiLU(temb): the chunks [shift_msa, scale_msa, gate_msa, (shift_mlp, scale_mlp, gate_mlp)] and
// LayerNorm(x)·(1 + scale_msa) + shift_msa.
func (n *Net) fluxAdaLNZero(prefix, x, act string, dim, chunks int) (string, []string) {
	m := n.Chunk(n.Linear(act, prefix+".linear", dim, chunks*dim, true), 1, chunks, dim)
	return n.Modulate(n.LayerNorm(x, "", dim, 1e-6), m[0], m[1]), m
}

// fluxFeedForward is FeedForward(dim, activation_fn="gelu-approximate"): net.0.proj → tanh GELU → net.2.
func (n *Net) fluxFeedForward(prefix, x string, dim int) string {
	h := n.GELU(n.Linear(x, prefix+".net.0.proj", dim, 4*dim, true), true)
	return n.Linear(h, prefix+".net.2", 4*dim, dim, true)
}

// fluxSplitTokens cuts x [B, len(a)+len(b), D] along axis 1 into the lengths of a and b.
func (n *Net) fluxSplitTokens(x, a, b string) (string, string) {
	parts := n.B.OpN("Split", []string{x, n.Concat(0, n.Dim(a, 1), n.Dim(b, 1))}, 2, onnx.AttrInt("axis", 1))
	return parts[0], parts[1]
}

// fluxDoubleBlock is FluxTransformerBlock named p: adaLN-Zero for the image and text streams, joint
// attention over cat(text, image) with RMSNorm q/k and RoPE, then gated residual MLPs per stream.
func (n *Net) fluxDoubleBlock(p, x, ctx, act string, dim int, r fluxRotary) (string, string) {
	nx, m := n.fluxAdaLNZero(p+"norm1", x, act, dim, 6)
	nc, cm := n.fluxAdaLNZero(p+"norm1_context", ctx, act, dim, 6)
	a := p + "attn."
	q := n.Concat(1, n.fluxProject(nc, a+"add_q_proj", a+"norm_added_q", dim, r), n.fluxProject(nx, a+"to_q", a+"norm_q", dim, r))
	k := n.Concat(1, n.fluxProject(nc, a+"add_k_proj", a+"norm_added_k", dim, r), n.fluxProject(nx, a+"to_k", a+"norm_k", dim, r))
	v := n.Concat(1, n.fluxProject(nc, a+"add_v_proj", "", dim, r), n.fluxProject(nx, a+"to_v", "", dim, r))
	ac, ax := n.fluxSplitTokens(n.fluxAttention(q, k, v, r), ctx, x)

	x = n.Add(x, n.Gate(n.Linear(ax, a+"to_out.0", dim, dim, true), m[2]))
	ff := n.fluxFeedForward(p+"ff", n.Modulate(n.LayerNorm(x, "", dim, 1e-6), m[3], m[4]), dim)
	x = n.Add(x, n.Gate(ff, m[5]))

	ctx = n.Add(ctx, n.Gate(n.Linear(ac, a+"to_add_out", dim, dim, true), cm[2]))
	ff = n.fluxFeedForward(p+"ff_context", n.Modulate(n.LayerNorm(ctx, "", dim, 1e-6), cm[3], cm[4]), dim)
	ctx = n.Add(ctx, n.Gate(ff, cm[5]))
	return x, ctx
}

// fluxSingleBlock is FluxSingleTransformerBlock named p on h = cat(text, image): one adaLN-Zero, then
// attention (no output projection) and a tanh-GELU MLP side by side from the same normed input,
// concatenated, projected by proj_out, gated and added to h.
func (n *Net) fluxSingleBlock(p, h, act string, dim int, r fluxRotary) string {
	nh, m := n.fluxAdaLNZero(p+"norm", h, act, dim, 3)
	mlp := n.GELU(n.Linear(nh, p+"proj_mlp", dim, 4*dim, true), true)
	a := p + "attn."
	q := n.fluxProject(nh, a+"to_q", a+"norm_q", dim, r)
	k := n.fluxProject(nh, a+"to_k", a+"norm_k", dim, r)
	v := n.fluxProject(nh, a+"to_v", "", dim, r)
	out := n.Linear(n.Concat(2, n.fluxAttention(q, k, v, r), mlp), p+"proj_out", 5*dim, dim, true)
	return n.Add(h, n.Gate(out, m[2]))
}
