package ort

import (
	"fmt"
	"math"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/rflowrt/rflow/internal/half"
	"github.com/rflowrt/rflow/internal/onnx"
)

// Tensor is a pre-allocated, Go-backed tensor of one of the element types diffusion models use
// (float32, float16, bfloat16, int32, int64). ORT reads inputs from and writes outputs straight into
// its Go memory, so a Tensor made once and reused costs nothing per Run. Callers fill and read it with
// []float32 or []int64; the conversion to the declared type happens here.
type Tensor struct {
	typ   onnx.DataType
	shape []int64
	value ortgo.Value
	f32   []float32
	u16   []uint16 // float16 or bfloat16 bits
	i32   []int32
	i64   []int64
}

// SupportedTypes are the element types NewTensor accepts.
func SupportedTypes() []onnx.DataType {
	return []onnx.DataType{onnx.Float, onnx.Float16, onnx.BFloat16, onnx.Int32, onnx.Int64}
}

// NewTensor allocates a zeroed tensor. Every dimension must be positive.
func NewTensor(t onnx.DataType, shape ...int64) (*Tensor, error) {
	if err := checkInit(); err != nil {
		return nil, err
	}
	if len(shape) == 0 {
		return nil, fmt.Errorf("rank-0 (scalar) tensors are not supported: give the %v tensor a shape such as [1]", t)
	}
	n, err := shapeSize(shape)
	if err != nil {
		return nil, err
	}
	s := ortgo.NewShape(shape...)
	x := &Tensor{typ: t, shape: append([]int64(nil), shape...)}
	switch t {
	case onnx.Float:
		x.f32 = make([]float32, n)
		x.value, err = ortgo.NewTensor(s, x.f32)
	case onnx.Float16, onnx.BFloat16:
		// fp16/bf16 go through CustomDataTensor; always Go-allocated (two wrapper bugs with ORT-allocated
		// fp16 outputs, see shared/spec/onnx-from-go.md).
		x.u16 = make([]uint16, n)
		et := ortgo.TensorElementDataType(ortgo.TensorElementDataTypeFloat16)
		if t == onnx.BFloat16 {
			et = ortgo.TensorElementDataType(ortgo.TensorElementDataTypeBFloat16)
		}
		x.value, err = ortgo.NewCustomDataTensor(s, half.AsBytes(x.u16), et)
	case onnx.Int32:
		x.i32 = make([]int32, n)
		x.value, err = ortgo.NewTensor(s, x.i32)
	case onnx.Int64:
		x.i64 = make([]int64, n)
		x.value, err = ortgo.NewTensor(s, x.i64)
	default:
		return nil, fmt.Errorf("tensor element type %v is not supported (supported: float32, float16, bfloat16, int32, int64)", t)
	}
	if err != nil {
		return nil, fmt.Errorf("create %v tensor %v: %w", t, shape, err)
	}
	return x, nil
}

// WrapFloat32 makes a float32 tensor of shape over data, without copying: ORT reads and writes data
// itself, which must hold exactly the shape's values and outlive the tensor. It lets a caller run a
// model on a window of a larger buffer (a strip of rows) in place.
func WrapFloat32(data []float32, shape ...int64) (*Tensor, error) {
	if err := checkInit(); err != nil {
		return nil, err
	}
	n, err := shapeSize(shape)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != n {
		return nil, fmt.Errorf("tensor shape %v: %d values, want %d", shape, len(data), n)
	}
	v, err := ortgo.NewTensor(ortgo.NewShape(shape...), data)
	if err != nil {
		return nil, fmt.Errorf("wrap float32 tensor %v: %w", shape, err)
	}
	return &Tensor{typ: onnx.Float, shape: append([]int64(nil), shape...), value: v, f32: data}, nil
}

// shapeSize is the number of values of shape, each of whose dimensions must be positive.
func shapeSize(shape []int64) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d <= 0 {
			return 0, fmt.Errorf("tensor shape %v: every dimension must be positive", shape)
		}
		n *= d
	}
	return n, nil
}

// Type is the element type.
func (t *Tensor) Type() onnx.DataType { return t.typ }

// Shape is the tensor's shape; do not modify it.
func (t *Tensor) Shape() []int64 { return t.shape }

// Len is the number of elements.
func (t *Tensor) Len() int {
	switch {
	case t.f32 != nil:
		return len(t.f32)
	case t.u16 != nil:
		return len(t.u16)
	case t.i32 != nil:
		return len(t.i32)
	}
	return len(t.i64)
}

// Float32s is the data of a float32 tensor, shared with ORT (no copy); nil for other types.
func (t *Tensor) Float32s() []float32 { return t.f32 }

// Uint16s is the raw bits of a float16 or bfloat16 tensor, shared with ORT; nil for other types.
func (t *Tensor) Uint16s() []uint16 { return t.u16 }

// Int32s is the data of an int32 tensor, shared with ORT; nil for other types.
func (t *Tensor) Int32s() []int32 { return t.i32 }

// Int64s is the data of an int64 tensor, shared with ORT; nil for other types.
func (t *Tensor) Int64s() []int64 { return t.i64 }

// SetFloat32 copies src into a float tensor, converting to float16/bfloat16 as declared.
func (t *Tensor) SetFloat32(src []float32) error {
	if len(src) != t.Len() {
		return fmt.Errorf("set %v tensor %v: got %d values, want %d", t.typ, t.shape, len(src), t.Len())
	}
	switch t.typ {
	case onnx.Float:
		copy(t.f32, src)
		return nil
	case onnx.Float16:
		return half.EncodeFloat16(t.u16, src)
	case onnx.BFloat16:
		return half.EncodeBFloat16(t.u16, src)
	}
	return fmt.Errorf("set %v tensor %v from float32 values: not a float tensor", t.typ, t.shape)
}

// ReadFloat32 copies a float tensor's values into dst, converting from float16/bfloat16.
func (t *Tensor) ReadFloat32(dst []float32) error {
	if len(dst) != t.Len() {
		return fmt.Errorf("read %v tensor %v: buffer holds %d values, want %d", t.typ, t.shape, len(dst), t.Len())
	}
	switch t.typ {
	case onnx.Float:
		copy(dst, t.f32)
		return nil
	case onnx.Float16:
		return half.DecodeFloat16(dst, t.u16)
	case onnx.BFloat16:
		return half.DecodeBFloat16(dst, t.u16)
	}
	return fmt.Errorf("read %v tensor %v as float32 values: not a float tensor", t.typ, t.shape)
}

// SetInt64 copies integer values (token ids, positions) into an int32 or int64 tensor.
func (t *Tensor) SetInt64(src []int64) error {
	if len(src) != t.Len() {
		return fmt.Errorf("set %v tensor %v: got %d values, want %d", t.typ, t.shape, len(src), t.Len())
	}
	switch t.typ {
	case onnx.Int64:
		copy(t.i64, src)
		return nil
	case onnx.Int32:
		for i, v := range src {
			if v < math.MinInt32 || v > math.MaxInt32 {
				return fmt.Errorf("set int32 tensor %v: value %d at %d does not fit in int32", t.shape, v, i)
			}
			t.i32[i] = int32(v)
		}
		return nil
	}
	return fmt.Errorf("set %v tensor %v from integer values: not an integer tensor", t.typ, t.shape)
}

// ReadInt64 copies an int32 or int64 tensor's values into dst.
func (t *Tensor) ReadInt64(dst []int64) error {
	if len(dst) != t.Len() {
		return fmt.Errorf("read %v tensor %v: buffer holds %d values, want %d", t.typ, t.shape, len(dst), t.Len())
	}
	switch t.typ {
	case onnx.Int64:
		copy(dst, t.i64)
		return nil
	case onnx.Int32:
		for i, v := range t.i32 {
			dst[i] = int64(v)
		}
		return nil
	}
	return fmt.Errorf("read %v tensor %v as integers: not an integer tensor", t.typ, t.shape)
}

// Destroy releases the ORT value. The Go memory goes with the Tensor.
func (t *Tensor) Destroy() error {
	if t == nil || t.value == nil {
		return nil
	}
	err := t.value.Destroy()
	t.value = nil
	return err
}
