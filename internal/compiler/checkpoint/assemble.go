package checkpoint

import (
	"encoding/binary"
	"fmt"
	"math"
)

// dtypeSize is the element size of the safetensors dtypes a recipe can move.
var dtypeSize = map[string]int64{"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2,
	"F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}

// RowReader returns the raw little-endian bytes of rows [start, end) of dim 0 of a source tensor
// (end = -1: to the last row; a tensor of no dims is one row).
type RowReader func(tensor string, start, end int64) ([]byte, error)

// Assemble builds the canonical tensor's raw bytes (in the source dtype) from its recipe: the pieces
// concatenated, then transposed if the recipe says so; a reshape needs no data movement. The result has
// exactly count(Shape) elements.
func (r Recipe) Assemble(read RowReader) ([]byte, error) {
	size, ok := dtypeSize[r.DType]
	if !ok {
		return nil, fmt.Errorf("checkpoint: recipe of dtype %q", r.DType)
	}
	n := count(r.Shape)
	if n < 0 || n > math.MaxInt/int64(size) {
		return nil, fmt.Errorf("checkpoint: recipe shape %v", r.Shape)
	}
	want := n * size
	if r.Fill == FillEye {
		return eye(r.Shape, r.DType)
	}
	if r.Fill != "" {
		return nil, fmt.Errorf("checkpoint: unknown recipe fill %q", r.Fill)
	}
	out := make([]byte, 0, want)
	for _, p := range r.Pieces {
		b, err := read(p.Tensor, p.Start, p.End)
		if err != nil {
			return nil, fmt.Errorf("checkpoint: %s rows [%d,%d): %w", p.Tensor, p.Start, p.End, err)
		}
		if int64(len(out))+int64(len(b)) > want {
			return nil, fmt.Errorf("checkpoint: pieces of %v give more than %d bytes", r.Shape, want)
		}
		out = append(out, b...)
	}
	if int64(len(out)) != want {
		return nil, fmt.Errorf("checkpoint: pieces give %d bytes for %s%v (want %d)", len(out), r.DType, r.Shape, want)
	}
	if r.Transpose {
		if len(r.Shape) != 2 {
			return nil, fmt.Errorf("checkpoint: transpose of shape %v", r.Shape)
		}
		// The concatenation is [Shape[1], Shape[0]]; the result [Shape[0], Shape[1]].
		rows, cols := r.Shape[1], r.Shape[0]
		t := make([]byte, len(out))
		for i := range rows {
			for j := range cols {
				copy(t[(j*rows+i)*size:(j*rows+i+1)*size], out[(i*cols+j)*size:(i*cols+j+1)*size])
			}
		}
		out = t
	}
	return out, nil
}

// eye is the identity matrix of a 2-D float shape.
func eye(shape []int64, dtype string) ([]byte, error) {
	if len(shape) != 2 || shape[0] != shape[1] {
		return nil, fmt.Errorf("checkpoint: identity of shape %v", shape)
	}
	var one []byte
	switch dtype {
	case "F32":
		one = binary.LittleEndian.AppendUint32(nil, math.Float32bits(1))
	case "F64":
		one = binary.LittleEndian.AppendUint64(nil, math.Float64bits(1))
	case "F16":
		one = []byte{0x00, 0x3c}
	case "BF16":
		one = []byte{0x80, 0x3f}
	default:
		return nil, fmt.Errorf("checkpoint: identity in dtype %s", dtype)
	}
	n, size := shape[0], int64(len(one))
	out := make([]byte, n*n*size)
	for i := range n {
		copy(out[(i*n+i)*size:], one)
	}
	return out, nil
}
