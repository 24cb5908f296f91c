package rng

import "math"

// This file reproduces torch's x86 normal_fill_16_AVX2 (aten/src/ATen/native/cpu/
// DistributionTemplates.h) with avx_mathfun.h's log256_ps and sincos256_ps, one lane at a time,
// in float32 exactly as flow-sampling.md §7.4 and Appendix A model it: GCC (-ffp-contract=fast,
// -mfma) contracts each polynomial mul+add pair into one fused multiply-add.
//
// Go may itself fuse x*y + z into an FMA (on arm64, ppc64, s390x, and amd64 with GOAMD64=v3), which
// would change results. Every product that the model rounds before an addition is therefore
// written float32(x*y): an explicit conversion forbids the fusion (Go spec, "Floating-point
// operators"). Every fusion the model does want goes through fma32.

// Cephes/Pommier constants, as float32 roundings of avx_mathfun.h's decimal literals (written in
// hex so that no decimal-to-float32 rounding question arises; TestConstants checks them).
const (
	cephesSQRTHF float32 = 0x1.6a09e6p-1 // 0.707106781186547524

	logP0 float32 = 0x1.204376p-4   // 7.0376836292E-2
	logP1 float32 = -0x1.d7a37p-4   // -1.1514610310E-1
	logP2 float32 = 0x1.de4a34p-4   // 1.1676998740E-1
	logP3 float32 = -0x1.fcba9ep-4  // -1.2420140846E-1
	logP4 float32 = 0x1.23d37ep-3   // 1.4249322787E-1
	logP5 float32 = -0x1.555cap-3   // -1.6668057665E-1
	logP6 float32 = 0x1.999d58p-3   // 2.0000714765E-1
	logP7 float32 = -0x1.fffff8p-3  // -2.4999993993E-1
	logP8 float32 = 0x1.555554p-2   // 3.3333331174E-1
	logQ1 float32 = -0x1.bd0106p-13 // -2.12194440e-4
	logQ2 float32 = 0x1.63p-1       // 0.693359375

	minusDP1   float32 = -0x1.92p-1      // -0.78515625
	minusDP2   float32 = -0x1.fb4p-13    // -2.4187564849853515625e-4
	minusDP3   float32 = -0x1.4442d2p-25 // -3.77489497744594108e-8
	sinP0      float32 = -0x1.9943f2p-13 // -1.9515295891E-4
	sinP1      float32 = 0x1.11073cp-7   // 8.3321608736E-3
	sinP2      float32 = -0x1.555546p-3  // -1.6666654611E-1
	cosP0      float32 = 0x1.99eb9cp-16  // 2.443315711809948E-005
	cosP1      float32 = -0x1.6c0c34p-10 // -1.388731625493765E-003
	cosP2      float32 = 0x1.55554ap-5   // 4.166664568298827E-002
	cephesFOPI float32 = 0x1.45f306p+0   // 4/π = 1.27323954473516

	twoPi32 float32 = 0x1.921fb6p+2 // _mm256_set1_ps(2.0f * c10::pi<double>) = 6.2831855
)

// fma32 returns a·b + c rounded once to float32: a true float32 fused multiply-add.
//
// a·b is exact in float64 (two 24-bit significands need at most 48 bits, and the exponent of a
// product of float32 values cannot leave float64's normal range), so s = a·b + c computed in float64
// is the exact sum rounded once to float64 (fused or not). Rounding s to float32 is a second
// rounding, and two roundings give a wrong answer only when s lands exactly on a float32 rounding
// midpoint while the exact sum is not that midpoint: float32 midpoints are float64 numbers, so the
// monotone float64 rounding keeps the exact sum and s on the same side of every other midpoint.
// That case, and results below float32's normal range (where midpoints sit elsewhere), take
// fma32Exact. TestFMA32 checks this against math/big on adversarial and random operands.
func fma32(a, b, c float32) float32 {
	s := float64(a)*float64(b) + float64(c)
	bits := math.Float64bits(s) &^ (1 << 63)
	if bits&(1<<29-1) == 1<<28 || bits < 0x3810000000000000 { // float32 midpoint, or |s| < 2^-126
		return fma32Exact(float64(a)*float64(b), float64(c), s)
	}
	return float32(s)
}

// fma32Exact rounds p + c to float32 exactly, given s = p + c rounded to float64. TwoSum gives the
// exact error e = (p + c) − s; if e ≠ 0 and s is even, s moves one float64 ulp towards e, which
// makes it p + c rounded to odd. Rounding to odd with 53 bits and then to nearest with 24 bits (or
// fewer, for float32 subnormals) equals rounding p + c to nearest once (Boldo & Melquiond,
// "Emulation of FMA and correctly rounded sums: proved algorithms using rounding to odd", 2008).
// It runs for about 0.5% of the calls in box16 (nearly all of them exact ties in the range
// reduction, where e = 0), so it is kept out of line to keep fma32's common path short.
//
//go:noinline
func fma32Exact(p, c, s float64) float32 {
	bb := s - p
	e := (p - (s - bb)) + (c - bb)
	sb := math.Float64bits(s)
	if e != 0 && sb&1 == 0 {
		if (e > 0) == (s > 0) {
			sb++ // magnitude up
		} else {
			sb-- // magnitude down (s ≠ 0 here: a float64 sum that rounds to 0 is exact)
		}
		s = math.Float64frombits(sb)
	}
	return float32(s)
}

// log256 is avx_mathfun.h's log256_ps for one lane, for x in [2^-24, 1] (so the clamp to the
// smallest normal and the NaN for x ≤ 0 never apply). It is branch-free like the original: the
// mantissa test is random, and a branch on it would mispredict 40% of the time.
func log256(x float32) float32 {
	b := math.Float32bits(x)
	e := float32(int32(b>>23)-0x7f) + 1
	x = math.Float32frombits(b&0x807fffff | 0x3f000000) // mantissa in [0.5, 1)
	// mask = all ones when x < SQRTHF (both positive, so their bits compare like the floats).
	mask := uint32(int32(math.Float32bits(x)-math.Float32bits(cephesSQRTHF)) >> 31)
	t := math.Float32frombits(math.Float32bits(x) & mask)
	x -= 1
	e -= math.Float32frombits(math.Float32bits(1) & mask)
	x += t
	z := float32(x * x)
	y := fma32(logP0, x, logP1)
	y = fma32(y, x, logP2)
	y = fma32(y, x, logP3)
	y = fma32(y, x, logP4)
	y = fma32(y, x, logP5)
	y = fma32(y, x, logP6)
	y = fma32(y, x, logP7)
	y = fma32(y, x, logP8)
	y = float32(y * x)
	y = fma32(y, z, float32(e*logQ1)) // (y*z) + e*q1: GCC contracts the first product
	y -= float32(z * 0.5)
	x += y
	return fma32(e, logQ2, x)
}

// sincos256 is avx_mathfun.h's sincos256_ps for one lane, for x ≥ 0 (θ = 2π·u2 here, so the
// input sign bit is always clear). Quadrant selection and signs use masks, as the original does.
func sincos256(x float32) (sin, cos float32) {
	j := int32(float32(x * cephesFOPI)) // cvttps: truncation
	j = (j + 1) &^ 1
	y := float32(j)
	swapSin := uint32(j&4) << 29             // sign flip of sin
	signCos := uint32(^(j-2)&4) << 29        // sign flip of cos
	polyMask := uint32(int32((j&2)-1) >> 31) // all ones when j&2 == 0: sin from the sin polynomial
	x = fma32(y, minusDP1, x)                // extended-precision range reduction
	x = fma32(y, minusDP2, x)
	x = fma32(y, minusDP3, x)
	z := float32(x * x)
	yc := fma32(fma32(cosP0, z, cosP1), z, cosP2)
	yc = float32(yc * z)
	yc = fma32(yc, z, -float32(z*0.5))
	yc++
	ys := fma32(fma32(sinP0, z, sinP1), z, sinP2)
	ys = float32(ys * z)
	ys = fma32(ys, x, x)
	bc, bs := math.Float32bits(yc), math.Float32bits(ys)
	sinBits := (bs&polyMask | bc&^polyMask) ^ swapSin
	cosBits := (bc&polyMask | bs&^polyMask) ^ signCos
	return math.Float32frombits(sinBits), math.Float32frombits(cosBits)
}

// box16 is normal_fill_16_AVX2 with mean 0 and std 1: d holds 16 uniforms in [0, 1) and becomes
// 16 normals. Pair j uses u1 = 1 − d[j] ∈ [2^-24, 1] (never 0, so the log is finite) and
// u2 = d[j+8]. The final "+ 0" is torch's fmadd(n, std, mean) with mean +0, which turns −0
// (from u1 = 1, where the radius is sqrt(−0) = −0) into +0.
func box16(d *[16]float32) {
	for j := range 8 {
		u1 := 1 - d[j]
		u2 := d[j+8]
		r := float32(math.Sqrt(float64(-2 * log256(u1)))) // sqrt via float64 is correctly rounded
		s, c := sincos256(float32(twoPi32 * u2))
		d[j] = float32(r*c) + 0
		d[j+8] = float32(r*s) + 0
	}
}
