package rng

import (
	"fmt"
	"math"
	"testing"
)

// moments checks that v looks standard normal: finite, mean and variance within 6 standard errors.
func moments(t *testing.T, what string, v []float32) {
	t.Helper()
	var sum, sq float64
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			t.Fatalf("%s[%d] = %v", what, i, x)
		}
		sum += float64(x)
		sq += float64(x) * float64(x)
	}
	n := float64(len(v))
	mean := sum / n
	variance := sq/n - mean*mean
	if math.Abs(mean) > 6/math.Sqrt(n) || math.Abs(variance-1) > 6*math.Sqrt(2/n) {
		t.Errorf("%s: mean %.4f, variance %.4f over %d values", what, mean, variance, len(v))
	}
}

func TestMoments(t *testing.T) {
	seeds := []uint64{0, 1, 2, 3, 42, 1234, 99999, 1<<31 - 1, 1 << 31, 1<<32 - 1, 1<<63 + 12345, math.MaxUint64}
	v := make([]float32, 1<<16)
	for _, s := range seeds {
		NewTorchCPU(s).Randn(v)
		moments(t, fmt.Sprintf("torch-cpu seed %d", s), v)
		NewPhilox(s).Randn(v)
		moments(t, fmt.Sprintf("philox seed %d", s), v)
	}
	// The double path, drawn three values at a time through the cached normal.
	g := NewTorchCPU(5)
	for i := 0; i < len(v); i += 3 {
		g.Randn(v[i:min(len(v), i+3)])
	}
	moments(t, "torch-cpu randn(3) calls", v)
}

// TestLogArgument sweeps every float uniform torch can draw, k·2^-24 for k < 2^24: u1 = 1 − u
// is never 0 (it lies in [2^-24, 1]), and log256 stays finite and close to math.Log there.
func TestLogArgument(t *testing.T) {
	step := 1
	if testing.Short() {
		step = 97
	}
	worst := 0.0
	for k := 0; k < 1<<24; k += step {
		u1 := 1 - float32(k)*0x1p-24
		if !(u1 >= 0x1p-24 && u1 <= 1) {
			t.Fatalf("u1 = %v for k = %d", u1, k)
		}
		l := log256(u1)
		want := math.Log(float64(u1))
		err := math.Abs(float64(l) - want)
		if math.IsNaN(err) || err > 2e-7*math.Max(1, math.Abs(want)) {
			t.Fatalf("log256(%v) = %v, want %v", u1, l, want)
		}
		worst = max(worst, err)
	}
	t.Logf("log256: worst absolute error %.3g", worst)
}

func TestSinCosAccuracy(t *testing.T) {
	for k := 0; k < 1<<24; k += 61 {
		theta := twoPi32 * float32(k) * 0x1p-24
		s, c := sincos256(theta)
		ws, wc := math.Sincos(float64(theta))
		if math.Abs(float64(s)-ws) > 2e-7 || math.Abs(float64(c)-wc) > 2e-7 {
			t.Fatalf("sincos256(%v) = %v, %v; want %v, %v", theta, s, c, ws, wc)
		}
	}
}

// TestBox16Extremes checks the uniforms at both ends: u = 0 (u1 = 1, radius −0) gives +0, as
// torch's fmadd with mean +0 does, and the largest uniform gives the largest radius, still finite.
func TestBox16Extremes(t *testing.T) {
	var d [16]float32
	box16(&d)
	for i, x := range d {
		if math.Float32bits(x) != 0 {
			t.Errorf("box16(zeros)[%d] = %v (bits %08x), want +0", i, x, math.Float32bits(x))
		}
	}
	top := float32(1<<24-1) * 0x1p-24
	for i := range d {
		d[i] = top
	}
	box16(&d)
	rmax := math.Sqrt(-2 * math.Log(0x1p-24))
	for i, x := range d {
		if math.IsNaN(float64(x)) || math.Abs(float64(x)) > rmax*1.000001 {
			t.Errorf("box16(max uniform)[%d] = %v, want finite with |x| ≤ %.6f", i, x, rmax)
		}
	}
}
