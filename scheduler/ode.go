package scheduler

import (
	"context"
	"fmt"
	"math"
)

// The reference ODE solvers keep the state in float64 and round to float32 only for the model's input
// and for x itself after each step, so their error is the method's plus the model's float32 input
// rounding. They treat the σ list as plain times of dx/dt = v and are path-independent.

// Midpoint is the explicit midpoint rule (RK2): k1 = v(x, σ); k2 = v(x + h/2·k1, σ + h/2); x ← x + h·k2,
// with h = σn − σ. Two model calls per step, including the last.
func Midpoint(ctx context.Context, m Model, x []float32, sigmas []float64, o Options) error {
	st, err := newStepper(ctx, "midpoint", m, x, sigmas, o, false)
	if err != nil {
		return err
	}
	n := len(x)
	y := widen(x)
	k1, k2, xs := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range st.steps() {
		t, tn := sigmas[i], sigmas[i+1]
		h := tn - t
		if err := st.call(i, k1, x, t); err != nil {
			return err
		}
		st.denoised(x, k1, t)
		stage(xs, y, h/2, k1, nil, 0)
		if err := st.call(i, k2, xs, t+h/2); err != nil {
			return err
		}
		for j := range y {
			y[j] += h * float64(k2[j])
			x[j] = float32(y[j])
		}
		if err := st.report(i, nil); err != nil {
			return err
		}
		resync(y, x)
	}
	return nil
}

// RK4 is the classical fourth-order Runge–Kutta method on dx/dt = v: four model calls per step
// (σ, σ + h/2 twice, σn), x ← x + h/6·(k1 + 2k2 + 2k3 + k4).
func RK4(ctx context.Context, m Model, x []float32, sigmas []float64, o Options) error {
	st, err := newStepper(ctx, "rk4", m, x, sigmas, o, false)
	if err != nil {
		return err
	}
	n := len(x)
	y := widen(x)
	var k [4][]float32
	for j := range k {
		k[j] = make([]float32, n)
	}
	xs := make([]float32, n)
	for i := range st.steps() {
		t, tn := sigmas[i], sigmas[i+1]
		h := tn - t
		if err := st.call(i, k[0], x, t); err != nil {
			return err
		}
		st.denoised(x, k[0], t)
		stage(xs, y, h/2, k[0], nil, 0)
		if err := st.call(i, k[1], xs, t+h/2); err != nil {
			return err
		}
		stage(xs, y, h/2, k[1], nil, 0)
		if err := st.call(i, k[2], xs, t+h/2); err != nil {
			return err
		}
		stage(xs, y, h, k[2], nil, 0)
		if err := st.call(i, k[3], xs, tn); err != nil {
			return err
		}
		for j := range y {
			y[j] += h / 6 * (float64(k[0][j]) + 2*float64(k[1][j]) + 2*float64(k[2][j]) + float64(k[3][j]))
			x[j] = float32(y[j])
		}
		if err := st.report(i, nil); err != nil {
			return err
		}
		resync(y, x)
	}
	return nil
}

// resync takes into the float64 state y the values of x that a step callback changed (rounding y to
// float32 would otherwise discard them), leaving y's extra precision wherever x is untouched.
func resync(y []float64, x []float32) {
	for j, v := range x {
		if v != float32(y[j]) {
			y[j] = float64(v)
		}
	}
}

// widen returns x as float64.
func widen(x []float32) []float64 {
	y := make([]float64, len(x))
	for j, v := range x {
		y[j] = float64(v)
	}
	return y
}

// stage writes the model input dst = f32(y + a·k + b·k2) (k2 may be nil).
func stage(dst []float32, y []float64, a float64, k []float32, k2 []float32, b float64) {
	k = k[:len(y)]
	if k2 == nil {
		for j := range y {
			dst[j] = float32(y[j] + a*float64(k[j]))
		}
		return
	}
	k2 = k2[:len(y)]
	for j := range y {
		dst[j] = float32(y[j] + a*float64(k[j]) + b*float64(k2[j]))
	}
}

// Dopri5 integrates dx/dt = v from sigmas[0] to the last σ with the adaptive Dormand–Prince 5(4) pair
// (FSAL, local extrapolation; Hairer, Nørsett & Wanner, Solving ODEs I, §II.4–5), the per-element error
// scale ATol + RTol·max(|x|, |x_new|) and Hairer's initial step. Intermediate σ values are ignored.
// The callback runs after each accepted step with Total = 0 (unknown in advance), Index = accepted steps
// so far − 1, Sigma/SigmaNext the step's interval and NFE the model calls so far (rejected steps
// included). Through a float32 model, tolerances much below 1e-7 cost many steps without gaining
// accuracy; past 100000 attempted steps it gives up with an error.
func Dopri5(ctx context.Context, m Model, x []float32, sigmas []float64, o Options) error {
	st, err := newStepper(ctx, "dopri5", m, x, sigmas, o, false)
	if err != nil {
		return err
	}
	rtol, atol := o.RTol, o.ATol
	if rtol == 0 {
		rtol = 1e-5
	}
	if atol == 0 {
		atol = 1e-6
	}
	n := len(x)
	xs, v := make([]float32, n), make([]float32, n)
	accepted := 0
	f := func(t float64, y, dy []float64) error {
		for j := range y {
			xs[j] = float32(y[j])
		}
		if err := st.callAdaptive(accepted, v, xs, t); err != nil {
			return err
		}
		for j := range dy {
			dy[j] = float64(v[j])
		}
		return nil
	}
	onStep := func(t, tn float64, y0, k1, y1 []float64) error {
		for j := range y1 {
			x[j] = float32(y1[j])
		}
		if st.den != nil {
			a, b := x0FromVelocityCoefs(st.path, t)
			for j := range y0 {
				st.den[j] = float32(a*y0[j] + b*k1[j])
			}
		}
		accepted++
		if o.Callback == nil {
			return nil
		}
		return o.Callback(Step{Index: accepted - 1, Sigma: t, SigmaNext: tn, X: x, Denoised: st.den, NFE: st.nfe})
	}
	y := widen(x)
	if err := dopri5Solve(ctx, f, y, sigmas[0], sigmas[len(sigmas)-1], rtol, atol, onStep); err != nil {
		return err
	}
	for j := range y {
		x[j] = float32(y[j])
	}
	return nil
}

// odeFunc evaluates dy = f(t, y).
type odeFunc func(t float64, y, dy []float64) error

// Dormand–Prince 5(4) tableau: nodes c, stage weights a, 5th-order weights b (the last row of a,
// FSAL) and error weights e = b − b̂ (b̂ the embedded 4th-order weights).
var (
	dpC = [7]float64{0, 1.0 / 5, 3.0 / 10, 4.0 / 5, 8.0 / 9, 1, 1}
	dpA = [7][6]float64{
		{},
		{1.0 / 5},
		{3.0 / 40, 9.0 / 40},
		{44.0 / 45, -56.0 / 15, 32.0 / 9},
		{19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729},
		{9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656},
		{35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84},
	}
	dpE = [7]float64{71.0 / 57600, 0, -71.0 / 16695, 71.0 / 1920, -17253.0 / 339200, 22.0 / 525, -1.0 / 40}
)

const dopri5MaxSteps = 100000

// dopri5Solve integrates y from t0 to t1 in place (t1 < t0 allowed). onStep, if set, sees each accepted
// step: its interval, the state and derivative at its start, and the new state.
func dopri5Solve(ctx context.Context, f odeFunc, y []float64, t0, t1, rtol, atol float64,
	onStep func(t, tn float64, y0, k1, y1 []float64) error) error {
	n := len(y)
	var k [7][]float64
	for i := range k {
		k[i] = make([]float64, n)
	}
	ys, yn := make([]float64, n), make([]float64, n)
	if err := f(t0, y, k[0]); err != nil {
		return err
	}
	h, err := dopri5InitialStep(f, y, k[0], k[1], ys, t0, t1, rtol, atol)
	if err != nil {
		return err
	}
	t, facMax := t0, 5.0
	for attempt := 0; t != t1; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if attempt >= dopri5MaxSteps || math.Abs(h) <= 1e-14*math.Max(1, math.Abs(t)) {
			return fmt.Errorf("scheduler: dopri5: step size underflow at σ=%v after %d steps (RTol %v, ATol %v)", t, attempt, rtol, atol)
		}
		last := (t+h-t1)*(t1-t0) >= 0
		if last {
			h = t1 - t
		}
		errNorm, err := dopri5Step(f, y, k, ys, yn, t, h, rtol, atol)
		if err != nil {
			return err
		}
		if math.IsNaN(errNorm) || math.IsInf(errNorm, 0) {
			return fmt.Errorf("scheduler: dopri5: non-finite values at σ=%v", t)
		}
		fac := 0.9 * math.Pow(math.Max(errNorm, 1e-10), -0.2)
		if errNorm > 1 {
			h *= math.Max(0.2, fac)
			facMax = 1
			continue
		}
		tn := t + h
		if last {
			tn = t1
		}
		if onStep != nil {
			if err := onStep(t, tn, y, k[0], yn); err != nil {
				return err
			}
		}
		copy(y, yn)
		k[0], k[6] = k[6], k[0] // FSAL: the derivative at the new point is the next step's first stage
		t = tn
		h *= math.Min(facMax, math.Max(0.2, fac))
		facMax = 5
	}
	return nil
}

// dopri5Step computes the 5th-order solution yn from (t, y) with step h (k[0] holds f(t, y) on entry,
// k[6] holds f(t+h, yn) on exit) and returns the scaled RMS error estimate.
func dopri5Step(f odeFunc, y []float64, k [7][]float64, ys, yn []float64, t, h, rtol, atol float64) (float64, error) {
	for s := 1; s < 7; s++ {
		dst := ys
		if s == 6 {
			dst = yn
		}
		for j := range y {
			acc := 0.0
			for r := range s {
				acc += dpA[s][r] * k[r][j]
			}
			dst[j] = y[j] + h*acc
		}
		if err := f(t+dpC[s]*h, dst, k[s]); err != nil {
			return 0, err
		}
	}
	sum := 0.0
	for j := range y {
		e := 0.0
		for r := range 7 {
			e += dpE[r] * k[r][j]
		}
		sc := atol + rtol*math.Max(math.Abs(y[j]), math.Abs(yn[j]))
		q := h * e / sc
		sum += q * q
	}
	return math.Sqrt(sum / float64(len(y))), nil
}

// dopri5InitialStep is Hairer's starting step size (Solving ODEs I, §II.4, "Starting step size"),
// signed towards t1; it costs one evaluation (f1 and y1 are scratch).
func dopri5InitialStep(f odeFunc, y, f0, f1, y1 []float64, t0, t1, rtol, atol float64) (float64, error) {
	rms := func(a, b []float64, scale float64) float64 {
		s := 0.0
		for j := range y {
			d := a[j]
			if b != nil {
				d -= b[j]
			}
			q := d / (atol + rtol*math.Abs(y[j])) / scale
			s += q * q
		}
		return math.Sqrt(s / float64(len(y)))
	}
	span, dir := math.Abs(t1-t0), math.Copysign(1, t1-t0)
	d0, d1 := rms(y, nil, 1), rms(f0, nil, 1)
	h0 := 1e-6
	if d0 >= 1e-5 && d1 >= 1e-5 {
		h0 = 0.01 * d0 / d1
	}
	h0 = math.Min(h0, span)
	for j := range y {
		y1[j] = y[j] + dir*h0*f0[j]
	}
	if err := f(t0+dir*h0, y1, f1); err != nil {
		return 0, err
	}
	d2 := rms(f1, f0, h0)
	h1 := math.Max(1e-6, h0*1e-3)
	if m := math.Max(d1, d2); m > 1e-15 {
		h1 = math.Pow(0.01/m, 0.2)
	}
	return dir * math.Min(math.Min(100*h0, h1), span), nil
}
