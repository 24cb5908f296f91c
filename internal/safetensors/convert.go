package safetensors

import (
	"encoding/binary"
	"math"
	"unsafe"

	"github.com/rflowrt/rflow/internal/half"
)

// decodeFloat32 converts little-endian elements of dtype in b to float32 in out; len(out) is the
// element count and b holds exactly that many elements (the header checks guarantee both).
func decodeFloat32(out []float32, b []byte, dtype string) {
	le := binary.LittleEndian
	switch dtype {
	case "F32":
		if v, ok := view[uint32](b); ok {
			copy(out, unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(v))), len(v)))
			return
		}
		for i := range out {
			out[i] = math.Float32frombits(le.Uint32(b[4*i:]))
		}
	case "F16":
		if v, ok := view[uint16](b); ok {
			_ = half.DecodeFloat16(out, v)
			return
		}
		for i := range out {
			out[i] = half.ToFloat32(le.Uint16(b[2*i:]))
		}
	case "BF16":
		if v, ok := view[uint16](b); ok {
			_ = half.DecodeBFloat16(out, v)
			return
		}
		for i := range out {
			out[i] = half.BFloat16ToFloat32(le.Uint16(b[2*i:]))
		}
	case "F64":
		for i := range out {
			out[i] = float32(math.Float64frombits(le.Uint64(b[8*i:])))
		}
	case "F8_E4M3":
		_ = half.DecodeFloat8E4M3FN(out, b)
	case "F8_E5M2":
		_ = half.DecodeFloat8E5M2(out, b)
	case "BOOL":
		for i, x := range b {
			out[i] = 0
			if x != 0 {
				out[i] = 1
			}
		}
	case "U8":
		for i, x := range b {
			out[i] = float32(x)
		}
	case "I8":
		for i, x := range b {
			out[i] = float32(int8(x))
		}
	case "U16":
		for i := range out {
			out[i] = float32(le.Uint16(b[2*i:]))
		}
	case "I16":
		for i := range out {
			out[i] = float32(int16(le.Uint16(b[2*i:])))
		}
	case "U32":
		for i := range out {
			out[i] = float32(le.Uint32(b[4*i:]))
		}
	case "I32":
		for i := range out {
			out[i] = float32(int32(le.Uint32(b[4*i:])))
		}
	case "U64":
		for i := range out {
			out[i] = float32(le.Uint64(b[8*i:]))
		}
	case "I64":
		for i := range out {
			out[i] = float32(int64(le.Uint64(b[8*i:])))
		}
	}
}

// view reinterprets little-endian bytes as a slice of T without copying, where the host is
// little-endian and b is aligned for T; ok is false otherwise (callers then decode byte by byte).
func view[T uint16 | uint32](b []byte) (v []T, ok bool) {
	var zero T
	size := int(unsafe.Sizeof(zero))
	if !littleEndianHost() || len(b) == 0 || uintptr(unsafe.Pointer(unsafe.SliceData(b)))%uintptr(size) != 0 {
		return nil, false
	}
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/size), true
}

func littleEndianHost() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}
