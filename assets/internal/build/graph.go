// Package build generates the demo model folders: ONNX graphs (written with internal/onnx), tokenizer
// files and diffusers configs. Everything is deterministic: the same bytes on every run.
package build

import (
	"github.com/rflowrt/rflow/internal/onnx"
)

// opset is the ai.onnx opset of every demo graph (Reduce* with axes attributes, Resize-13 semantics).
const opset = 17

// graph wraps onnx.Builder with the shorthands the demo graphs use.
type graph struct{ *onnx.Builder }

func newGraph(name string) graph { return graph{onnx.NewBuilder(name, opset)} }

func (g graph) op(typ string, in ...string) string { return g.Op(typ, in) }

func (g graph) opA(typ string, in []string, attrs ...onnx.Attribute) string {
	return g.Op(typ, in, attrs...)
}

// f32 is a float32 constant of the given dims.
func (g graph) f32(dims []int64, v ...float32) string {
	return g.Constant(onnx.Float32Tensor("", dims, v))
}

// scalar is a float32 scalar constant.
func (g graph) scalar(v float32) string { return g.f32([]int64{}, v) }

// ints is a 1-D int64 constant.
func (g graph) ints(v ...int64) string {
	return g.Constant(onnx.Int64Tensor("", []int64{int64(len(v))}, v))
}

// slice is x[start:end] along axis.
func (g graph) slice(x string, axis, start, end int64) string {
	return g.op("Slice", x, g.ints(start), g.ints(end), g.ints(axis))
}

// reduceSum sums over axes (keepdims 0 unless keep).
func (g graph) reduceSum(x string, keep bool, axes ...int64) string {
	k := int64(0)
	if keep {
		k = 1
	}
	return g.opA("ReduceSum", []string{x, g.ints(axes...)}, onnx.AttrInt("keepdims", k))
}

// reshape reshapes x to dims (0 copies, −1 infers).
func (g graph) reshape(x string, dims ...int64) string { return g.op("Reshape", x, g.ints(dims...)) }

// shapeDims is x's shape[start:end] as a 1-D int64 tensor.
func (g graph) shapeDims(x string, start, end int64) string {
	return g.opA("Shape", []string{x}, onnx.AttrInt("start", start), onnx.AttrInt("end", end))
}

// concat concatenates along axis.
func (g graph) concat(axis int64, in ...string) string {
	return g.opA("Concat", in, onnx.AttrInt("axis", axis))
}

// zeros is a float32 tensor of zeros whose shape is the 1-D int64 tensor shape.
func (g graph) zeros(shape string) string {
	return g.opA("ConstantOfShape", []string{shape}, onnx.AttrTensor("value", onnx.Float32Tensor("", []int64{1}, []float32{0})))
}

// resize is ONNX Resize, bilinear, half_pixel, to the sizes given by a 1-D int64 tensor, or by scales
// when sizes is "".
func (g graph) resize(x, scales, sizes string) string {
	in := []string{x, "", scales}
	if sizes != "" {
		in = []string{x, "", "", sizes}
	}
	return g.opA("Resize", in, onnx.AttrString("mode", "linear"),
		onnx.AttrString("coordinate_transformation_mode", "half_pixel"))
}

// square is x·x.
func (g graph) square(x string) string { return g.op("Mul", x, x) }

func (g graph) model() ([]byte, error) { return g.Model().Marshal() }
