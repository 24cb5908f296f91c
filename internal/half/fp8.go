package half

import "math"

// The two 8-bit float formats found in checkpoints (safetensors F8_E4M3 and
// F8_E5M2, ONNX FLOAT8E4M3FN and FLOAT8E5M2) as defined in "FP8 Formats for
// Deep Learning" (Micikevicius et al., 2022). Every value of either format
// is exactly representable in float32, so decoding is exact.
//
//   - E4M3FN: 4 exponent bits (bias 7), 3 mantissa bits, no infinities; the
//     only NaNs are S.1111.111 (0x7f, 0xff), so the largest finite value is
//     S.1111.110 = 448 and the smallest subnormal 2^-9.
//   - E5M2: the top byte of an IEEE binary16 (bias 15, 2 mantissa bits),
//     with its infinities and NaNs; largest finite 57344, smallest
//     subnormal 2^-16.

// Float8E4M3FNToFloat32 converts E4M3FN bits to float32, exactly. The NaN
// patterns decode to a quiet NaN with the same sign.
func Float8E4M3FNToFloat32(b uint8) float32 {
	sign := uint32(b&0x80) << 24
	e := uint32(b>>3) & 0xf
	m := uint32(b & 7)
	switch {
	case b&0x7f == 0x7f:
		return math.Float32frombits(sign | 0x7fc00000)
	case e == 0: // zero or subnormal, m * 2^-9: exact in float32
		return math.Float32frombits(sign | math.Float32bits(float32(m)*0x1p-9))
	}
	return math.Float32frombits(sign | (e+127-7)<<23 | m<<20)
}

// Float8E5M2ToFloat32 converts E5M2 bits to float32, exactly (E5M2 is the
// top half of a binary16).
func Float8E5M2ToFloat32(b uint8) float32 {
	return ToFloat32(uint16(b) << 8)
}

// DecodeFloat8E4M3FN converts E4M3FN bits in src to float32 in
// dst[:len(src)], exactly as Float8E4M3FNToFloat32 does. dst must have at
// least len(src) elements; otherwise nothing is written and an error
// wrapping ErrShortDst is returned.
func DecodeFloat8E4M3FN(dst []float32, src []uint8) error {
	if len(dst) < len(src) {
		return shortDst(len(dst), len(src))
	}
	dst = dst[:len(src)]
	for i, b := range src {
		dst[i] = Float8E4M3FNToFloat32(b)
	}
	return nil
}

// DecodeFloat8E5M2 converts E5M2 bits in src to float32 in dst[:len(src)],
// exactly as Float8E5M2ToFloat32 does. dst must have at least len(src)
// elements; otherwise nothing is written and an error wrapping ErrShortDst
// is returned.
func DecodeFloat8E5M2(dst []float32, src []uint8) error {
	if len(dst) < len(src) {
		return shortDst(len(dst), len(src))
	}
	dst = dst[:len(src)]
	for i, b := range src {
		dst[i] = Float8E5M2ToFloat32(b)
	}
	return nil
}
