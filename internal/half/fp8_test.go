package half

import (
	"errors"
	"math"
	"testing"
)

// refFloat8 is the closed-form value of an 8-bit float with the given
// exponent and mantissa widths and bias, written from the definition
// (sign × 2^(e-bias) × (1 + m/2^mant), subnormals 2^(1-bias) × m/2^mant) in
// float64. ieee says whether the all-ones exponent means Inf/NaN (E5M2) or
// is an ordinary binade whose top mantissa pattern alone is NaN (E4M3FN).
func refFloat8(b uint8, expBits, mant, bias int, ieee bool) (v float64, nan bool) {
	sign := 1.0
	if b&0x80 != 0 {
		sign = -1
	}
	eMax := 1<<expBits - 1
	e := int(b>>mant) & eMax
	m := int(b) & (1<<mant - 1)
	switch {
	case ieee && e == eMax && m == 0:
		return math.Inf(int(sign)), false
	case ieee && e == eMax, !ieee && e == eMax && m == 1<<mant-1:
		return 0, true
	case e == 0:
		return sign * math.Ldexp(float64(m)/float64(int(1)<<mant), 1-bias), false
	}
	return sign * math.Ldexp(1+float64(m)/float64(int(1)<<mant), e-bias), false
}

func TestFloat8Exhaustive(t *testing.T) {
	for _, f := range []struct {
		name      string
		dec       func(uint8) float32
		slice     func([]float32, []uint8) error
		exp, mant int
		bias      int
		ieee      bool
	}{
		{"E4M3FN", Float8E4M3FNToFloat32, DecodeFloat8E4M3FN, 4, 3, 7, false},
		{"E5M2", Float8E5M2ToFloat32, DecodeFloat8E5M2, 5, 2, 15, true},
	} {
		src := make([]uint8, 256)
		for i := range src {
			src[i] = uint8(i)
		}
		dst := make([]float32, 256)
		if err := f.slice(dst, src); err != nil {
			t.Fatal(err)
		}
		for i := range 256 {
			b := uint8(i)
			got := f.dec(b)
			if math.Float32bits(got) != math.Float32bits(dst[i]) {
				t.Errorf("%s %#02x: slice %v, scalar %v", f.name, b, dst[i], got)
			}
			want, nan := refFloat8(b, f.exp, f.mant, f.bias, f.ieee)
			switch {
			case nan:
				if !math.IsNaN(float64(got)) || math.Signbit(float64(got)) != (b&0x80 != 0) {
					t.Errorf("%s %#02x: %v, want NaN with sign %d", f.name, b, got, b>>7)
				}
			case float64(got) != want || math.Signbit(float64(got)) != math.Signbit(want):
				t.Errorf("%s %#02x: %v, want %v", f.name, b, got, want)
			}
		}
	}
}

// TestFloat8PublishedValues: the table values of "FP8 Formats for Deep Learning".
func TestFloat8PublishedValues(t *testing.T) {
	for _, c := range []struct {
		name string
		got  float32
		want float64
	}{
		{"E4M3FN max 0x7e", Float8E4M3FNToFloat32(0x7e), 448},
		{"E4M3FN -max 0xfe", Float8E4M3FNToFloat32(0xfe), -448},
		{"E4M3FN min normal 0x08", Float8E4M3FNToFloat32(0x08), 0x1p-6},
		{"E4M3FN max subnormal 0x07", Float8E4M3FNToFloat32(0x07), 0.875 * 0x1p-6},
		{"E4M3FN min subnormal 0x01", Float8E4M3FNToFloat32(0x01), 0x1p-9},
		{"E4M3FN one 0x38", Float8E4M3FNToFloat32(0x38), 1},
		{"E4M3FN 0x78 (no Inf)", Float8E4M3FNToFloat32(0x78), 256},
		{"E5M2 max 0x7b", Float8E5M2ToFloat32(0x7b), 57344},
		{"E5M2 min normal 0x04", Float8E5M2ToFloat32(0x04), 0x1p-14},
		{"E5M2 min subnormal 0x01", Float8E5M2ToFloat32(0x01), 0x1p-16},
		{"E5M2 one 0x3c", Float8E5M2ToFloat32(0x3c), 1},
		{"E5M2 Inf 0x7c", Float8E5M2ToFloat32(0x7c), math.Inf(1)},
		{"E5M2 -Inf 0xfc", Float8E5M2ToFloat32(0xfc), math.Inf(-1)},
	} {
		if float64(c.got) != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
	for _, b := range []uint8{0x7f, 0xff} {
		if v := Float8E4M3FNToFloat32(b); !math.IsNaN(float64(v)) {
			t.Errorf("E4M3FN %#02x: %v, want NaN", b, v)
		}
	}
	for _, b := range []uint8{0x7d, 0x7e, 0x7f, 0xfd} {
		if v := Float8E5M2ToFloat32(b); !math.IsNaN(float64(v)) {
			t.Errorf("E5M2 %#02x: %v, want NaN", b, v)
		}
	}
	if v := Float8E4M3FNToFloat32(0x80); v != 0 || !math.Signbit(float64(v)) {
		t.Errorf("E4M3FN 0x80: %v, want -0", v)
	}
}

func TestFloat8ShortDst(t *testing.T) {
	dst := []float32{7}
	for _, dec := range []func([]float32, []uint8) error{DecodeFloat8E4M3FN, DecodeFloat8E5M2} {
		if err := dec(dst, []uint8{0x38, 0x38}); !errors.Is(err, ErrShortDst) || dst[0] != 7 {
			t.Errorf("err %v, dst %v", err, dst)
		}
	}
}
