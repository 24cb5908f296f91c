package half

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"testing"
)

// The references below are written from the IEEE 754 definition in float64
// (sign, biased exponent, mantissa, round to the nearest multiple of the
// local spacing with ties to even) and share no code or bit tricks with the
// package. One format description covers both binary16 and bfloat16.
type format struct {
	name string
	mant int // stored mantissa bits
	bias int // exponent bias; the exponent field is all ones at 2*bias+1
}

var (
	binary16 = format{"binary16", 10, 15}
	bfloat16 = format{"bfloat16", 7, 127}
)

func (f format) expMax() int   { return 2*f.bias + 1 }
func (f format) inf() uint16   { return uint16(f.expMax()) << f.mant }
func (f format) quiet() uint16 { return 1 << (f.mant - 1) }

// maxPlusUlp is 2^(bias+1): the first value past the largest finite one,
// i.e. where Inf would sit if the exponent range went on.
func (f format) maxPlusUlp() float64 { return math.Ldexp(1, f.bias+1) }

// refDecode returns the value of bit pattern h; nan reports a NaN, in which
// case v is meaningless.
func (f format) refDecode(h uint16) (v float64, nan bool) {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	e := int(h>>f.mant) & f.expMax()
	m := int(h) & (1<<f.mant - 1)
	switch {
	case e == f.expMax() && m == 0:
		return math.Inf(int(sign)), false
	case e == f.expMax():
		return 0, true
	case e == 0: // subnormal: m * 2^(1-bias-mant)
		return sign * math.Ldexp(float64(m), 1-f.bias-f.mant), false
	default: // normal: (2^mant + m) * 2^(e-bias-mant)
		return sign * math.Ldexp(float64(int(1)<<f.mant+m), e-f.bias-f.mant), false
	}
}

// refEncode rounds a non-NaN x to the format with round-to-nearest,
// ties-to-even, and returns its bit pattern.
func (f format) refEncode(x float64) uint16 {
	var sign uint16
	if math.Signbit(x) {
		sign = 0x8000
		x = -x
	}
	if math.IsInf(x, 0) {
		return sign | f.inf()
	}
	// Spacing of representable values around x is 2^e: mant+1 significant
	// bits for normals, and never finer than the subnormal spacing.
	_, exp := math.Frexp(x) // x = frac * 2^exp, frac in [0.5, 1)
	e := max(exp-(f.mant+1), 1-f.bias-f.mant)
	q := math.Ldexp(x, -e) // exact: power-of-two scaling
	n := math.Floor(q)
	if r := q - n; r > 0.5 || (r == 0.5 && math.Mod(n, 2) == 1) {
		n++
	}
	v := math.Ldexp(n, e)
	switch {
	case v >= f.maxPlusUlp(): // rounded past the largest finite value
		return sign | f.inf()
	case v < math.Ldexp(1, 1-f.bias): // subnormal (or zero): the bits are n
		return sign | uint16(n)
	}
	frac, exp := math.Frexp(v)
	return sign | uint16(exp-1+f.bias)<<f.mant | uint16(frac*float64(int(2)<<f.mant)-float64(int(1)<<f.mant))
}

// checkNaNEncode checks the NaN rules for encoding a float32 NaN with bits
// in: result is NaN, quiet, same sign, and keeps the payload bits that fit.
func (f format) checkNaNEncode(t *testing.T, in uint32, got uint16) bool {
	t.Helper()
	mask := uint16(1<<f.mant - 1)
	wantPayload := uint16(in>>(23-f.mant)) & mask
	switch {
	case got&0x7fff&^mask != f.inf():
		t.Errorf("%s: NaN %#08x -> %#04x: exponent not all ones", f.name, in, got)
	case got&mask == 0:
		t.Errorf("%s: NaN %#08x -> %#04x: became Inf", f.name, in, got)
	case got&f.quiet() == 0:
		t.Errorf("%s: NaN %#08x -> %#04x: not quiet", f.name, in, got)
	case got&0x8000 != uint16(in>>16)&0x8000:
		t.Errorf("%s: NaN %#08x -> %#04x: sign lost", f.name, in, got)
	case got&mask != wantPayload|f.quiet():
		t.Errorf("%s: NaN %#08x -> %#04x: payload not kept (want %#x)", f.name, in, got, wantPayload|f.quiet())
	default:
		return true
	}
	return false
}

// checkEncode compares one conversion against the reference.
func (f format) checkEncode(t *testing.T, x float32, got uint16) bool {
	t.Helper()
	in := math.Float32bits(x)
	if math.IsNaN(float64(x)) {
		return f.checkNaNEncode(t, in, got)
	}
	if want := f.refEncode(float64(x)); got != want {
		t.Errorf("%s: encode %g (%#08x) = %#04x, want %#04x", f.name, x, in, got, want)
		return false
	}
	return true
}

type codec struct {
	format
	enc func(float32) uint16
	dec func(uint16) float32
}

var codecs = []codec{
	{binary16, FromFloat32, ToFloat32},
	{bfloat16, BFloat16FromFloat32, BFloat16ToFloat32},
}

// Every bit pattern decodes to exactly the value the definition gives; NaNs
// keep sign and payload bit for bit (so quiet stays quiet, signalling stays
// signalling).
func TestDecodeExhaustive(t *testing.T) {
	for _, c := range codecs {
		for i := range 1 << 16 {
			h := uint16(i)
			got := c.dec(h)
			gb := math.Float32bits(got)
			want, nan := c.refDecode(h)
			if nan {
				wantMant := uint32(h) & (1<<c.mant - 1) << (23 - c.mant)
				if !math.IsNaN(float64(got)) || gb>>31 != uint32(h>>15) || gb&0x7fffff != wantMant {
					t.Errorf("%s: decode NaN %#04x = %#08x, want NaN sign %d mantissa %#x", c.name, h, gb, h>>15, wantMant)
				}
				continue
			}
			if float64(float32(want)) != want {
				t.Fatalf("%s: reference value for %#04x not exact in float32", c.name, h)
			}
			if wb := math.Float32bits(float32(want)); gb != wb {
				t.Errorf("%s: decode %#04x = %#08x (%g), want %#08x (%g)", c.name, h, gb, got, wb, want)
			}
		}
	}
}

// Decoding then encoding every pattern is the identity, except that NaNs
// come back quieted.
func TestRoundTripExhaustive(t *testing.T) {
	for _, c := range codecs {
		for i := range 1 << 16 {
			h := uint16(i)
			x := c.dec(h)
			got := c.enc(x)
			want := h
			if _, nan := c.refDecode(h); nan {
				want |= c.quiet()
			}
			if got != want {
				t.Errorf("%s: encode(decode(%#04x)) = %#04x, want %#04x", c.name, h, got, want)
			}
			c.checkEncode(t, x, got)
		}
	}
}

// For every pair of adjacent finite values (lo, hi), the exact midpoint must
// go to the one with the even mantissa, and one float32 ulp either side must
// go to the nearer one. The pair (max finite, Inf) is included with hi taken
// as 2^(bias+1), which makes ties at the top round to Inf. The pair (0, min
// subnormal) covers 2^-25 -> 0 for binary16.
func TestMidpoints(t *testing.T) {
	for _, c := range codecs {
		last := c.inf() - 1 // largest finite
		for i := range uint32(last) + 1 {
			lo := uint16(i)
			hi := lo + 1
			lv, _ := c.refDecode(lo)
			hv, _ := c.refDecode(hi)
			if hi == c.inf() {
				hv = c.maxPlusUlp()
			}
			mid := (lv + hv) / 2
			m := float32(mid)
			if float64(m) != mid {
				t.Fatalf("%s: midpoint of %#04x,%#04x not exact in float32", c.name, lo, hi)
			}
			even := lo
			if lo&1 == 1 {
				even = hi
			}
			for _, sign := range []uint16{0, 0x8000} {
				s := float32(1)
				if sign != 0 {
					s = -1
				}
				cases := []struct {
					x    float32
					want uint16
				}{
					{s * m, sign | even},
					{s * math.Nextafter32(m, 0), sign | lo},
					{s * math.Nextafter32(m, float32(math.Inf(1))), sign | hi},
				}
				for _, tc := range cases {
					got := c.enc(tc.x)
					if got != tc.want {
						t.Errorf("%s: encode %g (%#08x) = %#04x, want %#04x", c.name, tc.x, math.Float32bits(tc.x), got, tc.want)
					}
					// Also pins the reference to the same answers.
					if ref := c.refEncode(float64(tc.x)); ref != tc.want {
						t.Fatalf("%s: reference encode %g = %#04x, want %#04x", c.name, tc.x, ref, tc.want)
					}
				}
			}
			if t.Failed() {
				return
			}
		}
	}
}

// sweepStep visits every 997th float32 bit pattern (997 is prime, so all low
// bit patterns get exercised): about 4.3 million values per format.
const sweepStep = 997

func TestSweepFloat32(t *testing.T) {
	for _, c := range codecs {
		bad := 0
		for i := uint64(0); i < 1<<32; i += sweepStep {
			x := math.Float32frombits(uint32(i))
			if !c.checkEncode(t, x, c.enc(x)) {
				if bad++; bad > 20 {
					t.Fatalf("%s: too many failures", c.name)
				}
			}
		}
	}
}

// TestExhaustiveFloat32 checks all 2^32 float32 inputs against the reference.
// It takes about 3 minutes on 2 cores, so it only runs with HALF_EXHAUSTIVE=1.
func TestExhaustiveFloat32(t *testing.T) {
	if os.Getenv("HALF_EXHAUSTIVE") == "" {
		t.Skip("set HALF_EXHAUSTIVE=1 to check all 2^32 inputs")
	}
	for _, c := range codecs {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var fails []uint32
		workers := runtime.GOMAXPROCS(0)
		const chunk = 1 << 20
		next := make(chan uint64)
		go func() {
			for i := uint64(0); i < 1<<32; i += chunk {
				next <- i
			}
			close(next)
		}()
		for range workers {
			wg.Go(func() {
				for start := range next {
					for i := start; i < start+chunk; i++ {
						u := uint32(i)
						x := math.Float32frombits(u)
						got := c.enc(x)
						var ok bool
						if math.IsNaN(float64(x)) {
							mask := uint16(1<<c.mant - 1)
							ok = got&0x7fff&^mask == c.inf() && got&c.quiet() != 0 &&
								got&0x8000 == uint16(u>>16)&0x8000 &&
								got&mask == uint16(u>>(23-c.mant))&mask|c.quiet()
						} else {
							ok = got == c.refEncode(float64(x))
						}
						if !ok {
							mu.Lock()
							if len(fails) < 20 {
								fails = append(fails, u)
							}
							mu.Unlock()
						}
					}
				}
			})
		}
		wg.Wait()
		for _, u := range fails {
			x := math.Float32frombits(u)
			c.checkEncode(t, x, c.enc(x))
		}
		if len(fails) > 0 {
			t.Fatalf("%s: %d+ mismatches", c.name, len(fails))
		}
	}
}

func TestNaN(t *testing.T) {
	payloads := []uint32{
		0x7fc00000, // canonical quiet NaN
		0x7f800001, // signalling, payload only in bits binary16/bfloat16 drop
		0x7f800fff,
		0x7f801fff, // just below the lowest binary16 payload bit
		0x7f802000, // exactly the lowest binary16 payload bit
		0x7f810000, // exactly the lowest bfloat16 payload bit
		0x7fa00000, // signalling with a high payload bit
		0x7fbfffff, // largest signalling payload
		0x7fffffff,
		0x7fd55555,
		0x7faaaaaa,
	}
	for _, c := range codecs {
		for _, p := range payloads {
			for _, sign := range []uint32{0, 0x80000000} {
				in := p | sign
				x := math.Float32frombits(in)
				got := c.enc(x)
				c.checkNaNEncode(t, in, got)
				if back := c.dec(got); !math.IsNaN(float64(back)) {
					t.Errorf("%s: NaN %#08x round trip lost NaN: %#04x -> %g", c.name, in, got, back)
				}
			}
		}
		// Every NaN pattern decodes to a NaN with the same payload and
		// re-encodes to itself (quieted).
		for m := uint16(1); m < 1<<c.mant; m++ {
			h := c.inf() | m
			if got, want := c.enc(c.dec(h)), h|c.quiet(); got != want {
				t.Errorf("%s: NaN %#04x round trip = %#04x, want %#04x", c.name, h, got, want)
			}
		}
	}
}

func TestFloat16Special(t *testing.T) {
	inf := float32(math.Inf(1))
	tests := []struct {
		name string
		x    float32
		want uint16
	}{
		{"+0", 0, 0x0000},
		{"-0", float32(math.Copysign(0, -1)), 0x8000},
		{"+Inf", inf, 0x7c00},
		{"-Inf", -inf, 0xfc00},
		{"max finite", 65504, 0x7bff},
		{"just above max", math.Nextafter32(65504, inf), 0x7bff},
		{"65519", 65519, 0x7bff},
		{"just below 65520", math.Nextafter32(65520, 0), 0x7bff},
		{"65520 (tie to Inf)", 65520, 0x7c00},
		{"-65520", -65520, 0xfc00},
		{"just above 65520", math.Nextafter32(65520, inf), 0x7c00},
		{"65536", 65536, 0x7c00},
		{"1e10", 1e10, 0x7c00},
		{"MaxFloat32", math.MaxFloat32, 0x7c00},
		{"-MaxFloat32", -math.MaxFloat32, 0xfc00},
		{"2^-24 (min subnormal)", 0x1p-24, 0x0001},
		{"-2^-24", -0x1p-24, 0x8001},
		{"2^-25 (tie to 0)", 0x1p-25, 0x0000},
		{"-2^-25 (tie to -0)", -0x1p-25, 0x8000},
		{"just above 2^-25", math.Nextafter32(0x1p-25, 1), 0x0001},
		{"just below 2^-25", math.Nextafter32(0x1p-25, 0), 0x0000},
		{"1.5*2^-24 (tie to 2)", 0x1.8p-24, 0x0002},
		{"2.5*2^-24 (tie to 2)", 0x1.4p-23, 0x0002},
		{"smallest float32 subnormal", math.SmallestNonzeroFloat32, 0x0000},
		{"-smallest float32 subnormal", -math.SmallestNonzeroFloat32, 0x8000},
		{"smallest float32 normal", 0x1p-126, 0x0000},
		{"max subnormal", 1023 * 0x1p-24, 0x03ff},
		{"max subnormal + half ulp (tie to min normal)", 1023.5 * 0x1p-24, 0x0400},
		{"just below that tie", math.Nextafter32(1023.5*0x1p-24, 0), 0x03ff},
		{"2^-14 (min normal)", 0x1p-14, 0x0400},
		{"just below 2^-14", math.Nextafter32(0x1p-14, 0), 0x0400},
		{"1 + 2^-11 (tie to 1)", 1 + 0x1p-11, 0x3c00},
		{"1 + 3*2^-11 (tie to 1+2^-9)", 1 + 3*0x1p-11, 0x3c02},
		{"2047.5 rounds to 2048", 2047.5, 0x6800},
	}
	for _, tc := range tests {
		if got := FromFloat32(tc.x); got != tc.want {
			t.Errorf("FromFloat32(%s = %g) = %#04x, want %#04x", tc.name, tc.x, got, tc.want)
		}
		if ref := binary16.refEncode(float64(tc.x)); ref != tc.want {
			t.Errorf("reference(%s) = %#04x, want %#04x", tc.name, ref, tc.want)
		}
	}
}

func TestBFloat16Special(t *testing.T) {
	f := math.Float32frombits
	inf := float32(math.Inf(1))
	tests := []struct {
		name string
		x    float32
		want uint16
	}{
		{"+0", 0, 0x0000},
		{"-0", float32(math.Copysign(0, -1)), 0x8000},
		{"+Inf", inf, 0x7f80},
		{"-Inf", -inf, 0xff80},
		{"largest finite bf16", f(0x7f7f0000), 0x7f7f},
		{"below the top tie", f(0x7f7f7fff), 0x7f7f},
		{"top tie rounds to Inf", f(0x7f7f8000), 0x7f80},
		{"MaxFloat32 rounds to Inf", math.MaxFloat32, 0x7f80},
		{"-MaxFloat32 rounds to -Inf", -math.MaxFloat32, 0xff80},
		{"tie to even (down)", f(0x7f7e8000), 0x7f7e},
		{"tie to even (up)", f(0x3f818000), 0x3f82},
		{"tie to even (down, 1.0)", f(0x3f808000), 0x3f80},
		{"above tie", f(0x3f808001), 0x3f81},
		{"smallest float32 subnormal", math.SmallestNonzeroFloat32, 0x0000},
		{"bf16 subnormal tie to even", f(0x00018000), 0x0002},
		{"largest float32 subnormal rounds to min normal", f(0x007fffff), 0x0080},
	}
	for _, tc := range tests {
		if got := BFloat16FromFloat32(tc.x); got != tc.want {
			t.Errorf("BFloat16FromFloat32(%s = %g) = %#04x, want %#04x", tc.name, tc.x, got, tc.want)
		}
		if ref := bfloat16.refEncode(float64(tc.x)); ref != tc.want {
			t.Errorf("reference(%s) = %#04x, want %#04x", tc.name, ref, tc.want)
		}
	}
}

// Values from the IEEE 754 / bfloat16 literature.
func TestPublishedValues(t *testing.T) {
	exact16 := []struct {
		x float32
		h uint16
	}{
		{1, 0x3c00},
		{-2, 0xc000},
		{65504, 0x7bff},
		{0x1p-14, 0x0400},
		{0x1p-24, 0x0001},
		{0.5, 0x3800},
		{0x3ff * 0x1p-24, 0x03ff},
	}
	for _, tc := range exact16 {
		if got := FromFloat32(tc.x); got != tc.h {
			t.Errorf("FromFloat32(%g) = %#04x, want %#04x", tc.x, got, tc.h)
		}
		if got := ToFloat32(tc.h); got != tc.x {
			t.Errorf("ToFloat32(%#04x) = %g, want %g", tc.h, got, tc.x)
		}
	}
	rounded16 := []struct {
		x float32
		h uint16
	}{
		{0.1, 0x2e66},
		{1.0 / 3, 0x3555},
		{math.Pi, 0x4248},
	}
	for _, tc := range rounded16 {
		if got := FromFloat32(tc.x); got != tc.h {
			t.Errorf("FromFloat32(%g) = %#04x, want %#04x", tc.x, got, tc.h)
		}
	}
	if got := ToFloat32(0x3555); got != 0.333251953125 {
		t.Errorf("ToFloat32(0x3555) = %g, want 0.333251953125", got)
	}
	if got := BFloat16FromFloat32(1); got != 0x3f80 {
		t.Errorf("BFloat16FromFloat32(1) = %#04x, want 0x3f80", got)
	}
	if got := BFloat16ToFloat32(0x3f80); got != 1 {
		t.Errorf("BFloat16ToFloat32(0x3f80) = %g, want 1", got)
	}
	if got := BFloat16FromFloat32(math.Pi); got != 0x4049 {
		t.Errorf("BFloat16FromFloat32(pi) = %#04x, want 0x4049", got)
	}
	if got := BFloat16FromFloat32(-2); got != 0xc000 {
		t.Errorf("BFloat16FromFloat32(-2) = %#04x, want 0xc000", got)
	}
}

// sliceInputs mixes ordinary values with every special case, in an order
// that puts slow-path elements at odd positions and the tail.
func sliceInputs() []float32 {
	r := rand.New(rand.NewPCG(7, 11))
	var xs []float32
	for range 5000 {
		xs = append(xs, float32(r.NormFloat64()*math.Exp2(float64(r.IntN(60)-30))))
		xs = append(xs, math.Float32frombits(r.Uint32()))
	}
	inf := float32(math.Inf(1))
	for _, x := range []float32{
		0, 0.1, 65504, 65520, 65536, 0x1p-25, 0x1p-24, 0x1p-14, 1023.5 * 0x1p-24,
		math.MaxFloat32, math.SmallestNonzeroFloat32, 0x1p-126, inf,
		math.Float32frombits(0x7f800001), math.Float32frombits(0x7fc00000),
	} {
		xs = append(xs, x, -x, math.Nextafter32(x, 0), math.Nextafter32(x, inf), -math.Nextafter32(x, inf))
	}
	return xs
}

func TestSlicesMatchScalar(t *testing.T) {
	src := sliceInputs()
	h := make([]uint16, len(src)+3)
	const guard = 0xabcd
	for i := range h {
		h[i] = guard
	}
	f := make([]float32, len(src)+3)
	for i := range f {
		f[i] = 42
	}

	for _, c := range []struct {
		name string
		enc  func([]uint16, []float32) error
		dec  func([]float32, []uint16) error
		senc func(float32) uint16
		sdec func(uint16) float32
	}{
		{"float16", EncodeFloat16, DecodeFloat16, FromFloat32, ToFloat32},
		{"bfloat16", EncodeBFloat16, DecodeBFloat16, BFloat16FromFloat32, BFloat16ToFloat32},
	} {
		if err := c.enc(h, src); err != nil {
			t.Fatalf("%s: encode: %v", c.name, err)
		}
		for i, x := range src {
			if want := c.senc(x); h[i] != want {
				t.Fatalf("%s: encode[%d] (%#08x) = %#04x, scalar %#04x", c.name, i, math.Float32bits(x), h[i], want)
			}
		}
		for _, g := range h[len(src):] {
			if g != guard {
				t.Fatalf("%s: encode wrote past len(src)", c.name)
			}
		}

		// Decode every pattern, plus the encoded data.
		all := make([]uint16, 1<<16)
		for i := range all {
			all[i] = uint16(i)
		}
		all = append(all, h[:len(src)]...)
		out := make([]float32, len(all))
		if err := c.dec(out, all); err != nil {
			t.Fatalf("%s: decode: %v", c.name, err)
		}
		for i, v := range all {
			if got, want := math.Float32bits(out[i]), math.Float32bits(c.sdec(v)); got != want {
				t.Fatalf("%s: decode[%d] (%#04x) = %#08x, scalar %#08x", c.name, i, v, got, want)
			}
		}
		if err := c.dec(f, h[:len(src)]); err != nil {
			t.Fatalf("%s: decode: %v", c.name, err)
		}
		for _, g := range f[len(src):] {
			if g != 42 {
				t.Fatalf("%s: decode wrote past len(src)", c.name)
			}
		}

		// The same float32 sweep as TestSweepFloat32, through the slice
		// loop, which has its own copy of the scalar logic.
		sweep := make([]float32, 0, 1<<32/sweepStep+1)
		for i := uint64(0); i < 1<<32; i += sweepStep {
			sweep = append(sweep, math.Float32frombits(uint32(i)))
		}
		sh := make([]uint16, len(sweep))
		if err := c.enc(sh, sweep); err != nil {
			t.Fatalf("%s: encode sweep: %v", c.name, err)
		}
		for i, x := range sweep {
			if want := c.senc(x); sh[i] != want {
				t.Fatalf("%s: encode sweep (%#08x) = %#04x, scalar %#04x", c.name, math.Float32bits(x), sh[i], want)
			}
		}

		// Odd lengths and empty input.
		for _, n := range []int{0, 1, 2, 3, 5} {
			if err := c.enc(h[:n], src[:n]); err != nil {
				t.Errorf("%s: encode len %d: %v", c.name, n, err)
			}
			if err := c.dec(f[:n], h[:n]); err != nil {
				t.Errorf("%s: decode len %d: %v", c.name, n, err)
			}
		}
		if err := c.enc(nil, nil); err != nil {
			t.Errorf("%s: encode nil: %v", c.name, err)
		}
		if err := c.dec(nil, nil); err != nil {
			t.Errorf("%s: decode nil: %v", c.name, err)
		}
	}
}

func TestSlicesShortDst(t *testing.T) {
	src := []float32{1, 2, 3}
	h := []uint16{7, 7}
	f := []float32{7, 7}
	srcH := []uint16{0x3c00, 0x4000, 0x4200}
	check := func(name string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: short dst: no error", name)
		} else if !errors.Is(err, ErrShortDst) {
			t.Errorf("%s: error %v does not wrap ErrShortDst", name, err)
		}
	}
	check("EncodeFloat16", EncodeFloat16(h, src))
	check("EncodeBFloat16", EncodeBFloat16(h, src))
	check("DecodeFloat16", DecodeFloat16(f, srcH))
	check("DecodeBFloat16", DecodeBFloat16(f, srcH))
	check("EncodeFloat16 nil dst", EncodeFloat16(nil, src))
	check("DecodeFloat16 nil dst", DecodeFloat16(nil, srcH))
	if h[0] != 7 || h[1] != 7 || f[0] != 7 || f[1] != 7 {
		t.Errorf("short dst was written: %v %v", h, f)
	}
}

func TestAsBytes(t *testing.T) {
	u := []uint16{0x3c00, 0x1234}
	b := AsBytes(u)
	if len(b) != 4 {
		t.Fatalf("len = %d, want 4", len(b))
	}
	// ONNX tensors are little-endian; so is every host this runs on.
	if want := []byte{0x00, 0x3c, 0x34, 0x12}; string(b) != string(want) {
		t.Errorf("bytes = % x, want % x", b, want)
	}
	b[0] = 0xff
	if u[0] != 0x3cff {
		t.Errorf("AsBytes copied: u[0] = %#04x after write through bytes", u[0])
	}
	if got := AsBytes(nil); len(got) != 0 {
		t.Errorf("AsBytes(nil) has len %d", len(got))
	}
	if got := AsBytes(u[1:]); len(got) != 2 || got[0] != 0x34 {
		t.Errorf("AsBytes(sub-slice) = % x", got)
	}
}

func TestNoAllocs(t *testing.T) {
	src := sliceInputs()
	h := make([]uint16, len(src))
	f := make([]float32, len(src))
	if n := testing.AllocsPerRun(10, func() {
		_ = EncodeFloat16(h, src)
		_ = DecodeFloat16(f, h)
		_ = EncodeBFloat16(h, src)
		_ = DecodeBFloat16(f, h)
		_ = AsBytes(h)
	}); n != 0 {
		t.Errorf("allocs per run = %v, want 0", n)
	}
}
