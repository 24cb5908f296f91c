// Package arch builds the ONNX graphs of the model architectures rflow runs (SD3/SD3.5 MMDiT, FLUX,
// CLIP, T5, AutoencoderKL) from a configuration and a source of weights. Every parameter is named by
// its diffusers/transformers state-dict name and checked against the shape the configuration implies;
// its bytes are produced only when the graph is written, one tensor at a time, so a model's weights are
// never held in memory together.
package arch

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/rflowrt/rflow/internal/half"
	"github.com/rflowrt/rflow/internal/onnx"
)

// Weights supplies a model's parameters by state-dict name ("transformer_blocks.0.attn.to_q.weight").
type Weights interface {
	// Shape is the parameter's shape; ok is false when the source lacks it. A source that can make a
	// parameter of any shape (random test weights) returns a nil shape with ok true, and the builder's
	// expected shape is used.
	Shape(name string) (shape []int64, ok bool)
	// Float32 returns the parameter's values in row-major order for the given shape (the one Shape
	// reported, or the builder's expectation).
	Float32(name string, shape []int64) ([]float32, error)
}

// Tensor is an in-memory parameter.
type Tensor struct {
	Shape []int64
	Data  []float32
}

// Tensors is an in-memory Weights (tests, small models, merged LoRA deltas).
type Tensors map[string]Tensor

// Shape implements Weights.
func (t Tensors) Shape(name string) ([]int64, bool) {
	v, ok := t[name]
	return v.Shape, ok
}

// Float32 implements Weights.
func (t Tensors) Float32(name string, _ []int64) ([]float32, error) {
	v, ok := t[name]
	if !ok {
		return nil, fmt.Errorf("no tensor %q", name)
	}
	return v.Data, nil
}

// layout is how a parameter is stored in the graph relative to its state-dict form.
type layout int

const (
	asIs       layout = iota
	transposed        // a torch Linear weight [out, in] stored as [in, out] for MatMul
	// a 3×3 conv weight [out, in, 3, 3] folded into the 2×2 kernel [out, in, 2, 2] of one output
	// phase (row, column) of a nearest-×2 upsample followed by that conv (subpixel.go)
	subPixel00
	subPixel01
	subPixel10
	subPixel11
)

// paramSource produces one initializer's bytes from the weights when the graph is written.
type paramSource struct {
	w      Weights
	name   string
	shape  []int64 // state-dict shape
	layout layout
	dtype  onnx.DataType
}

func (p paramSource) WriteRaw(w io.Writer) error {
	v, err := p.w.Float32(p.name, p.shape)
	if err != nil {
		return fmt.Errorf("tensor %q: %w", p.name, err)
	}
	if want := numel(p.shape); len(v) != want {
		return fmt.Errorf("tensor %q: %d values, want %d for shape %v", p.name, len(v), want, p.shape)
	}
	if a, b, ok := p.layout.subPixelPhase(); ok {
		return writeFloats(w, subPixelKernel(v, int(p.shape[0]), int(p.shape[1]), a, b), p.dtype)
	}
	if p.layout != transposed {
		return writeFloats(w, v, p.dtype)
	}
	// Transposed in bands of output rows, so only one band is held beside v (a 12B model's largest
	// matrix is 264 MB in float32: a second full copy would double the conversion's peak).
	rows, cols := int(p.shape[0]), int(p.shape[1])
	band := max(1, (1<<20)/max(rows, 1)) // output rows per band: about 4 MB of float32
	buf := make([]float32, 0, band*rows)
	for c0 := 0; c0 < cols; c0 += band {
		c1 := min(c0+band, cols)
		buf = transposeBand(buf[:(c1-c0)*rows], v, rows, cols, c0, c1)
		if err := writeFloats(w, buf, p.dtype); err != nil {
			return err
		}
	}
	return nil
}

// Transpose returns the [cols, rows] transpose of the row-major [rows, cols] matrix v.
func Transpose(v []float32, rows, cols int) []float32 {
	return transposeBand(make([]float32, len(v)), v, rows, cols, 0, cols)
}

// transposeBand fills out with rows c0…c1-1 of the [cols, rows] transpose of the row-major [rows, cols]
// matrix v, in tiles that keep both sides in cache.
func transposeBand(out, v []float32, rows, cols, c0, c1 int) []float32 {
	const tile = 64
	for r0 := 0; r0 < rows; r0 += tile {
		for c := c0; c < c1; c++ {
			for r := r0; r < min(r0+tile, rows); r++ {
				out[(c-c0)*rows+r] = v[r*cols+c]
			}
		}
	}
	return out
}

// writeFloats writes v as little-endian elements of dtype, in chunks.
func writeFloats(w io.Writer, v []float32, dtype onnx.DataType) error {
	size := dtype.Size()
	buf := make([]byte, 0, min(len(v), 1<<16)*size)
	for len(v) > 0 {
		k := min(len(v), 1<<16)
		buf = buf[:k*size]
		for i, x := range v[:k] {
			switch dtype {
			case onnx.Float:
				binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
			case onnx.Float16:
				binary.LittleEndian.PutUint16(buf[2*i:], half.FromFloat32(x))
			case onnx.BFloat16:
				binary.LittleEndian.PutUint16(buf[2*i:], half.BFloat16FromFloat32(x))
			default:
				return fmt.Errorf("weight type %v is not a float type", dtype)
			}
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
		v = v[k:]
	}
	return nil
}

func numel(shape []int64) int {
	p := 1
	for _, d := range shape {
		p *= int(d)
	}
	return p
}

func shapeOf(dims ...int) []int64 {
	s := make([]int64, len(dims))
	for i, d := range dims {
		s[i] = int64(d)
	}
	return s
}

// IO is the element types of a graph's inputs and outputs, which differ between exports.
type IO struct {
	Float onnx.DataType // float inputs and outputs: onnx.Float (the default) or onnx.Float16
	IDs   onnx.DataType // token ids and positions: onnx.Int64 (the default) or onnx.Int32
	// Attention is the operator for attention: FusedAttention (the default) or UnfusedAttention
	// (which also keeps torch's export form elsewhere: the VAE decoder's upsamplers as Resize + Conv)
	Attention AttentionOp
}

// withDefaults fills unset types and checks the rest.
func (o IO) withDefaults() (IO, error) {
	if o.Float == 0 {
		o.Float = onnx.Float
	}
	if o.IDs == 0 {
		o.IDs = onnx.Int64
	}
	if o.Float != onnx.Float && o.Float != onnx.Float16 {
		return o, fmt.Errorf("float I/O type %v, want float32 or float16", o.Float)
	}
	if o.IDs != onnx.Int64 && o.IDs != onnx.Int32 {
		return o, fmt.Errorf("id I/O type %v, want int64 or int32", o.IDs)
	}
	if _, err := ParseAttentionOp(o.Attention.String()); err != nil {
		return o, err
	}
	return o, nil
}
