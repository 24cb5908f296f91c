package rng

import (
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"testing"
)

// exactFMA32 is a·b + c rounded once to float32 (nearest, ties to even), computed with math/big:
// 1100 bits hold any sum of a float32 product and a float32 exactly.
func exactFMA32(a, b, c float32) float32 {
	x := new(big.Float).SetPrec(1100).SetFloat64(float64(a))
	x.Mul(x, new(big.Float).SetFloat64(float64(b)))
	x.Add(x, new(big.Float).SetFloat64(float64(c)))
	f, _ := x.Float32() // rounds to nearest even, subnormals included
	return f
}

// naiveFMA32 rounds the float64 sum to float32: twice in all (the bug fma32 avoids).
func naiveFMA32(a, b, c float32) float32 {
	return float32(math.FMA(float64(a), float64(b), float64(c)))
}

type fmaCase struct{ a, b, c float32 }

// adversarialFMA builds operands whose exact a·b + c lies a hair (far below a float64 ulp) off a
// float32 rounding midpoint, so that rounding to float64 first lands on the midpoint and the
// second rounding goes the wrong way:
//
//   - c carries the bulk and a·b = ±2^k·(1 − 2^-46) adds half an ulp of c minus 2^(k−46);
//   - a·b = (1 + 2^-p)(1 + 2^-(24−p)) is itself a midpoint and c = ±2^-60 (scaled) nudges it;
//   - the first again with a subnormal c, so that the result is a float32 subnormal.
func adversarialFMA(r *rand.Rand) []fmaCase {
	var cs []fmaCase
	sign := func() float32 { return float32(1 - 2*r.IntN(2)) }
	for range 2000 {
		e := r.IntN(200) - 100                                  // exponent of c
		m := uint32(r.IntN(1 << 23))                            // mantissa of c
		c := math.Float32frombits(uint32(e+127)<<23|m) * sign() // ±(1+m·2^-23)·2^e
		i := r.IntN(40) - 20
		a := float32(math.Ldexp(1+0x1p-23, i)) * sign()
		b := float32(math.Ldexp(1-0x1p-23, e-24-i)) * sign()
		cs = append(cs, fmaCase{a, b, c})
	}
	for range 2000 {
		p := 1 + r.IntN(22)
		e := r.IntN(200) - 100
		s := sign()
		a := float32(math.Ldexp(1+math.Ldexp(1, -p), e/2)) * s
		b := float32(math.Ldexp(1+math.Ldexp(1, p-24), e-e/2))
		c := float32(math.Ldexp(1, e-60+r.IntN(6))) * sign()
		cs = append(cs, fmaCase{a, b, c})
	}
	for range 1000 { // family 1 with a subnormal c, whose half ulp is 2^-150: a subnormal result
		c := math.Float32frombits(uint32(r.IntN(1<<23))) * sign()
		i := -30 - r.IntN(70) // a and b both stay normal
		a := float32(math.Ldexp(1+0x1p-23, i)) * sign()
		b := float32(math.Ldexp(1-0x1p-23, -150-i)) * sign()
		cs = append(cs, fmaCase{a, b, c})
	}
	return cs
}

func randomFMA(r *rand.Rand) []fmaCase {
	f := func(emax int) float32 {
		e := r.IntN(2*emax) - emax
		return float32(math.Ldexp(1+r.Float64(), e)) * float32(1-2*r.IntN(2))
	}
	var cs []fmaCase
	for range 20000 {
		a, b := f(60), f(60)
		cs = append(cs, fmaCase{a, b, f(120)})
		cs = append(cs, fmaCase{a, b, -(a * b) * (1 + float32(r.IntN(64)-32)*0x1p-23)}) // cancellation
		cs = append(cs, fmaCase{math.Float32frombits(r.Uint32() & 0x7effffff), f(3), f(3)})
	}
	return cs
}

func TestFMA32(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	adv := adversarialFMA(r)
	naiveWrong := 0
	check := func(name string, cs []fmaCase) {
		for _, c := range cs {
			want := exactFMA32(c.a, c.b, c.c)
			if math.IsInf(float64(want), 0) {
				continue
			}
			if got := fma32(c.a, c.b, c.c); math.Float32bits(got) != math.Float32bits(want) {
				t.Errorf("%s: fma32(%x, %x, %x) = %x, want %x", name, c.a, c.b, c.c, got, want)
			}
		}
	}
	check("adversarial", adv)
	check("random", randomFMA(r))
	for _, c := range adv {
		if naiveFMA32(c.a, c.b, c.c) != exactFMA32(c.a, c.b, c.c) {
			naiveWrong++
		}
	}
	// The adversarial set must actually defeat plain double rounding, or it proves nothing.
	if naiveWrong < len(adv)/4 {
		t.Errorf("only %d of %d adversarial cases defeat float32(math.FMA(...)); the generator is broken", naiveWrong, len(adv))
	}
	t.Logf("%d adversarial cases, %d of them wrong with float32(math.FMA)", len(adv), naiveWrong)
}

// TestFMA32Examples pins two hand-made cases and the signs of zero.
func TestFMA32Examples(t *testing.T) {
	one := float32(1)
	odd := math.Float32frombits(math.Float32bits(one) + 1) // 1 + 2^-23
	cases := []struct{ a, b, c, want float32 }{
		// 1 + 2^-23 − (2^-24 − 2^-70): just above the midpoint 1 + 2^-24, so 1 + 2^-23 (naive: 1).
		{-(1 + 0x1p-23) * 0x1p-12, (1 - 0x1p-23) * 0x1p-12, odd, odd},
		// (1 + 2^-12)² = 1 + 2^-11 + 2^-24, a midpoint; + 2^-60 rounds up (naive: ties to even, down).
		{1 + 0x1p-12, 1 + 0x1p-12, 0x1p-60, 1 + 0x1p-11 + 0x1p-23},
		{1 + 0x1p-12, 1 + 0x1p-12, -0x1p-60, 1 + 0x1p-11},
		{1 + 0x1p-12, 1 + 0x1p-12, 0, 1 + 0x1p-11}, // a true tie: to even
		{2, 3, -6, 0},
	}
	for _, c := range cases {
		if got := fma32(c.a, c.b, c.c); math.Float32bits(got) != math.Float32bits(c.want) {
			t.Errorf("fma32(%x, %x, %x) = %x, want %x", c.a, c.b, c.c, got, c.want)
		}
	}
	negZero := float32(math.Copysign(0, -1))
	if got := fma32(negZero, 1, negZero); math.Float32bits(got) != 0x80000000 {
		t.Errorf("fma32(-0, 1, -0) = %x, want -0", got)
	}
	if got := fma32(negZero, 1, 0); math.Float32bits(got) != 0 {
		t.Errorf("fma32(-0, 1, +0) = %x, want +0", got)
	}
}

// TestConstants checks the hex constants against the decimal literals of avx_mathfun.h, rounded as
// C rounds them (decimal → double → float).
func TestConstants(t *testing.T) {
	for _, c := range []struct {
		got float32
		lit string
	}{
		{cephesSQRTHF, "0.707106781186547524"}, {logP0, "7.0376836292E-2"}, {logP1, "-1.1514610310E-1"},
		{logP2, "1.1676998740E-1"}, {logP3, "-1.2420140846E-1"}, {logP4, "1.4249322787E-1"},
		{logP5, "-1.6668057665E-1"}, {logP6, "2.0000714765E-1"}, {logP7, "-2.4999993993E-1"},
		{logP8, "3.3333331174E-1"}, {logQ1, "-2.12194440e-4"}, {logQ2, "0.693359375"},
		{minusDP1, "-0.78515625"}, {minusDP2, "-2.4187564849853515625e-4"}, {minusDP3, "-3.77489497744594108e-8"},
		{sinP0, "-1.9515295891E-4"}, {sinP1, "8.3321608736E-3"}, {sinP2, "-1.6666654611E-1"},
		{cosP0, "2.443315711809948E-005"}, {cosP1, "-1.388731625493765E-003"}, {cosP2, "4.166664568298827E-002"},
		{cephesFOPI, "1.27323954473516"},
		{twoPow32Inv, "2.3283064e-10"},
	} {
		d, err := strconv.ParseFloat(c.lit, 64)
		if err != nil {
			t.Fatal(err)
		}
		if want := float32(d); c.got != want {
			t.Errorf("constant for %s = %x, want %x", c.lit, c.got, want)
		}
	}
	if want := float32(2 * math.Pi); twoPi32 != want {
		t.Errorf("twoPi32 = %x, want %x", twoPi32, want)
	}
	inv, twoPi := 2.3283064e-10, 6.2831855
	if want := float32(inv * twoPi); twoPow32Inv2Pi != want || halfTwoPow32I2Pi != want/2 || halfTwoPow32Inv != twoPow32Inv/2 {
		t.Errorf("Philox constants %x %x %x, want %x and halves", twoPow32Inv2Pi, halfTwoPow32I2Pi, halfTwoPow32Inv, want)
	}
}
