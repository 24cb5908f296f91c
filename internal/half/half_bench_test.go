package half

import (
	"math"
	"math/rand/v2"
	"testing"
)

const benchN = 1 << 20

// benchFloats looks like model weights/activations: normally distributed
// with magnitudes spread over 2^-8..2^7, so nearly all values take the fast
// path and a small fraction (~0.1%) land in the binary16 subnormal range.
func benchFloats() []float32 {
	r := rand.New(rand.NewPCG(1, 2))
	s := make([]float32, benchN)
	for i := range s {
		s[i] = float32(r.NormFloat64() * math.Exp2(float64(r.IntN(16)-8)))
	}
	return s
}

// reportPerElem adds the per-element time, the number the performance goal
// is stated in. SetBytes counts the input side of each conversion.
func reportPerElem(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchN, "ns/elem")
}

func benchEncode(b *testing.B, enc func([]uint16, []float32) error) {
	src := benchFloats()
	dst := make([]uint16, benchN)
	b.SetBytes(benchN * 4)
	b.ReportAllocs()
	for b.Loop() {
		if err := enc(dst, src); err != nil {
			b.Fatal(err)
		}
	}
	reportPerElem(b)
}

func benchDecode(b *testing.B, enc func([]uint16, []float32) error, dec func([]float32, []uint16) error) {
	src := make([]uint16, benchN)
	if err := enc(src, benchFloats()); err != nil {
		b.Fatal(err)
	}
	dst := make([]float32, benchN)
	b.SetBytes(benchN * 2)
	b.ReportAllocs()
	for b.Loop() {
		if err := dec(dst, src); err != nil {
			b.Fatal(err)
		}
	}
	reportPerElem(b)
}

func BenchmarkEncodeFloat16(b *testing.B)  { benchEncode(b, EncodeFloat16) }
func BenchmarkDecodeFloat16(b *testing.B)  { benchDecode(b, EncodeFloat16, DecodeFloat16) }
func BenchmarkEncodeBFloat16(b *testing.B) { benchEncode(b, EncodeBFloat16) }
func BenchmarkDecodeBFloat16(b *testing.B) { benchDecode(b, EncodeBFloat16, DecodeBFloat16) }

// Scalar calls, for comparison with the slice loops (the scalar functions
// are over the inlining budget, so each one is a real call).
var sink uint16

func BenchmarkFromFloat32Scalar(b *testing.B) {
	src := benchFloats()
	b.ReportAllocs()
	for b.Loop() {
		var acc uint16
		for _, x := range src {
			acc ^= FromFloat32(x)
		}
		sink = acc
	}
	reportPerElem(b)
}

func BenchmarkToFloat32Scalar(b *testing.B) {
	src := make([]uint16, benchN)
	if err := EncodeFloat16(src, benchFloats()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var acc uint32 // XOR, not a float sum, to avoid a loop-carried FP add
		for _, h := range src {
			acc ^= math.Float32bits(ToFloat32(h))
		}
		sink = uint16(acc)
	}
	reportPerElem(b)
}
