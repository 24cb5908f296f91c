package scheduler

import (
	"context"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// roundF32 rounds an exact big.Float to the nearest float32 (ties to even), independently of Go's
// float32 arithmetic.
func roundF32(f *big.Float) float32 {
	v, _ := new(big.Float).SetPrec(24).SetMode(big.ToNearestEven).Set(f).Float32()
	return v
}

// torchEulerStep is diffusers' float32 `prev = sample + dt * model_output` done by hand: the exact
// product rounded to float32, then the exact sum rounded to float32.
func torchEulerStep(x, v, dt float32) float32 {
	prod := roundF32(new(big.Float).Mul(big.NewFloat(float64(dt)), big.NewFloat(float64(v))))
	return roundF32(new(big.Float).Add(big.NewFloat(float64(x)), big.NewFloat(float64(prod))))
}

// fixedModel returns the same velocity on every call.
type fixedModel []float32

func (f fixedModel) Velocity(_ context.Context, dst, _ []float32, _ Eval) error {
	copy(dst, f)
	return nil
}

func TestEulerBitExact(t *testing.T) {
	// SD3-like float32 σ values (shift 3, 28 steps: §8.1's first entries) and a hand-checked case.
	sigmas := []float64{1, float64(float32(0.9927)), float64(float32(0.5)), float64(float32(0.008928571827709675)), 0}
	r := rand.New(rand.NewPCG(5, 6))
	const n = 1 << 14
	x0, v := make([]float32, n), make([]float32, n)
	for j := range x0 {
		x0[j] = float32(r.NormFloat64() * 3)
		v[j] = float32(r.NormFloat64() * 2)
	}
	x := append([]float32(nil), x0...)
	if err := Euler(context.Background(), fixedModel(v), x, sigmas, Options{Noise: forbiddenNoise(t)}); err != nil {
		t.Fatal(err)
	}
	want := append([]float32(nil), x0...)
	fused := 0
	for i := range len(sigmas) - 1 {
		dt := float32(float32(sigmas[i+1]) - float32(sigmas[i])) // torch: float32 σn − σ
		for j := range want {
			if float32(math.FMA(float64(dt), float64(v[j]), float64(want[j]))) != torchEulerStep(want[j], v[j], dt) {
				fused++
			}
			want[j] = torchEulerStep(want[j], v[j], dt)
		}
	}
	for j := range x {
		if math.Float32bits(x[j]) != math.Float32bits(want[j]) {
			t.Fatalf("x[%d] = %v, torch float32 step gives %v", j, x[j], want[j])
		}
	}
	if fused == 0 {
		t.Fatal("no element distinguishes a fused multiply-add: the data cannot catch FMA contraction")
	}
	// By hand: x = 1, v = 0.1f, σ 1 → 0.5: dt·v = −0.05000000074505806 (float32 of −0.5·0.1f is exact),
	// 1 + that = 0.949999988079071 (nearest float32 of 0.94999999925494194).
	one := []float32{1}
	if err := Euler(context.Background(), fixedModel{0.1}, one, []float64{1, 0.5}, Options{}); err != nil {
		t.Fatal(err)
	}
	if one[0] != 0.949999988079071 {
		t.Errorf("hand case: got %.17g", one[0])
	}
}

func TestEulerStochasticBitExact(t *testing.T) {
	sigmas := []float64{1, float64(float32(0.75)), float64(float32(0.3)), 0}
	r := rand.New(rand.NewPCG(8, 9))
	const n = 4096
	x, v := make([]float32, n), make([]float32, n)
	for j := range x {
		x[j], v[j] = float32(r.NormFloat64()), float32(r.NormFloat64())
	}
	want := append([]float32(nil), x...)
	noise, z := seededNoise(77), make([]float32, n)
	for i := range len(sigmas) - 1 {
		s, sn := float32(sigmas[i]), float32(sigmas[i+1])
		for j := range want { // x0 = sample − σ·v, in float32
			want[j] -= s * v[j]
		}
		if sn > 0 {
			_ = noise.Fill(z, 0, 0)
			for j := range want { // (1 − σn)·x0 + σn·noise, every op rounded to float32
				want[j] = float32((1-sn)*want[j]) + float32(sn*z[j])
			}
		}
	}
	if err := EulerStochastic(context.Background(), fixedModel(v), x, sigmas, Options{Noise: seededNoise(77)}); err != nil {
		t.Fatal(err)
	}
	for j := range x {
		if x[j] != want[j] {
			t.Fatalf("x[%d] = %v, float32 reference %v", j, x[j], want[j])
		}
	}
}

// f64Flow wraps the analytic flow for the float64 reference implementations below.
type f64Flow struct{ *AnalyticFlow }

func (f f64Flow) v(x []float64, t float64) []float64 {
	out := make([]float64, len(x))
	if err := f.VelocityAt(out, x, t); err != nil {
		panic(err)
	}
	return out
}

func (f f64Flow) x0(x []float64, t float64) []float64 { // flow_prediction: sample − σ·v
	v := f.v(x, t)
	for j := range v {
		v[j] = x[j] - t*v[j]
	}
	return v
}

// refHeun transcribes diffusers FlowMatchHeunDiscreteScheduler.step (s_churn = 0) over its interleaved
// σ list [σ0, σ1, σ1, …, σ_{n−1}, σ_{n−1}, 0], one model call per entry but the last.
func refHeun(f f64Flow, x []float64, s []float64) []float64 {
	il := []float64{s[0]}
	for _, v := range s[1 : len(s)-1] {
		il = append(il, v, v)
	}
	il = append(il, 0)
	var prevD, stored []float64
	var dt float64
	first := true
	for k := range len(il) - 1 {
		out := f.v(x, il[k])
		d := make([]float64, len(x))
		if first {
			sigma, next := il[k], il[k+1]
			for j := range x {
				den := x[j] - out[j]*sigma
				d[j] = (x[j] - den) / sigma
			}
			prevD, dt, stored = d, next-sigma, x
		} else {
			next := il[k]
			for j := range x {
				den := x[j] - out[j]*next
				d[j] = 0.5 * (prevD[j] + (x[j]-den)/next)
			}
			x = stored
		}
		first = !first
		nx := make([]float64, len(x))
		for j := range x {
			nx[j] = x[j] + d[j]*dt
		}
		x = nx
	}
	return x
}

// dpmLambda is diffusers' λ for flow sigmas: log(1−σ) − log σ.
func dpmLambda(s float64) float64 { return math.Log(1-s) - math.Log(s) }

// refDPMPP2M transcribes diffusers DPMSolverMultistepScheduler.step for dpmsolver++, order 2, midpoint,
// lower_order_final, final_sigmas_type "zero", flow prediction.
func refDPMPP2M(f f64Flow, x []float64, s []float64) []float64 {
	n := len(s) - 1
	var outs [][]float64
	lowerNums := 0
	for i := range n {
		outs = append(outs, f.x0(x, s[i]))
		lowerFinal := i == n-1 // final_sigmas_type "zero" makes the last step first order
		st, ss := s[i+1], s[i]
		at, h := 1-st, dpmLambda(st)-dpmLambda(ss)
		nx := make([]float64, len(x))
		m0 := outs[len(outs)-1]
		if lowerNums < 1 || lowerFinal {
			for j := range x {
				nx[j] = st/ss*x[j] - at*(math.Exp(-h)-1)*m0[j]
			}
		} else {
			m1 := outs[len(outs)-2]
			r0 := (dpmLambda(ss) - dpmLambda(s[i-1])) / h
			for j := range x {
				d1 := (m0[j] - m1[j]) / r0
				nx[j] = st/ss*x[j] - at*(math.Exp(-h)-1)*m0[j] - 0.5*at*(math.Exp(-h)-1)*d1
			}
		}
		x, lowerNums = nx, min(lowerNums+1, 2)
	}
	return x
}

// diffusersFlowSigmas is DPMSolverMultistep's flow schedule: shift(0.999·k/n) for k = n..1, then 0.
func diffusersFlowSigmas(n int, shift float64) []float64 {
	s := make([]float64, 0, n+1)
	for k := n; k >= 1; k-- {
		u := (1 - (1 + (1.0/1000-1)*float64(k)/float64(n))) // 1 − linspace(1, 1/N, n+1)[k]
		s = append(s, float64(float32(shift*u/(1+(shift-1)*u))))
	}
	return append(s, 0)
}

func maxAbsDiff(a []float32, b []float64) float64 {
	m := 0.0
	for j := range a {
		m = max(m, math.Abs(float64(a[j])-b[j]))
	}
	return m
}

func TestHeunAndDPMPP2MMatchDiffusers(t *testing.T) {
	f := f64Flow{&AnalyticFlow{Target: testMixture(t)}}
	x32 := normalDraws(13, 64)
	x64 := make([]float64, len(x32))
	for j, v := range x32 {
		x64[j] = float64(v)
	}
	cases := []struct {
		name   string
		run    SamplerFunc
		ref    func(f64Flow, []float64, []float64) []float64
		sigmas []float64
	}{
		{"heun", Heun, refHeun, uniformSigmas(1, 0, 6)},
		{"heun shifted", Heun, refHeun, diffusersFlowSigmas(9, 3)},
		{"dpmpp_2m 10 steps", DPMPP2M, refDPMPP2M, diffusersFlowSigmas(10, 3)},
		{"dpmpp_2m 20 steps", DPMPP2M, refDPMPP2M, diffusersFlowSigmas(20, 1)},
	}
	for _, c := range cases {
		x := append([]float32(nil), x32...)
		if err := c.run(context.Background(), f.AnalyticFlow, x, c.sigmas, Options{}); err != nil {
			t.Fatal(err)
		}
		if d := maxAbsDiff(x, c.ref(f, x64, c.sigmas)); d > 2e-6 {
			t.Errorf("%s: max |rflow − diffusers float64| = %.3g", c.name, d)
		}
	}
}
