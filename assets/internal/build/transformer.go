package build

import (
	"github.com/rflowrt/rflow/assets/internal/demo"
	"github.com/rflowrt/rflow/internal/onnx"
)

// Transformer sizes of the demo family.
const (
	sd3JointDim    = 64 // CLIP-L hidden 32 ‖ CLIP-G hidden 32; also the (absent) T5 width
	sd3PooledDim   = 64 // CLIP-L text_embeds 32 ‖ CLIP-G text_embeds 32
	fluxJointDim   = 64 // T5 d_model
	fluxPooledDim  = 32 // CLIP pooler_output
	clipHidden     = 32
	clipLayers     = 2
	t5Dim          = fluxJointDim
	fluxPackedChan = demo.LatentChannels * 4
)

// componentTables are the fixed one-hot structure of the 336 components.
type componentTables struct {
	idxS, idxF, idxB []int64   // component → shape, fg, bg index
	ohS, ohF, ohB    []float32 // [336, 6], [336, 8], [336, 8] one-hot
}

func newComponentTables() componentTables {
	cs := demo.Components()
	K, nS, nC := len(cs), len(demo.Shapes), len(demo.Colors)
	t := componentTables{ohS: make([]float32, K*nS), ohF: make([]float32, K*nC), ohB: make([]float32, K*nC)}
	for k, c := range cs {
		t.idxS = append(t.idxS, int64(c.Shape))
		t.idxF = append(t.idxF, int64(c.FG))
		t.idxB = append(t.idxB, int64(c.BG))
		t.ohS[k*nS+c.Shape] = 1
		t.ohF[k*nC+c.FG] = 1
		t.ohB[k*nC+c.BG] = 1
	}
	return t
}

// velocity adds the exact mixture velocity v(x, σ) on NCHW latents x [B,16,h,w] with σ [B] and the
// prompt features in pooled[:, 0:22]; it returns v [B,16,h,w]. With one std s for all components,
// c = α²s² + σ², logit_k = log w_k − ‖x − α μ_k‖²/(2c), r = softmax(logit), m = Σ r_k μ_k and
// v = ((σ − α s²)/c)·(x − α m) − m (scheduler.AnalyticFlow on the Linear path). ‖x − α μ_k‖² is the
// sum of three factor distances (field vs 6 shape maps, fg slots vs 8 colours, bg slots vs 8 colours;
// channels 7–15 are common to all components and cancel), each computed in float64 from the
// differences, so the logits keep their precision where components compete.
func velocity(g graph, x, sigma, pooled string) string {
	t := newComponentTables()
	K := int64(len(t.idxS))
	nS, nC := int64(len(demo.Shapes)), int64(len(demo.Colors))
	alpha := g.op("Sub", g.scalar(1), sigma)
	a4 := g.reshape(alpha, -1, 1, 1, 1)
	F, dS, dF, dB := factorDistances(g, x, a4)
	gather := func(v string, idx []int64) string {
		return g.opA("Gather", []string{v, g.Constant(onnx.Int64Tensor("", []int64{K}, idx))}, onnx.AttrInt("axis", 1))
	}
	dist := g.op("Add", g.op("Add", gather(dS, t.idxS), gather(dF, t.idxF)), gather(dB, t.idxB)) // [B,K]
	pres := g.op("Min", g.slice(pooled, 1, 0, demo.PooledFeatures), g.scalar(1))
	prior := g.op("Add", g.op("Add", gather(g.slice(pres, 1, 0, nS), t.idxS),
		gather(g.slice(pres, 1, nS, nS+nC), t.idxF)), gather(g.slice(pres, 1, nS+nC, nS+2*nC), t.idxB))
	prior = g.op("Mul", prior, g.scalar(demo.Beta))

	// c = α²s² + σ² and the velocity coefficient A = (σ − α s²)/c, per batch row.
	s2 := g.scalar(float32(demo.Std * demo.Std))
	c := g.op("Add", g.op("Mul", g.square(alpha), s2), g.square(sigma))
	inv2c := g.reshape(g.op("Div", toDouble(g, g.scalar(0.5)), toDouble(g, c)), -1, 1)
	logits := g.op("Sub", toDouble(g, prior), g.op("Mul", dist, inv2c))
	// Softmax written out: ORT's double Softmax kernel takes another path for one row than for several,
	// and a batched run must give each image the bits of its single run.
	e := g.op("Exp", g.op("Sub", logits, g.opA("ReduceMax", []string{logits}, onnx.AttrInts("axes", 1), onnx.AttrInt("keepdims", 1))))
	r := g.opA("Cast", []string{g.op("Div", e, g.reduceSum(e, true, 1))}, onnx.AttrInt("to", int64(onnx.Float)))

	// Posterior mean from the marginals, then v per channel group.
	rS := g.op("MatMul", r, g.f32([]int64{K, nS}, t.ohS...))
	rF := g.op("MatMul", r, g.f32([]int64{K, nC}, t.ohF...))
	rB := g.op("MatMul", r, g.f32([]int64{K, nC}, t.ohB...))
	x0, xf, xb := g.slice(x, 1, 0, 1), g.slice(x, 1, 1, 4), g.slice(x, 1, 4, 7)
	// Σ_s r_s·F_s as a broadcast product and a sum over s, not a MatMul: ORT's MatMul with a computed right
	// operand is not row-count invariant (see softmax above).
	mS := g.op("Reshape", g.reduceSum(g.op("Mul", g.reshape(rS, -1, nS, 1), g.reshape(F, 1, nS, -1)), false, 1), g.op("Shape", x0))
	colTab := g.f32([]int64{nC, 3}, colorValues()...)
	mF := g.reshape(g.op("MatMul", rF, colTab), -1, 3, 1, 1)
	mB := g.reshape(g.op("MatMul", rB, colTab), -1, 3, 1, 1)
	A := g.reshape(g.op("Div", g.op("Sub", sigma, g.op("Mul", alpha, s2)), c), -1, 1, 1, 1)
	group := func(xg, m string) string {
		return g.op("Sub", g.op("Mul", A, g.op("Sub", xg, g.op("Mul", a4, m))), m)
	}
	rest := g.op("Mul", A, g.slice(x, 1, 7, demo.LatentChannels))
	return g.concat(1, group(x0, mS), group(xf, mF), group(xb, mB), rest)
}

// colorValues is the palette in [−1, 1], [8·3].
func colorValues() []float32 {
	var out []float32
	for c := range demo.Colors {
		v := demo.ColorValue(c)
		out = append(out, v[:]...)
	}
	return out
}

// factorDistances returns the shape maps F [1,6,h,w] at x's size and, in float64, the squared
// distances of x's field channel to α·F_s ([B,6]) and of its fg and bg colour slots to α·colour
// ([B,8] each), computed from the differences.
func factorDistances(g graph, x, a4 string) (F, dS, dF, dB string) {
	nS, nC := int64(len(demo.Shapes)), int64(len(demo.Colors))
	fields := make([]float32, 0, int(nS)*demo.BaseLatent*demo.BaseLatent)
	for s := range demo.Shapes {
		fields = append(fields, demo.BaseField(s)...)
	}
	base := g.f32([]int64{1, nS, demo.BaseLatent, demo.BaseLatent}, fields...)
	F = shapeMaps(g, base, nS, g.shapeDims(x, 2, 4))
	a4d := toDouble(g, a4)
	x0 := toDouble(g, g.slice(x, 1, 0, 1))
	dS = g.reduceSum(g.square(g.op("Sub", x0, g.op("Mul", a4d, toDouble(g, F)))), false, 2, 3)
	col := toDouble(g, g.f32([]int64{1, nC, 3, 1}, colorValues()...))
	colorDist := func(from int64) string {
		xr := toDouble(g, g.reshape(g.slice(x, 1, from, from+3), 0, 1, 3, -1)) // [B,1,3,hw]
		return g.reduceSum(g.square(g.op("Sub", xr, g.op("Mul", a4d, col))), false, 2, 3)
	}
	return F, dS, colorDist(1), colorDist(4)
}

// shapeMaps resizes the base fields [1,n,32,32] to S×S, S = min(h, w) (hw = [h, w], int64), and
// edge-pads them to h×w around the centre: demo.FieldAt in graph form.
func shapeMaps(g graph, base string, n int64, hw string) string {
	side := g.opA("ReduceMin", []string{hw}, onnx.AttrInt("keepdims", 1))
	sq := g.resize(base, "", g.concat(0, g.ints(1, n), side, side))
	extra := g.op("Sub", hw, side)
	before := g.op("Div", extra, g.ints(2))
	pads := g.concat(0, g.ints(0, 0), before, g.ints(0, 0), g.op("Sub", extra, before))
	return g.opA("Pad", []string{sq, pads}, onnx.AttrString("mode", "edge"))
}

func toDouble(g graph, x string) string {
	return g.opA("Cast", []string{x}, onnx.AttrInt("to", int64(onnx.Double)))
}

// SD3Transformer is the demo transformer with the Optimum sd3-transformer-2d signature: σ =
// timestep/1000, the prompt features in pooled_projections[:, 0:22] (CLIP-L's text_embeds);
// encoder_hidden_states is accepted and unused. Any latent size works (the diffusers pipeline asks
// for multiples of 2).
func SD3Transformer() ([]byte, error) {
	g := newGraph("demo_sd3_transformer")
	B := onnx.Sym("batch_size")
	x := g.Input("hidden_states", onnx.Float, B, onnx.Fixed(demo.LatentChannels), onnx.Sym("height"), onnx.Sym("width"))
	g.Input("encoder_hidden_states", onnx.Float, B, onnx.Sym("sequence_length"), onnx.Fixed(sd3JointDim))
	pooled := g.Input("pooled_projections", onnx.Float, B, onnx.Fixed(sd3PooledDim))
	ts := g.Input("timestep", onnx.Float, onnx.Sym("step"))
	sigma := g.op("Div", ts, g.scalar(1000))
	v := velocity(g, x, sigma, pooled)
	g.Output(v, "out_hidden_states", onnx.Float, B, onnx.Fixed(demo.LatentChannels), onnx.Sym("height"), onnx.Sym("width"))
	return g.model()
}

// FluxTransformer is the demo transformer with the Optimum flux-transformer-2d signature (guidance
// embeds on): packed latents in and out, timestep = σ (the pipeline's t/1000), the latent size
// (h/2, w/2) = max(img_ids[:, 1:3]) + 1. guidance, encoder_hidden_states and txt_ids are accepted and
// unused: the mixture is exact, so there is nothing for distilled guidance to sharpen.
func FluxTransformer() ([]byte, error) {
	g := newGraph("demo_flux_transformer")
	B, L, S := onnx.Sym("batch_size"), onnx.Sym("packed_height_width"), onnx.Sym("sequence_length")
	x := g.Input("hidden_states", onnx.Float, B, L, onnx.Fixed(fluxPackedChan))
	g.Input("encoder_hidden_states", onnx.Float, B, S, onnx.Fixed(fluxJointDim))
	pooled := g.Input("pooled_projections", onnx.Float, B, onnx.Fixed(fluxPooledDim))
	sigma := g.Input("timestep", onnx.Float, B)
	g.Input("img_ids", onnx.Int64, L, onnx.Fixed(3))
	g.Input("txt_ids", onnx.Int64, S, onnx.Fixed(3))
	g.Input("guidance", onnx.Float, B)
	// (h/2, w/2) = max(img_ids[:, 1:3]) + 1.
	half := g.op("Add", g.opA("ReduceMax", []string{g.slice("img_ids", 1, 1, 3)}, onnx.AttrInts("axes", 0), onnx.AttrInt("keepdims", 0)), g.ints(1))
	hw := g.op("Mul", half, g.ints(2))
	batch := g.shapeDims(x, 0, 1)
	// unpack: [B,(h/2)(w/2),64] → [B,h/2,w/2,16,2,2] → [B,16,h/2,2,w/2,2] → [B,16,h,w]
	u := g.op("Reshape", x, g.concat(0, batch, half, g.ints(demo.LatentChannels, 2, 2)))
	u = g.opA("Transpose", []string{u}, onnx.AttrInts("perm", 0, 3, 1, 4, 2, 5))
	u = g.op("Reshape", u, g.concat(0, batch, g.ints(demo.LatentChannels), hw))
	v := velocity(g, u, sigma, pooled)
	// pack: [B,16,h,w] → [B,16,h/2,2,w/2,2] → [B,h/2,w/2,16,2,2] → [B,(h/2)(w/2),64]
	h2, w2 := g.slice(half, 0, 0, 1), g.slice(half, 0, 1, 2)
	p := g.op("Reshape", v, g.concat(0, batch, g.ints(demo.LatentChannels), h2, g.ints(2), w2, g.ints(2)))
	p = g.opA("Transpose", []string{p}, onnx.AttrInts("perm", 0, 2, 4, 1, 3, 5))
	p = g.op("Reshape", p, g.concat(0, batch, g.ints(-1, fluxPackedChan)))
	g.Output(p, "out_hidden_states", onnx.Float, B, L, onnx.Fixed(fluxPackedChan))
	return g.model()
}
