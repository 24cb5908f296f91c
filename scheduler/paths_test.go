package scheduler

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// opaquePath hides a built-in path's type, so the general formulas run instead of the fast paths.
type opaquePath struct{ Path }

func TestLinearX0IsExactlyXMinusTV(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for range 10000 {
		tt, x, v := r.Float64(), r.NormFloat64()*4, r.NormFloat64()*4
		if got, want := X0FromVelocity(Linear, tt, x, v), x-float64(tt*v); got != want {
			t.Fatalf("X0FromVelocity(Linear, %v, %v, %v) = %v, want x − t·v = %v", tt, x, v, got, want)
		}
		if got, want := EpsFromVelocity(nil, tt, x, v), x+float64((1-tt)*v); got != want {
			t.Fatalf("EpsFromVelocity = %v, want x + (1−t)·v = %v", got, want)
		}
	}
	// float32 slices: torch's float32 sample − σ·model_output, rounded by hand.
	const n = 4096
	x, v, got := make([]float32, n), make([]float32, n), make([]float32, n)
	for j := range x {
		x[j], v[j] = float32(r.NormFloat64()*3), float32(r.NormFloat64()*3)
	}
	sig := float32(0.8927)
	if err := X0FromVelocitySlice(Linear, float64(sig), got, x, v); err != nil {
		t.Fatal(err)
	}
	for j := range x {
		prod := roundF32(new(big.Float).Mul(big.NewFloat(float64(sig)), big.NewFloat(float64(v[j]))))
		want := roundF32(new(big.Float).Sub(big.NewFloat(float64(x[j])), big.NewFloat(float64(prod))))
		if got[j] != want {
			t.Fatalf("x0[%d] = %v, torch float32 gives %v", j, got[j], want)
		}
	}
	if err := X0FromVelocitySlice(Linear, 0.5, got[:3], x, v); err == nil {
		t.Error("length mismatch accepted")
	}
}

func TestPathEndpointsAndDerivatives(t *testing.T) {
	for _, p := range []Path{Linear, Cosine} {
		if p.Alpha(0) != 1 || p.Sigma(0) != 0 || p.Alpha(1) != 0 || p.Sigma(1) != 1 {
			t.Errorf("%s: endpoints α(0)=%v σ(0)=%v α(1)=%v σ(1)=%v", p.Name(), p.Alpha(0), p.Sigma(0), p.Alpha(1), p.Sigma(1))
		}
		for _, tt := range []float64{0.01, 0.2, 0.5, 0.77, 0.99} {
			const h = 1e-6
			da := (p.Alpha(tt+h) - p.Alpha(tt-h)) / (2 * h)
			ds := (p.Sigma(tt+h) - p.Sigma(tt-h)) / (2 * h)
			if math.Abs(da-p.DAlpha(tt)) > 1e-8 || math.Abs(ds-p.DSigma(tt)) > 1e-8 {
				t.Errorf("%s t=%v: α' %v vs %v, σ' %v vs %v", p.Name(), tt, p.DAlpha(tt), da, p.DSigma(tt), ds)
			}
		}
	}
}

func TestConversionsRoundTrip(t *testing.T) {
	paths := []Path{Linear, Cosine, opaquePath{Linear}, opaquePath{Cosine}}
	r := rand.New(rand.NewPCG(2, 2))
	close := func(a, b float64) bool { return math.Abs(a-b) <= 1e-12*(1+math.Abs(b)) }
	for _, p := range paths {
		for _, tt := range []float64{0.05, 0.3, 0.5, 0.8, 0.97} {
			al, s, da, ds := p.Alpha(tt), p.Sigma(tt), p.DAlpha(tt), p.DSigma(tt)
			x0, eps := r.NormFloat64(), r.NormFloat64()
			x, v := al*x0+s*eps, da*x0+ds*eps // the path's definitions
			checks := []struct {
				name      string
				got, want float64
			}{
				{"X0FromVelocity", X0FromVelocity(p, tt, x, v), x0},
				{"EpsFromVelocity", EpsFromVelocity(p, tt, x, v), eps},
				{"VelocityFromX0", VelocityFromX0(p, tt, x, x0), v},
				{"VelocityFromEps", VelocityFromEps(p, tt, x, eps), v},
				{"X0FromEps", X0FromEps(p, tt, x, eps), x0},
				{"EpsFromX0", EpsFromX0(p, tt, x, x0), eps},
			}
			for _, c := range checks {
				if !close(c.got, c.want) {
					t.Errorf("%s t=%v %s = %.17g, want %.17g", p.Name(), tt, c.name, c.got, c.want)
				}
			}
		}
	}
}

func TestConversionSlicesMatchScalars(t *testing.T) {
	type slice func(Path, float64, []float32, []float32, []float32) error
	type scalar func(Path, float64, float64, float64) float64
	pairs := []struct {
		name string
		sl   slice
		sc   scalar
	}{
		{"X0FromVelocity", X0FromVelocitySlice, X0FromVelocity},
		{"EpsFromVelocity", EpsFromVelocitySlice, EpsFromVelocity},
		{"VelocityFromX0", VelocityFromX0Slice, VelocityFromX0},
		{"VelocityFromEps", VelocityFromEpsSlice, VelocityFromEps},
		{"X0FromEps", X0FromEpsSlice, X0FromEps},
		{"EpsFromX0", EpsFromX0Slice, EpsFromX0},
	}
	a, b, dst := normalDraws(1, 256), normalDraws(2, 256), make([]float32, 256)
	for _, p := range []Path{Linear, Cosine} {
		for _, c := range pairs {
			if err := c.sl(p, 0.4, dst, a, b); err != nil {
				t.Fatal(err)
			}
			for j := range dst {
				want := c.sc(p, 0.4, float64(a[j]), float64(b[j]))
				if math.Abs(float64(dst[j])-want) > 1e-6*(1+math.Abs(want)) {
					t.Fatalf("%s/%s[%d] = %v, scalar %v", p.Name(), c.name, j, dst[j], want)
				}
			}
		}
	}
}

func TestLogSNRInverse(t *testing.T) {
	for _, p := range []Path{Linear, Cosine, opaquePath{Linear}, opaquePath{Cosine}} {
		if LogSNR(p, 1) != math.Inf(-1) || LogSNR(p, 0) != math.Inf(1) {
			t.Errorf("%s: λ(1) = %v, λ(0) = %v", p.Name(), LogSNR(p, 1), LogSNR(p, 0))
		}
		if TimeAtLogSNR(p, math.Inf(-1)) != 1 || TimeAtLogSNR(p, math.Inf(1)) != 0 {
			t.Errorf("%s: inverse at ±∞ is not 1, 0", p.Name())
		}
		for _, tt := range []float64{1e-4, 0.1, 0.5, 0.9, 0.9999} {
			if got := TimeAtLogSNR(p, LogSNR(p, tt)); math.Abs(got-tt) > 1e-12 {
				t.Errorf("%s: TimeAtLogSNR(LogSNR(%v)) = %v", p.Name(), tt, got)
			}
		}
	}
	// ComfyUI: λ = log((1−σ)/σ), σ(λ) = 1/(e^λ + 1).
	if got, want := LogSNR(Linear, 0.3), math.Log(0.7/0.3); math.Abs(got-want) > 1e-15 {
		t.Errorf("Linear λ(0.3) = %v, want %v", got, want)
	}
}

func TestDDIMCoefs(t *testing.T) {
	for _, p := range []Path{Linear, Cosine} {
		for _, ts := range [][2]float64{{0.9, 0.6}, {1, 0.2}, {0.5, 0}} {
			tt, s := ts[0], ts[1]
			cx, cx0 := ddimCoefs(p, tt, s)
			gx, gx0 := ddimCoefs(opaquePath{p}, tt, s)
			if math.Abs(cx-gx) > 1e-15 || math.Abs(cx0-gx0) > 1e-15 {
				t.Errorf("%s %v: fast (%v, %v) vs general (%v, %v)", p.Name(), ts, cx, cx0, gx, gx0)
			}
			x0, eps := 0.7, -1.3 // with the exact x0 the move lands exactly on the path
			x := p.Alpha(tt)*x0 + p.Sigma(tt)*eps
			if got, want := cx*x+cx0*x0, p.Alpha(s)*x0+p.Sigma(s)*eps; math.Abs(got-want) > 1e-14 {
				t.Errorf("%s %v: DDIM move gives %v, path gives %v", p.Name(), ts, got, want)
			}
		}
	}
}
