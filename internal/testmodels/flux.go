package testmodels

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/rflowrt/rflow/internal/onnx"
)

// FluxConfig sizes a FluxTransformer2DModel (diffusers) built by FluxTransformer. Hidden is
// num_attention_heads·attention_head_dim; AxesDim (axes_dims_rope) must sum to the head size.
type FluxConfig struct {
	Hidden, Heads, DoubleLayers, SingleLayers int
	AxesDim                                   [3]int
	InChannels, JointDim, PooledDim           int
	// Guidance adds the guidance input and embedder (FLUX.1-dev); off is FLUX.1-schnell.
	Guidance bool
	// IO is the element type of the float inputs and outputs: Float or Float16.
	IO onnx.DataType
	// IDs is the element type of txt_ids and img_ids: Int64 (as Optimum exports them) or Float.
	IDs  onnx.DataType
	Seed uint64
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

func (c FluxConfig) validate() error {
	sum := c.AxesDim[0] + c.AxesDim[1] + c.AxesDim[2]
	switch {
	case c.Hidden <= 0 || c.Heads <= 0 || c.DoubleLayers < 0 || c.SingleLayers < 0 || c.InChannels <= 0 ||
		c.JointDim <= 0 || c.PooledDim <= 0:
		return fmt.Errorf("flux config %+v: sizes must be positive", c)
	case c.Hidden%c.Heads != 0:
		return fmt.Errorf("flux config: hidden %d is not a multiple of heads %d", c.Hidden, c.Heads)
	case sum != c.Hidden/c.Heads || c.AxesDim[0]%2+c.AxesDim[1]%2+c.AxesDim[2]%2 != 0:
		return fmt.Errorf("flux config: axes dims %v must be even and sum to the head size %d", c.AxesDim, c.Hidden/c.Heads)
	case c.IDs != onnx.Int64 && c.IDs != onnx.Int32 && c.IDs != onnx.Float && c.IDs != onnx.Float16:
		return fmt.Errorf("flux config: ids type %v, want int64, int32, float32 or float16", c.IDs)
	}
	return checkIO(c.IO)
}

// FluxTransformer builds FluxTransformer2DModel as Optimum exports it (flux-transformer-2d), inputs in
// forward order: hidden_states [batch_size,packed_height_width,InChannels], encoder_hidden_states
// [batch_size,sequence_length,JointDim], pooled_projections [batch_size,PooledDim], timestep [step]
// (σ; ×1000 in the graph), img_ids [packed_height_width,3], txt_ids [sequence_length,3], and with
// Guidance guidance [batch_size] (×1000 in the graph); output out_hidden_states.
func FluxTransformer(c FluxConfig) (*onnx.Model, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	n := NewNet("flux_transformer", DefaultOpset, c.Seed)
	batch, hw, seq := onnx.Sym("batch_size"), onnx.Sym("packed_height_width"), onnx.Sym("sequence_length")
	ch := onnx.Fixed(int64(c.InChannels))
	x := n.FloatInput("hidden_states", c.IO, batch, hw, ch)
	ctx := n.FloatInput("encoder_hidden_states", c.IO, batch, seq, onnx.Fixed(int64(c.JointDim)))
	pooled := n.FloatInput("pooled_projections", c.IO, batch, onnx.Fixed(int64(c.PooledDim)))
	t := n.FloatInput("timestep", c.IO, onnx.Sym("step"))
	imgIDs := n.idsInput("img_ids", c.IDs, hw)
	txtIDs := n.idsInput("txt_ids", c.IDs, seq)
	var g string
	if c.Guidance {
		g = n.FloatInput("guidance", c.IO, batch)
	}
	d := c.Hidden
	x = n.Linear(x, c.InChannels, d, true)
	act := n.SiLU(n.fluxTimeTextEmbed(t, g, pooled, c))
	ctx = n.Linear(ctx, c.JointDim, d, true)
	cos, sin := n.fluxRoPE(n.Concat(0, txtIDs, imgIDs), c.AxesDim)
	r := rope{cos: cos, sin: sin, heads: c.Heads, headDim: d / c.Heads}
	for range c.DoubleLayers {
		x, ctx = n.fluxDoubleBlock(x, ctx, act, d, r)
	}
	h := n.Concat(1, ctx, x)
	for range c.SingleLayers {
		h = n.fluxSingleBlock(h, act, d, r)
	}
	_, x = n.splitTokens(h, ctx, x)
	x = n.Linear(n.adaNormContinuous(x, act, d), d, c.InChannels, true)
	n.FloatOutput(x, "out_hidden_states", c.IO, batch, hw, ch)
	return n.Model()
}

// idsInput declares a [rows,3] position-id input of type t and returns it as float32 (ids.float()).
func (n *Net) idsInput(name string, t onnx.DataType, rows onnx.Dim) string {
	x := n.B.Input(name, t, rows, onnx.Fixed(3))
	if t == onnx.Float {
		return x
	}
	return n.Cast(x, onnx.Float)
}

// fluxTimeTextEmbed is CombinedTimestep(Guidance)TextProjEmbeddings on timestep·1000 (and
// guidance·1000 when g != ""), plus the pooled text projection.
func (n *Net) fluxTimeTextEmbed(t, g, pooled string, c FluxConfig) string {
	thousand := n.Scalar(1000)
	temb := n.mlpEmbed(n.timestepProj(n.Mul(t, thousand)), 256, c.Hidden)
	if g != "" {
		temb = n.Add(temb, n.mlpEmbed(n.timestepProj(n.Mul(g, thousand)), 256, c.Hidden))
	}
	return n.Add(temb, n.mlpEmbed(pooled, c.PooledDim, c.Hidden))
}

// ropeFreqs returns, for each of the head's columns, the id axis it encodes and its frequency
// θ^(−2k/d_axis) repeated for the (real, imaginary) pair (repeat_interleave_real=True).
func ropeFreqs(axes [3]int) (axis []int64, freq []float64) {
	for i, d := range axes {
		for k := 0; k < d; k += 2 {
			f := 1 / math.Pow(10000, float64(k)/float64(d))
			axis = append(axis, int64(i), int64(i))
			freq = append(freq, f, f)
		}
	}
	return axis, freq
}

// fluxRoPE is FluxPosEmbed(theta=10000, axes_dim) of ids [S,3] (float32): cos and sin [S, head dim].
// diffusers computes angles and cos/sin in float64; ORT's CPU Cos/Sin are float32 only, so the
// angles are formed and reduced modulo 2π in float64 and only then rounded to float32, which keeps
// cos/sin within about 1e-7 of the float64 values.
func (n *Net) fluxRoPE(ids string, axes [3]int) (cos, sin string) {
	axis, freq := ropeFreqs(axes)
	pos := n.Op("Gather", []string{n.Cast(ids, onnx.Double), n.ConstInt64(axis, int64(len(axis)))},
		onnx.AttrInt("axis", 1))
	ang := n.Mul(pos, n.B.Initializer(float64Tensor([]int64{int64(len(freq))}, freq...)))
	ang = n.Op("Mod", []string{ang, n.B.Initializer(float64Tensor(nil, 2*math.Pi))}, onnx.AttrInt("fmod", 1))
	ang = n.Cast(ang, onnx.Float)
	return n.Op("Cos", []string{ang}), n.Op("Sin", []string{ang})
}

func float64Tensor(dims []int64, v ...float64) onnx.Tensor {
	raw := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(raw[8*i:], math.Float64bits(x))
	}
	return onnx.Tensor{Type: onnx.Double, Dims: dims, Raw: raw}
}

// rope carries the rotary tables and head layout through the FLUX blocks.
type rope struct {
	cos, sin       string
	heads, headDim int
}

// applyRoPE is diffusers' apply_rotary_emb(use_real=True, use_real_unbind_dim=-1) on x [B,h,S,d]:
// x·cos + rot(x)·sin with rot pairing (x₂ᵢ, x₂ᵢ₊₁) → (−x₂ᵢ₊₁, x₂ᵢ).
func (n *Net) applyRoPE(x, cos, sin string) string {
	pairs := n.Split(n.Reshape(x, 0, 0, 0, -1, 2), -1, 1, 1)
	rot := n.Reshape(n.Concat(-1, n.Op("Neg", []string{pairs[1]}), pairs[0]), 0, 0, 0, -1)
	return n.Add(n.Mul(x, cos), n.Mul(rot, sin))
}

// qkv projects x to heads and applies the RMSNorm q/k norms (qk_norm="rms_norm", eps 1e-6).
func (n *Net) qkv(x string, dim int, r rope) (q, k, v string) {
	q = n.RMSNorm(n.SplitHeads(n.Linear(x, dim, dim, true), r.heads), r.headDim, 1e-6)
	k = n.RMSNorm(n.SplitHeads(n.Linear(x, dim, dim, true), r.heads), r.headDim, 1e-6)
	v = n.SplitHeads(n.Linear(x, dim, dim, true), r.heads)
	return q, k, v
}

// ropeAttention is FluxAttnProcessor's core: RoPE on q and k, SDPA, heads merged.
func (n *Net) ropeAttention(q, k, v string, r rope) string {
	q, k = n.applyRoPE(q, r.cos, r.sin), n.applyRoPE(k, r.cos, r.sin)
	return n.MergeHeads(n.SDPA(q, k, v, "", float32(1/math.Sqrt(float64(r.headDim)))))
}

// fluxDoubleBlock is FluxTransformerBlock: separate adaLN-Zero and projections for image and text,
// joint attention over cat(txt, img) with RMSNorm q/k and RoPE, separate gated MLPs.
func (n *Net) fluxDoubleBlock(x, ctx, act string, dim int, r rope) (string, string) {
	nx, m := n.adaLNZero(x, act, dim, 6)
	nc, cm := n.adaLNZero(ctx, act, dim, 6)
	q, k, v := n.qkv(nx, dim, r)
	cq, ck, cv := n.qkv(nc, dim, r) // add_q/k/v_proj, norm_added_q/k
	a := n.ropeAttention(n.Concat(2, cq, q), n.Concat(2, ck, k), n.Concat(2, cv, v), r)
	ac, ax := n.splitTokens(a, ctx, x)
	x = n.gatedResidual(x, n.Linear(ax, dim, dim, true), m, dim)
	ctx = n.gatedResidual(ctx, n.Linear(ac, dim, dim, true), cm, dim)
	return x, ctx
}

// fluxSingleBlock is FluxSingleTransformerBlock: one adaLN-Zero (3 chunks), attention and a tanh-GELU
// MLP in parallel from the same normed input, concatenated, projected and gated.
func (n *Net) fluxSingleBlock(h, act string, dim int, r rope) string {
	nh, m := n.adaLNZero(h, act, dim, 3)
	mlp := n.GELU(n.Linear(nh, dim, 4*dim, true), true)
	q, k, v := n.qkv(nh, dim, r)
	a := n.ropeAttention(q, k, v, r)
	out := n.Linear(n.Concat(2, a, mlp), 5*dim, dim, true)
	return n.Add(h, n.Gate(out, m[2]))
}
