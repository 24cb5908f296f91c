package safetensors

import "fmt"

// DecodeFloat32 converts b, little-endian elements of dtype (any of the format's dtypes), to float32:
// exact for F16, BF16 and the float8 formats, rounded to nearest for F64 and wide integers.
func DecodeFloat32(b []byte, dtype string) ([]float32, error) {
	size, ok := dtypeSizes[dtype]
	if !ok {
		return nil, fmt.Errorf("%w: unknown dtype %q", ErrFormat, dtype)
	}
	if len(b)%size != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not a whole number of %s elements", ErrFormat, len(b), dtype)
	}
	out := make([]float32, len(b)/size)
	decodeFloat32(out, b, dtype)
	return out, nil
}
