// Package half converts between float32 and the 16-bit float formats ONNX
// models use (IEEE 754 binary16 and bfloat16), and decodes the two 8-bit
// float formats of fp8 checkpoints (E4M3FN and E5M2).
//
// All conversions are exact or correctly rounded (round-to-nearest, ties to
// even), NaNs stay NaNs, and nothing allocates per element. The code is pure
// Go bit manipulation (no assembly, no tables): the common cases are a
// handful of integer instructions plus at most one well-predicted branch,
// and the rare ones (Inf, NaN, overflow, and subnormals when decoding) sit
// in out-of-line functions so the hot loops stay small.
package half

import (
	"errors"
	"fmt"
	"math"
	"unsafe"
)

// Bit patterns of float32 values that steer the binary16 encoder.
const (
	f32AbsMask = 0x7fffffff
	f32Inf     = 0x7f800000 // +Inf; anything above it (after masking the sign) is NaN

	f32MinNormal16 = 0x38800000 // 2^-14, the smallest normal binary16
	f32Overflow16  = 0x47800000 // 2^16; at or above it the result is Inf (or NaN)
	f32Rebias16    = (127 - 15) << 23
)

// FromFloat32 converts f to binary16 bits with round-to-nearest-even.
// Values of magnitude >= 65520 become ±Inf, subnormal results are rounded
// correctly, ±0 keeps its sign, and a NaN stays a NaN: the result is quiet,
// keeps the sign and the top 9 payload bits, and never collapses into Inf.
func FromFloat32(f float32) uint16 {
	u := math.Float32bits(f)
	a := u & f32AbsMask
	if a >= f32Overflow16 {
		return infOrNaN16(u)
	}
	return uint16(u>>16)&0x8000 | finite16(a)
}

// finite16 converts a float32 magnitude a < 2^16 (as bits) to binary16
// magnitude bits. Both the normal and the subnormal result are computed and
// one is picked with a conditional move: zeros and tiny values are common in
// real tensors (ReLU outputs, pruned weights), and a branch on them
// mispredicts badly when they are mixed with normal values.
func finite16(a uint32) uint16 {
	// Normal: rebias the exponent and round off the 13 dropped mantissa
	// bits. Adding 0xfff plus the lowest kept bit rounds to nearest-even,
	// and a carry out of the mantissa bumps the exponent, up to Inf at
	// 65520, for free.
	n := (a - f32Rebias16 + 0xfff + (a>>13)&1) >> 13
	// Subnormal (and zero): adding 0.5, whose ulp is 2^-24 (the binary16
	// subnormal spacing), makes the FPU round to nearest-even for us; the
	// sum is 0.5 + m*2^-24 and m is read off the low bits. m can reach
	// 1024, which is exactly the bit pattern of the smallest normal.
	// (float32 subnormal inputs to this add measured no slowdown on AMD
	// EPYC; the sum itself is always normal.)
	s := math.Float32bits(math.Float32frombits(a)+0.5) - 0x3f000000
	if a < f32MinNormal16 {
		n = s
	}
	return uint16(n)
}

// infOrNaN16 handles |f| >= 2^16, Inf and NaN. These are rare in real data,
// so they live out of line to keep the hot loop small.
//
//go:noinline
func infOrNaN16(u uint32) uint16 {
	sign := uint16(u>>16) & 0x8000
	if a := u & f32AbsMask; a > f32Inf {
		// Setting the quiet bit keeps the mantissa non-zero, so a NaN
		// whose payload lives only in the dropped low bits cannot become Inf.
		return sign | 0x7e00 | uint16(a>>13)&0x3ff
	}
	return sign | 0x7c00
}

// ToFloat32 converts binary16 bits to float32. Every binary16 value,
// subnormals included, is exactly representable, so this is exact. A NaN's
// payload (including its quiet bit) is kept in the top mantissa bits.
func ToFloat32(h uint16) float32 {
	if (h&0x7c00)-0x0400 < 0x7c00-0x0400 { // exponent field in [1, 30]: normal
		return math.Float32frombits(uint32(h&0x8000)<<16 | (uint32(h&0x7fff)<<13 + f32Rebias16))
	}
	return toFloat32Slow(h)
}

// toFloat32Slow handles zero, subnormals, Inf and NaN.
//
//go:noinline
func toFloat32Slow(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	m := uint32(h & 0x3ff)
	if h&0x7c00 != 0 {
		// Inf or NaN: copy the mantissa bit for bit (no FPU operation, so a
		// signalling NaN is not quieted on the way).
		return math.Float32frombits(sign | f32Inf | m<<13)
	}
	// Zero or subnormal, m * 2^-24: both steps are exact in float32.
	return math.Float32frombits(sign | math.Float32bits(float32(m)*0x1p-24))
}

// BFloat16FromFloat32 converts f to bfloat16 bits (the top half of a float32)
// with round-to-nearest-even on the dropped low 16 bits. Finite values that
// round past the largest bfloat16 become ±Inf, as RNE prescribes. A NaN stays
// a quiet NaN with its sign and top payload bits.
func BFloat16FromFloat32(f float32) uint16 {
	u := math.Float32bits(f)
	if u&f32AbsMask > f32Inf {
		// Rounding could carry a NaN's mantissa into the exponent or sign,
		// and a payload only in the low 16 bits would truncate to Inf;
		// forcing the quiet bit avoids both.
		return uint16(u>>16) | 0x40
	}
	return uint16((u + 0x7fff + (u>>16)&1) >> 16)
}

// BFloat16ToFloat32 converts bfloat16 bits to float32; exact, since bfloat16
// is a truncated float32.
func BFloat16ToFloat32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}

// ErrShortDst is wrapped by the slice conversions when dst has fewer
// elements than src; test for it with errors.Is.
var ErrShortDst = errors.New("half: destination shorter than source")

func shortDst(dst, src int) error {
	return fmt.Errorf("%w: len(dst)=%d < len(src)=%d", ErrShortDst, dst, src)
}

// f32Bits views a float32 slice as its bit patterns, so the loops below load
// straight into integer registers instead of bouncing through an XMM register.
func f32Bits(s []float32) []uint32 {
	return unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(s))), len(s))
}

// EncodeFloat16 converts src to binary16 bits in dst[:len(src)], exactly as
// FromFloat32 does element by element. dst must have at least len(src)
// elements; otherwise nothing is written and an error wrapping ErrShortDst is
// returned.
func EncodeFloat16(dst []uint16, src []float32) error {
	if len(dst) < len(src) {
		return shortDst(len(dst), len(src))
	}
	s := f32Bits(src)
	dst = dst[:len(s)]
	for i, u := range s {
		// FromFloat32 inlined by hand (it is over the compiler's inlining
		// budget), written as "compute, then override if out of range" so
		// the common case is straight-line code with the call out of line.
		a := u & f32AbsMask
		r := uint16(u>>16)&0x8000 | finite16(a)
		if a >= f32Overflow16 {
			r = infOrNaN16(u)
		}
		dst[i] = r
	}
	return nil
}

// DecodeFloat16 converts binary16 bits in src to float32 in dst[:len(src)],
// exactly as ToFloat32 does. dst must have at least len(src) elements;
// otherwise nothing is written and an error wrapping ErrShortDst is returned.
func DecodeFloat16(dst []float32, src []uint16) error {
	if len(dst) < len(src) {
		return shortDst(len(dst), len(src))
	}
	dst = dst[:len(src)]
	for i, h := range src {
		// ToFloat32 inlined by hand (it is over the compiler's inlining
		// budget). Unlike encode, the early-continue shape measured
		// slightly faster here than compute-then-override.
		if (h&0x7c00)-0x0400 < 0x7c00-0x0400 {
			dst[i] = math.Float32frombits(uint32(h&0x8000)<<16 | (uint32(h&0x7fff)<<13 + f32Rebias16))
			continue
		}
		dst[i] = toFloat32Slow(h)
	}
	return nil
}

// EncodeBFloat16 converts src to bfloat16 bits in dst[:len(src)], exactly as
// BFloat16FromFloat32 does. dst must have at least len(src) elements;
// otherwise nothing is written and an error wrapping ErrShortDst is returned.
func EncodeBFloat16(dst []uint16, src []float32) error {
	if len(dst) < len(src) {
		return shortDst(len(dst), len(src))
	}
	s := f32Bits(src)
	dst = dst[:len(s)]
	for i, u := range s {
		// Branch-free: the NaN case is a conditional move.
		r := uint16((u + 0x7fff + (u>>16)&1) >> 16)
		if u&f32AbsMask > f32Inf {
			r = uint16(u>>16) | 0x40
		}
		dst[i] = r
	}
	return nil
}

// DecodeBFloat16 converts bfloat16 bits in src to float32 in dst[:len(src)].
// dst must have at least len(src) elements; otherwise nothing is written and
// an error wrapping ErrShortDst is returned.
func DecodeBFloat16(dst []float32, src []uint16) error {
	if len(dst) < len(src) {
		return shortDst(len(dst), len(src))
	}
	d := f32Bits(dst)
	d = d[:len(src)]
	for i, h := range src {
		d[i] = uint32(h) << 16
	}
	return nil
}

// AsBytes views u as bytes without copying, for handing fp16/bf16 buffers to
// ONNX Runtime, which takes raw tensor data. The bytes are in host order,
// which is the little-endian order ONNX expects on amd64 and arm64. The
// result aliases u: writes through either are visible in both.
func AsBytes(u []uint16) []byte {
	if len(u) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(u))), 2*len(u))
}
