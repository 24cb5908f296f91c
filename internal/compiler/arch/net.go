package arch

import (
	"fmt"
	"math"
	"slices"

	"github.com/rflowrt/rflow/internal/onnx"
)

// DefaultOpset is the ai.onnx opset of the built graphs: 17 has LayerNormalization.
const DefaultOpset = 17

// Net is a graph under construction whose parameters come from Weights. Like onnx.Builder it never
// panics: the first problem (a missing tensor, a shape that disagrees with the configuration) is kept
// and returned by Model.
type Net struct {
	B      *onnx.Builder
	w      Weights
	opset  int64
	wtype  onnx.DataType
	params map[string]string // state-dict name → initializer name, so a shared parameter is stored once
	// attention is the operator Attention and AttentionHeads emit (see UseAttention)
	attention AttentionOp
	err       error
}

// NewNet starts a graph named name whose parameters come from w, stored as float32 (or as StoredAs
// says).
func NewNet(name string, w Weights) *Net {
	wtype := onnx.Float
	if s, ok := w.(storedAs); ok {
		w, wtype = s.Weights, s.t
	}
	return &Net{B: onnx.NewBuilder(name, DefaultOpset), w: w, opset: DefaultOpset, wtype: wtype,
		params: map[string]string{}}
}

// storedAs is Weights whose nets store parameters as t.
type storedAs struct {
	Weights
	t onnx.DataType
}

// StoredAs makes the nets built on w store their parameters as t: onnx.Float (the default) or
// onnx.Float16 (half the size; each parameter is cast to float32 in the graph, so the arithmetic is
// unchanged apart from the fp16 rounding of the weights).
func StoredAs(w Weights, t onnx.DataType) Weights {
	if t == onnx.Float || t == 0 {
		return w
	}
	return storedAs{Weights: w, t: t}
}

// Opset is the net's ai.onnx opset.
func (n *Net) Opset() int64 { return n.opset }

// Fail records the first building error.
func (n *Net) Fail(format string, args ...any) {
	if n.err == nil {
		n.err = fmt.Errorf(format, args...)
	}
}

// Model returns the built model, or the first error met while building.
func (n *Net) Model() (*onnx.Model, error) {
	if n.err != nil {
		return nil, n.err
	}
	if err := n.B.Err(); err != nil {
		return nil, err
	}
	return n.B.Model(), nil
}

// Param adds state-dict parameter name, which must have shape want, as an initializer.
func (n *Net) Param(name string, want ...int) string { return n.param(name, shapeOf(want...), asIs) }

// paramT adds a [out, in] Linear weight stored transposed as [in, out].
func (n *Net) paramT(name string, in, out int) string {
	return n.param(name, shapeOf(out, in), transposed)
}

func (n *Net) param(name string, want []int64, l layout) string {
	key := fmt.Sprintf("%s/%d", name, l)
	if init, ok := n.params[key]; ok {
		return init
	}
	got, ok := n.w.Shape(name)
	switch {
	case !ok:
		n.Fail("tensor %q is missing (expected shape %v)", name, want)
	case got != nil && !slices.Equal(got, want):
		n.Fail("tensor %q: expected shape %v, found %v", name, want, got)
	}
	stored := want
	if l == transposed {
		stored = []int64{want[1], want[0]}
	} else if _, _, ok := l.subPixelPhase(); ok {
		stored = []int64{want[0], want[1], 2, 2}
	}
	src := paramSource{w: n.w, name: name, shape: want, layout: l, dtype: n.wtype}
	init := n.B.Initializer(onnx.Tensor{Name: paramInitName(name, l), Type: n.wtype, Dims: stored, Source: src})
	if n.wtype != onnx.Float {
		init = n.Cast(init, onnx.Float)
	}
	n.params[key] = init
	return init
}

// paramInitName keeps the state-dict name as the initializer name (so exports stay mappable, e.g.
// for LoRA), marking the transposed layout and the sub-pixel phases ("<name>.subpixel01").
func paramInitName(name string, l layout) string {
	if l == transposed {
		return name + ".T"
	}
	if a, b, ok := l.subPixelPhase(); ok {
		return fmt.Sprintf("%s%s%d%d", name, subPixelSuffix, a, b)
	}
	return name
}

// Has reports whether the weights hold name (optional parameters: biases, qk norms).
func (n *Net) Has(name string) bool {
	_, ok := n.w.Shape(name)
	return ok
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

// Ints adds a 1-D int64 constant, the form shape and axes operands take.
func (n *Net) Ints(v ...int64) string { return n.ConstInt64(v, int64(len(v))) }

// FloatInput declares a floating-point graph input of type io (Float or Float16) and returns a
// float32 value: a Float16 input is cast to float32 right after the input.
func (n *Net) FloatInput(name string, io onnx.DataType, dims ...onnx.Dim) string {
	x := n.B.Input(name, io, dims...)
	if io == onnx.Float {
		return x
	}
	return n.Cast(x, onnx.Float)
}

// FloatOutput declares graph output name of type io from the float32 value x, casting first when io
// is not Float.
func (n *Net) FloatOutput(x, name string, io onnx.DataType, dims ...onnx.Dim) {
	if io != onnx.Float {
		x = n.Cast(x, io)
	}
	n.B.Output(x, name, io, dims...)
}

// Op adds a single-output node.
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

// Linear is torch.nn.Linear named prefix: x[..., in] · prefix.weight[out,in]ᵀ + prefix.bias (when
// the weights have a bias, or bias is true: then it is required).
func (n *Net) Linear(x, prefix string, in, out int, bias bool) string {
	if y, ok := n.quantLinear(x, prefix, in, out, bias); ok {
		return y // the weights are Quantized and this layer is one of those quantized
	}
	y := n.MatMul(x, n.paramT(prefix+".weight", in, out))
	if bias {
		y = n.Add(y, n.Param(prefix+".bias", out))
	}
	return y
}

// LayerNorm is torch.nn.LayerNorm over the last axis (size dim); without affine (prefix "") the scale
// and bias are 1 and 0.
func (n *Net) LayerNorm(x, prefix string, dim int, eps float32) string {
	var scale, bias string
	if prefix != "" {
		scale, bias = n.Param(prefix+".weight", dim), n.Param(prefix+".bias", dim)
	} else {
		d := []int64{int64(dim)}
		scale, bias = n.Const(fill(dim, 1), d...), n.Const(fill(dim, 0), d...)
	}
	return n.Op("LayerNormalization", []string{x, scale, bias},
		onnx.AttrInt("axis", -1), onnx.AttrFloat("epsilon", eps))
}

// RMSNorm is x · rsqrt(mean(x², -1) + eps) · weight over the last axis (diffusers RMSNorm, T5LayerNorm);
// weight is the state-dict name of the scale ("" for none).
func (n *Net) RMSNorm(x, weight string, dim int, eps float32) string {
	ms := n.ReduceMean(n.Mul(x, x), -1)
	y := n.Mul(x, n.Op("Reciprocal", []string{n.Op("Sqrt", []string{n.Add(ms, n.Scalar(eps))})}))
	if weight == "" {
		return y
	}
	return n.Mul(y, n.Param(weight, dim))
}

// ReduceMean averages over axes, keeping them.
func (n *Net) ReduceMean(x string, axes ...int64) string {
	if n.opset >= 18 {
		return n.Op("ReduceMean", []string{x, n.Ints(axes...)}, onnx.AttrInt("keepdims", 1))
	}
	return n.Op("ReduceMean", []string{x}, onnx.AttrInts("axes", axes...), onnx.AttrInt("keepdims", 1))
}

// GELU is x·Φ(x) (erf form), or its tanh approximation (torch approximate="tanh", gelu_new).
func (n *Net) GELU(x string, tanhApprox bool) string {
	var t string
	if tanhApprox && n.attention == FusedAttention {
		// one pass instead of eight elementwise ones: FastGelu is this formula, and ORT does not
		// fuse the decomposed form itself (about a tenth of the bench SD3 step at 512²)
		return n.B.OpDomain("com.microsoft", "FastGelu", []string{x}, 1)[0]
	}
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

// Activation applies a transformers/diffusers activation by its config name.
func (n *Net) Activation(x, name string) string {
	switch name {
	case "quick_gelu":
		return n.QuickGELU(x)
	case "gelu":
		return n.GELU(x, false)
	case "gelu_new", "gelu_pytorch_tanh", "gelu-approximate":
		return n.GELU(x, true)
	case "silu", "swish":
		return n.SiLU(x)
	case "relu":
		return n.Op("Relu", []string{x})
	}
	n.Fail("unsupported activation %q", name)
	return x
}

// Conv2D is torch.nn.Conv2d named prefix on NCHW x with a square kernel (weight [out,in,k,k], bias [out]).
func (n *Net) Conv2D(x, prefix string, in, out, kernel, stride, pad int) string {
	k, p, s := int64(kernel), int64(pad), int64(stride)
	w := n.Param(prefix+".weight", out, in, kernel, kernel)
	b := n.Param(prefix+".bias", out)
	return n.Op("Conv", []string{x, w, b},
		onnx.AttrInts("kernel_shape", k, k), onnx.AttrInts("strides", s, s), onnx.AttrInts("pads", p, p, p, p))
}

// GroupNorm is torch.nn.GroupNorm named prefix on NCHW x (as torch exports it: InstanceNormalization
// on [N, groups, -1], then the per-channel affine).
func (n *Net) GroupNorm(x, prefix string, groups, channels int, eps float32) string {
	g := int64(groups)
	r := n.Reshape(x, 0, g, -1)
	r = n.Op("InstanceNormalization", []string{r, n.Const(fill(groups, 1), g), n.Const(fill(groups, 0), g)},
		onnx.AttrFloat("epsilon", eps))
	y := n.Op("Reshape", []string{r, n.Op("Shape", []string{x})})
	c := []int64{int64(channels), 1, 1}
	scale := n.Reshape(n.Param(prefix+".weight", channels), c...)
	bias := n.Reshape(n.Param(prefix+".bias", channels), c...)
	return n.Add(n.Mul(y, scale), bias)
}

// Upsample2x is nearest-neighbour ×2 upsampling of NCHW x (torch interpolate nearest).
func (n *Net) Upsample2x(x string) string {
	return n.Op("Resize", []string{x, "", n.Const([]float32{1, 1, 2, 2}, 4)},
		onnx.AttrString("mode", "nearest"),
		onnx.AttrString("coordinate_transformation_mode", "asymmetric"),
		onnx.AttrString("nearest_mode", "floor"))
}

// Reshape reshapes x to shape (ONNX semantics: 0 copies the input dim, -1 is inferred).
func (n *Net) Reshape(x string, shape ...int64) string {
	return n.Op("Reshape", []string{x, n.Ints(shape...)})
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
	return n.B.OpN("Split", []string{x, n.Ints(sizes...)}, len(sizes), onnx.AttrInt("axis", axis))
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
	return n.Op("Slice", []string{x, n.Ints(starts...), n.Ints(ends...), n.Ints(axes...)})
}

// Unsqueeze inserts size-1 axes.
func (n *Net) Unsqueeze(x string, axes ...int64) string {
	return n.Op("Unsqueeze", []string{x, n.Ints(axes...)})
}

// Squeeze removes size-1 axes.
func (n *Net) Squeeze(x string, axes ...int64) string {
	return n.Op("Squeeze", []string{x, n.Ints(axes...)})
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

// SDPA is scaled dot-product attention on split heads, in the math form torch uses:
// softmax(q·kᵀ·scale (+ bias))·v for q, k, v [B,h,S,d]; bias is "" or broadcastable to [B,h,S_q,S_k].
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

// Attention is multi-head attention on q, k, v [B,S,heads·headDim] with scale 1/√headDim, back to
// [B,S_q,heads·headDim]; bias is "" or broadcastable to [.., S_q, S_k]. Without a bias it is one
// fused operator unless the net is unfused (UseAttention).
func (n *Net) Attention(q, k, v string, heads, headDim int, bias string) string {
	scale := float32(1 / math.Sqrt(float64(headDim)))
	if bias == "" && n.attention != UnfusedAttention {
		y, _ := n.fusedAttention(q, k, v, heads, scale)
		return y
	}
	qh, kh, vh := n.SplitHeads(q, heads), n.SplitHeads(k, heads), n.SplitHeads(v, heads)
	return n.MergeHeads(n.SDPA(qh, kh, vh, bias, scale))
}

// fill returns k copies of v.
func fill(k int, v float32) []float32 {
	s := make([]float32, k)
	for i := range s {
		s[i] = v
	}
	return s
}
