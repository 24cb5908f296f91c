// Package testmodels builds small ONNX models with the real SD3/FLUX component architectures and
// deterministic random weights, for tests and benchmarks that need models without downloading any.
package testmodels

import (
	"math"
	"math/rand/v2"

	"github.com/rflowrt/rflow/internal/onnx"
)

// DefaultOpset is the ai.onnx opset the builders use: 17 has LayerNormalization.
const DefaultOpset = 17

// Net wraps an onnx.Builder with a deterministic weight generator: the same seed and the same
// sequence of calls give the same model bytes.
type Net struct {
	B     *onnx.Builder
	opset int64
	rng   *rand.Rand
}

// NewNet starts a graph named name on the given ai.onnx opset (use DefaultOpset unless an operator
// needs more) whose weights are drawn from a PCG generator seeded by seed.
func NewNet(name string, opset int64, seed uint64) *Net {
	return &Net{
		B:     onnx.NewBuilder(name, opset),
		opset: opset,
		rng:   rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)),
	}
}

// Opset is the net's ai.onnx opset.
func (n *Net) Opset() int64 { return n.opset }

// Model returns the built model (a recorded building error is reported by its Marshal).
func (n *Net) Model() (*onnx.Model, error) {
	if err := n.B.Err(); err != nil {
		return nil, err
	}
	return n.B.Model(), nil
}

// Weight adds a float32 initializer of normal values with standard deviation std (name "" → a
// generated name) and returns its name.
func (n *Net) Weight(name string, shape []int64, std float64) string {
	v := make([]float32, numel(shape))
	for i := range v {
		v[i] = float32(n.rng.NormFloat64() * std)
	}
	return n.B.Initializer(onnx.Float32Tensor(name, shape, v))
}

// weightAround adds a float32 initializer mean + N(0, std²).
func (n *Net) weightAround(shape []int64, mean, std float64) string {
	v := make([]float32, numel(shape))
	for i := range v {
		v[i] = float32(mean + n.rng.NormFloat64()*std)
	}
	return n.B.Initializer(onnx.Float32Tensor("", shape, v))
}

// Const adds a float32 constant of the given shape (no shape → a scalar).
func (n *Net) Const(vals []float32, shape ...int64) string {
	return n.B.Initializer(onnx.Float32Tensor("", shape, vals))
}

// Scalar adds a float32 scalar constant.
func (n *Net) Scalar(v float32) string { return n.Const([]float32{v}) }

// ConstInt64 adds an int64 constant of the given shape (no shape → a scalar).
func (n *Net) ConstInt64(vals []int64, shape ...int64) string {
	return n.B.Initializer(onnx.Int64Tensor("", shape, vals))
}

// ints adds a 1-D int64 constant, the form shape and axes operands take.
func (n *Net) ints(v ...int64) string { return n.ConstInt64(v, int64(len(v))) }

func numel(shape []int64) int {
	p := 1
	for _, d := range shape {
		p *= int(d)
	}
	return p
}

// FloatInput declares a floating-point graph input of type io (Float or Float16) and returns a
// float32 value: a Float16 input is cast to float32 right after the input.
func (n *Net) FloatInput(name string, io onnx.DataType, dims ...onnx.Dim) string {
	x := n.B.Input(name, io, dims...)
	if io == onnx.Float {
		return x
	}
	return n.Cast(x, onnx.Float)
}

// FloatOutput declares graph output name of type io from the float32 value x, casting to io first
// when it is not Float.
func (n *Net) FloatOutput(x, name string, io onnx.DataType, dims ...onnx.Dim) {
	if io != onnx.Float {
		x = n.Cast(x, io)
	}
	n.B.Output(x, name, io, dims...)
}

// Op adds a single-output node (shorthand for n.B.Op).
func (n *Net) Op(op string, inputs []string, attrs ...onnx.Attribute) string {
	return n.B.Op(op, inputs, attrs...)
}

// Cast converts x to type to.
func (n *Net) Cast(x string, to onnx.DataType) string {
	return n.Op("Cast", []string{x}, onnx.AttrInt("to", int64(to)))
}

// Add, Sub, Mul, Div and MatMul are the binary ONNX operators with broadcasting.
func (n *Net) Add(a, b string) string    { return n.Op("Add", []string{a, b}) }
func (n *Net) Sub(a, b string) string    { return n.Op("Sub", []string{a, b}) }
func (n *Net) Mul(a, b string) string    { return n.Op("Mul", []string{a, b}) }
func (n *Net) Div(a, b string) string    { return n.Op("Div", []string{a, b}) }
func (n *Net) MatMul(a, b string) string { return n.Op("MatMul", []string{a, b}) }

// Linear is x[..., in] · W[in,out] (+ b), with W ~ N(0, 1/in) and b ~ N(0, 0.02²).
func (n *Net) Linear(x string, in, out int, bias bool) string {
	w := n.Weight("", []int64{int64(in), int64(out)}, 1/math.Sqrt(float64(in)))
	y := n.MatMul(x, w)
	if bias {
		y = n.Add(y, n.Weight("", []int64{int64(out)}, 0.02))
	}
	return y
}

// LayerNorm normalises the last axis (size dim). With affine the scale is 1 + N(0, 0.1²) and the
// bias N(0, 0.1²); without, they are 1 and 0 (PyTorch elementwise_affine=False).
func (n *Net) LayerNorm(x string, dim int, affine bool, eps float32) string {
	d := []int64{int64(dim)}
	var scale, bias string
	if affine {
		scale, bias = n.weightAround(d, 1, 0.1), n.Weight("", d, 0.1)
	} else {
		scale, bias = n.Const(fill(dim, 1), d...), n.Const(fill(dim, 0), d...)
	}
	return n.Op("LayerNormalization", []string{x, scale, bias},
		onnx.AttrInt("axis", -1), onnx.AttrFloat("epsilon", eps))
}

// RMSNorm is x · rsqrt(mean(x², -1) + eps) · w over the last axis (size dim), w = 1 + N(0, 0.1²).
func (n *Net) RMSNorm(x string, dim int, eps float32) string {
	ms := n.ReduceMean(n.Mul(x, x), -1)
	r := n.Op("Sqrt", []string{n.Add(ms, n.Scalar(eps))})
	return n.Mul(n.Div(x, r), n.weightAround([]int64{int64(dim)}, 1, 0.1))
}

// ReduceMean averages over axes, keeping them (the axes operand moved from attribute to input in
// opset 18).
func (n *Net) ReduceMean(x string, axes ...int64) string {
	if n.opset >= 18 {
		return n.Op("ReduceMean", []string{x, n.ints(axes...)}, onnx.AttrInt("keepdims", 1))
	}
	return n.Op("ReduceMean", []string{x}, onnx.AttrInts("axes", axes...), onnx.AttrInt("keepdims", 1))
}

// GELU is x·Φ(x) (erf form), or its tanh approximation (PyTorch approximate="tanh").
func (n *Net) GELU(x string, tanhApprox bool) string {
	var t string
	if tanhApprox {
		x3 := n.Mul(n.Mul(x, x), x)
		inner := n.Mul(n.Add(x, n.Mul(x3, n.Scalar(0.044715))), n.Scalar(float32(math.Sqrt(2/math.Pi))))
		t = n.Op("Tanh", []string{inner})
	} else {
		t = n.Op("Erf", []string{n.Mul(x, n.Scalar(float32(1/math.Sqrt2)))})
	}
	return n.Mul(n.Mul(x, n.Scalar(0.5)), n.Add(t, n.Scalar(1)))
}

// QuickGELU is x·sigmoid(1.702x) (CLIP's quick_gelu).
func (n *Net) QuickGELU(x string) string {
	return n.Mul(x, n.Op("Sigmoid", []string{n.Mul(x, n.Scalar(1.702))}))
}

// SiLU is x·sigmoid(x).
func (n *Net) SiLU(x string) string { return n.Mul(x, n.Op("Sigmoid", []string{x})) }

// Conv2D is a biased 2-D convolution of NCHW x, square kernel, W ~ N(0, 1/(in·k²)).
func (n *Net) Conv2D(x string, in, out, kernel, stride, pad int) string {
	k, p, s := int64(kernel), int64(pad), int64(stride)
	w := n.Weight("", []int64{int64(out), int64(in), k, k}, 1/math.Sqrt(float64(in*kernel*kernel)))
	b := n.Weight("", []int64{int64(out)}, 0.02)
	return n.Op("Conv", []string{x, w, b},
		onnx.AttrInts("kernel_shape", k, k), onnx.AttrInts("strides", s, s), onnx.AttrInts("pads", p, p, p, p))
}

// GroupNorm normalises NCHW x over groups of channels (as PyTorch exports it: InstanceNormalization
// on [N, groups, -1]), then applies a per-channel affine 1 + N(0, 0.1²), N(0, 0.1²).
func (n *Net) GroupNorm(x string, groups, channels int, eps float32) string {
	g := int64(groups)
	r := n.Reshape(x, 0, g, -1)
	r = n.Op("InstanceNormalization", []string{r, n.Const(fill(groups, 1), g), n.Const(fill(groups, 0), g)},
		onnx.AttrFloat("epsilon", eps))
	y := n.Op("Reshape", []string{r, n.Op("Shape", []string{x})})
	c := []int64{int64(channels), 1, 1}
	return n.Add(n.Mul(y, n.weightAround(c, 1, 0.1)), n.Weight("", c, 0.1))
}

// Upsample2x is nearest-neighbour ×2 upsampling of NCHW x (PyTorch interpolate nearest).
func (n *Net) Upsample2x(x string) string {
	return n.Op("Resize", []string{x, "", n.Const([]float32{1, 1, 2, 2}, 4)},
		onnx.AttrString("mode", "nearest"),
		onnx.AttrString("coordinate_transformation_mode", "asymmetric"),
		onnx.AttrString("nearest_mode", "floor"))
}

// Reshape reshapes x to shape (ONNX semantics: 0 copies the input dim, -1 is inferred).
func (n *Net) Reshape(x string, shape ...int64) string {
	return n.Op("Reshape", []string{x, n.ints(shape...)})
}

// Transpose permutes the axes of x.
func (n *Net) Transpose(x string, perm ...int64) string {
	return n.Op("Transpose", []string{x}, onnx.AttrInts("perm", perm...))
}

// Concat joins xs along axis.
func (n *Net) Concat(axis int64, xs ...string) string {
	return n.Op("Concat", xs, onnx.AttrInt("axis", axis))
}

// Split cuts x along axis into pieces of the given sizes.
func (n *Net) Split(x string, axis int64, sizes ...int64) []string {
	return n.B.OpN("Split", []string{x, n.ints(sizes...)}, len(sizes), onnx.AttrInt("axis", axis))
}

// Chunk splits x along axis into k equal pieces of size each (torch.chunk).
func (n *Net) Chunk(x string, axis int64, k, size int) []string {
	sizes := make([]int64, k)
	for i := range sizes {
		sizes[i] = int64(size)
	}
	return n.Split(x, axis, sizes...)
}

// Slice is x[starts:ends] on the given axes (steps 1).
func (n *Net) Slice(x string, starts, ends, axes []int64) string {
	return n.Op("Slice", []string{x, n.ints(starts...), n.ints(ends...), n.ints(axes...)})
}

// Unsqueeze inserts size-1 axes.
func (n *Net) Unsqueeze(x string, axes ...int64) string {
	return n.Op("Unsqueeze", []string{x, n.ints(axes...)})
}

// Squeeze removes size-1 axes.
func (n *Net) Squeeze(x string, axes ...int64) string {
	return n.Op("Squeeze", []string{x, n.ints(axes...)})
}

// Dim returns dimension axis of x as a 1-element int64 tensor.
func (n *Net) Dim(x string, axis int64) string {
	return n.Op("Shape", []string{x}, onnx.AttrInt("start", axis), onnx.AttrInt("end", axis+1))
}

// Modulate is x·(1 + scale) + shift for x [B,S,D] and shift, scale [B,D] (adaLN).
func (n *Net) Modulate(x, shift, scale string) string {
	s := n.Add(n.Unsqueeze(scale, 1), n.Scalar(1))
	return n.Add(n.Mul(x, s), n.Unsqueeze(shift, 1))
}

// Gate is gate·x for x [B,S,D] and gate [B,D].
func (n *Net) Gate(x, gate string) string { return n.Mul(x, n.Unsqueeze(gate, 1)) }

// SplitHeads turns [B,S,heads·d] into [B,heads,S,d].
func (n *Net) SplitHeads(x string, heads int) string {
	return n.Transpose(n.Reshape(x, 0, 0, int64(heads), -1), 0, 2, 1, 3)
}

// MergeHeads turns [B,heads,S,d] into [B,S,heads·d].
func (n *Net) MergeHeads(x string) string {
	return n.Reshape(n.Transpose(x, 0, 2, 1, 3), 0, 0, -1)
}

// SDPA is scaled dot-product attention on split heads: softmax(q·kᵀ·scale (+ bias))·v for q, k, v
// [B,h,S,d]; bias is "" or broadcastable to [B,h,S_q,S_k].
func (n *Net) SDPA(q, k, v, bias string, scale float32) string {
	s := n.MatMul(q, n.Transpose(k, 0, 1, 3, 2))
	if scale != 1 {
		s = n.Mul(s, n.Scalar(scale))
	}
	if bias != "" {
		s = n.Add(s, bias)
	}
	p := n.Op("Softmax", []string{s}, onnx.AttrInt("axis", -1))
	return n.MatMul(p, v)
}

// Attention is multi-head attention on q, k, v [B,S,heads·d]: softmax(q·kᵀ/√d (+ bias))·v, back to
// [B,S_q,heads·d]. bias is "" or broadcastable to [.., S_q, S_k]. The scale 1/√d is computed from
// q's shape, so the head size need not be passed.
func (n *Net) Attention(q, k, v string, heads int, bias string) string {
	qh, kh, vh := n.SplitHeads(q, heads), n.SplitHeads(k, heads), n.SplitHeads(v, heads)
	d := n.Cast(n.Dim(qh, 3), onnx.Float)
	qh = n.Div(qh, n.Op("Sqrt", []string{d}))
	return n.MergeHeads(n.SDPA(qh, kh, vh, bias, 1))
}

// fill returns k copies of v.
func fill(k int, v float32) []float32 {
	s := make([]float32, k)
	for i := range s {
		s[i] = v
	}
	return s
}
