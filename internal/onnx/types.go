// Package onnx writes ONNX models (ModelProto) in pure Go and reads a model's
// signature without loading its weights.
//
// The package encodes the protobuf wire format directly with protowire rather
// than depending on generated onnx.proto code: the subset needed to describe a
// graph is small, the output is deterministic, and the build stays CGO-free.
package onnx

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/rflowrt/rflow/internal/half"
)

// DataType is an ONNX tensor element type; values equal TensorProto.DataType.
type DataType int32

// Element types supported by this package. The values are the ONNX enum
// values, so they can be written to the wire unchanged.
const (
	Float    DataType = 1
	Uint8    DataType = 2
	Int8     DataType = 3
	Uint16   DataType = 4
	Int16    DataType = 5
	Int32    DataType = 6
	Int64    DataType = 7
	Bool     DataType = 9
	Float16  DataType = 10
	Double   DataType = 11
	Uint32   DataType = 12
	Uint64   DataType = 13
	BFloat16 DataType = 16
)

// String returns the NumPy-style name, which is what users see in signatures.
func (t DataType) String() string {
	switch t {
	case Float:
		return "float32"
	case Uint8:
		return "uint8"
	case Int8:
		return "int8"
	case Uint16:
		return "uint16"
	case Int16:
		return "int16"
	case Uint32:
		return "uint32"
	case Uint64:
		return "uint64"
	case Int32:
		return "int32"
	case Int64:
		return "int64"
	case Bool:
		return "bool"
	case Float16:
		return "float16"
	case Double:
		return "float64"
	case BFloat16:
		return "bfloat16"
	}
	return fmt.Sprintf("DataType(%d)", int32(t))
}

// Size is the number of bytes per element, or 0 for types this package does
// not know (which Marshal rejects).
func (t DataType) Size() int {
	switch t {
	case Uint8, Int8, Bool:
		return 1
	case Float16, BFloat16, Uint16, Int16:
		return 2
	case Float, Int32, Uint32:
		return 4
	case Int64, Double, Uint64:
		return 8
	}
	return 0
}

// Dim is one dimension of a value's shape. A non-empty Param makes the
// dimension symbolic (e.g. "batch"); otherwise Value is the size, and a
// negative Value means "unknown, unnamed".
type Dim struct {
	Value int64
	Param string
}

// Fixed returns a dimension of known size n.
func Fixed(n int64) Dim { return Dim{Value: n} }

// Sym returns a symbolic dimension, which lets a model accept any size there.
func Sym(name string) Dim { return Dim{Param: name} }

// String renders the dimension as it appears in signatures ("batch", "3", "?").
func (d Dim) String() string {
	switch {
	case d.Param != "":
		return d.Param
	case d.Value < 0:
		return "?"
	}
	return fmt.Sprint(d.Value)
}

// ValueInfo describes a graph input, output or intermediate value.
// Dims == nil means the rank is unknown (no shape is written); a non-nil empty
// Dims is a scalar. Type 0 (from the reader) means a non-tensor value such as
// a sequence or map.
type ValueInfo struct {
	Name string
	Type DataType
	Dims []Dim

	// encoded, when set, is the whole ValueInfoProto as read (a value without a tensor type, as
	// Loop and If bodies may declare), written back unchanged.
	encoded []byte
}

// Tensor is a dense tensor stored as raw little-endian element bytes, which
// is how ONNX Runtime prefers to receive initializers.
type Tensor struct {
	Name string
	Type DataType
	Dims []int64
	Raw  []byte
	// Source, when Raw is nil, produces the raw bytes on demand: writers stream such tensors
	// one at a time into the external data file, so a model's weights never sit in memory together.
	Source TensorSource
}

// TensorSource writes a tensor's raw little-endian element bytes (exactly numel × element size).
type TensorSource interface {
	WriteRaw(w io.Writer) error
}

// RawSize is the tensor's byte size from its dims and type (Raw's length when set).
func (t *Tensor) RawSize() int64 {
	if t.Raw != nil || t.Source == nil {
		return int64(len(t.Raw))
	}
	n := int64(t.Type.Size())
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// Float32Tensor builds a float32 tensor from v.
func Float32Tensor(name string, dims []int64, v []float32) Tensor {
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(x))
	}
	return Tensor{Name: name, Type: Float, Dims: cloneInts(dims), Raw: raw}
}

// Float16Tensor builds a float16 tensor, rounding v to binary16 (RNE).
func Float16Tensor(name string, dims []int64, v []float32) Tensor {
	raw := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(raw[2*i:], half.FromFloat32(x))
	}
	return Tensor{Name: name, Type: Float16, Dims: cloneInts(dims), Raw: raw}
}

// BFloat16Tensor builds a bfloat16 tensor, rounding v to bfloat16.
func BFloat16Tensor(name string, dims []int64, v []float32) Tensor {
	raw := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(raw[2*i:], half.BFloat16FromFloat32(x))
	}
	return Tensor{Name: name, Type: BFloat16, Dims: cloneInts(dims), Raw: raw}
}

// Int64Tensor builds an int64 tensor (shapes, axes and indices are int64 in ONNX).
func Int64Tensor(name string, dims []int64, v []int64) Tensor {
	raw := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(x))
	}
	return Tensor{Name: name, Type: Int64, Dims: cloneInts(dims), Raw: raw}
}

// Int32Tensor builds an int32 tensor.
func Int32Tensor(name string, dims []int64, v []int32) Tensor {
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], uint32(x))
	}
	return Tensor{Name: name, Type: Int32, Dims: cloneInts(dims), Raw: raw}
}

// AttrType is AttributeProto.AttributeType.
type AttrType int32

// Attribute types; values equal the ONNX enum.
const (
	AttrTypeFloat   AttrType = 1
	AttrTypeInt     AttrType = 2
	AttrTypeString  AttrType = 3
	AttrTypeTensor  AttrType = 4
	AttrTypeGraph   AttrType = 5
	AttrTypeFloats  AttrType = 6
	AttrTypeInts    AttrType = 7
	AttrTypeStrings AttrType = 8
)

// Attribute is a node attribute. Only the field selected by Type is written;
// build it with the Attr* constructors.
type Attribute struct {
	Name    string
	Type    AttrType
	F       float32
	I       int64
	S       string
	T       *Tensor
	G       *Graph
	Floats  []float32
	Ints    []int64
	Strings []string

	// encoded, when set, is the whole AttributeProto as read, written back unchanged: the attribute
	// kinds this package does not model (tensor and graph lists, sparse tensors, type protos,
	// function attribute references) survive a read-write round trip.
	encoded []byte
}

// AttrInt returns an INT attribute.
func AttrInt(name string, v int64) Attribute {
	return Attribute{Name: name, Type: AttrTypeInt, I: v}
}

// AttrFloat returns a FLOAT attribute.
func AttrFloat(name string, v float32) Attribute {
	return Attribute{Name: name, Type: AttrTypeFloat, F: v}
}

// AttrString returns a STRING attribute.
func AttrString(name, v string) Attribute {
	return Attribute{Name: name, Type: AttrTypeString, S: v}
}

// AttrInts returns an INTS attribute.
func AttrInts(name string, v ...int64) Attribute {
	return Attribute{Name: name, Type: AttrTypeInts, Ints: cloneInts(v)}
}

// AttrFloats returns a FLOATS attribute.
func AttrFloats(name string, v ...float32) Attribute {
	return Attribute{Name: name, Type: AttrTypeFloats, Floats: append([]float32(nil), v...)}
}

// AttrStrings returns a STRINGS attribute.
func AttrStrings(name string, v ...string) Attribute {
	return Attribute{Name: name, Type: AttrTypeStrings, Strings: append([]string(nil), v...)}
}

// AttrTensor returns a TENSOR attribute (e.g. Constant's "value").
func AttrTensor(name string, t Tensor) Attribute {
	return Attribute{Name: name, Type: AttrTypeTensor, T: &t}
}

// AttrGraph returns a GRAPH attribute (e.g. If/Loop bodies).
func AttrGraph(name string, g *Graph) Attribute {
	return Attribute{Name: name, Type: AttrTypeGraph, G: g}
}

// Node is one operator invocation. An empty string in Inputs or Outputs marks
// a skipped optional argument.
type Node struct {
	Name, OpType, Domain string
	Inputs, Outputs      []string
	Attrs                []Attribute

	// unknown holds the NodeProto fields read but not modelled (doc_string, overload, metadata),
	// appended unchanged when written.
	unknown []byte
}

// Graph is a computation graph: nodes in topological order, constant
// initializers, and the declared inputs, outputs and intermediate value infos.
type Graph struct {
	Name                       string
	Nodes                      []Node
	Initializers               []Tensor
	Inputs, Outputs, ValueInfo []ValueInfo

	// unknown holds the GraphProto fields read but not modelled (doc_string, sparse initializers,
	// quantization annotations, metadata), appended unchanged when written.
	unknown []byte
}

// OpsetImport selects an operator set version for a domain ("" is ai.onnx).
type OpsetImport struct {
	Domain  string
	Version int64
}

// Model is an ONNX model. Metadata is written sorted by key so that the same
// model always marshals to the same bytes.
type Model struct {
	IRVersion                     int64
	ProducerName, ProducerVersion string
	Opsets                        []OpsetImport
	Graph                         Graph
	Metadata                      map[string]string

	// unknown holds the ModelProto fields read but not modelled (domain, model_version, doc_string,
	// training_info, functions, configuration), appended unchanged when written.
	unknown []byte

	// err is a sticky error from the Builder that produced the model; Marshal
	// reports it so that building code need not check every call.
	err error
}

// IRVersionForOpset returns the IR version that matches a default-domain
// opset, so models do not claim an IR newer than their operators need
// (older runtimes reject unknown IR versions).
func IRVersionForOpset(opset int64) int64 {
	switch {
	case opset <= 18:
		return 8
	case opset <= 20:
		return 9
	}
	return 10
}

func cloneInts(v []int64) []int64 {
	if v == nil {
		return nil
	}
	return append([]int64{}, v...)
}
