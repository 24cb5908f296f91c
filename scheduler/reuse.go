package scheduler

import (
	"context"
	"math"
)

// Samplers that reuse velocities: FireFlow (one model call per step, second order), RES's multistep
// exponential integrator and gradient estimation (ComfyUI's res_multistep and gradient_estimation, also
// in stable-diffusion.cpp as res_multistep and euler_ge).

// FireFlow is the midpoint rule with the velocity at the start of each step taken from the previous
// step's midpoint (Deng et al. 2024, "FireFlow: Fast Inversion of Rectified Flow for Image Semantic
// Editing", arXiv:2412.07517, Alg. 1): v̂_i = v(x_{i−1} + h_{i−1}/2·v̂_{i−1}, σ_{i−1} + h_{i−1}/2)
// (exact v at step 0), x_mid = x + h/2·v̂_i, v_mid = v(x_mid, σ + h/2), x ← x + h·v_mid. The reused
// velocity is O(h) off, which costs the midpoint stage O(h²), so the method stays second order at
// N + 1 model calls for N steps. Float64 state like the other reference ODE solvers.
func FireFlow(ctx context.Context, m Model, x []float32, sigmas []float64, o Options) error {
	st, err := newStepper(ctx, "fireflow", m, x, sigmas, o, false)
	if err != nil {
		return err
	}
	n := len(x)
	y := widen(x)
	vStart, vMid, xs := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range st.steps() {
		t, tn := sigmas[i], sigmas[i+1]
		h := tn - t
		if i == 0 {
			if err := st.call(i, vStart, x, t); err != nil {
				return err
			}
		} else {
			vStart, vMid = vMid, vStart // the previous midpoint velocity
		}
		st.denoised(x, vStart, t)
		stage(xs, y, h/2, vStart, nil, 0)
		if err := st.call(i, vMid, xs, t+h/2); err != nil {
			return err
		}
		for j := range y {
			y[j] += h * float64(vMid[j])
			x[j] = float32(y[j])
		}
		if err := st.report(i, nil); err != nil {
			return err
		}
		resync(y, x)
	}
	return nil
}

// ResMultistep is the deterministic second-order multistep of RES (Zhang, Tao & Chen 2023, "Improved
// order analysis and design of exponential integrator for diffusion models sampling",
// arXiv:2308.02157; ComfyUI's res_multistep with η = 0): in λ = log(α/σ), with D the x0 prediction
// linear in λ through the last two steps,
//
//	x ← (σ_t/σ_s)·x + α_t·h·(b1·D_i + b2·D_{i−1}),  b1 = φ1(−h) + φ2(−h)/r,  b2 = −φ2(−h)/r,
//
// h = λ_t − λ_s, r = (λ_s − λ_{i−1})/h, φ1(z) = (e^z − 1)/z, φ2(z) = (φ1(z) − 1)/z: the exact integral
// of the linear D, unlike DPM-Solver++(2M)'s midpoint coefficient. The first step (and the one after a
// start at α = 0, where λ = −∞) is the first-order exponential step, which on Linear is Euler; a step
// to σ = 0 sets x = D, as ComfyUI's Euler step to 0 does.
func ResMultistep(ctx context.Context, m Model, x []float32, sigmas []float64, o Options) error {
	st, err := newStepper(ctx, "res_multistep", m, x, sigmas, o, false)
	if err != nil {
		return err
	}
	n, p := len(x), st.path
	v, d0, d1 := make([]float32, n), make([]float32, n), make([]float32, n)
	lamPrev := math.Inf(-1)
	for i := range st.steps() {
		t, tn := sigmas[i], sigmas[i+1]
		if err := st.call(i, v, x, t); err != nil {
			return err
		}
		st.x0(d0, x, v, t)
		lam := LogSNR(p, t)
		switch {
		case tn == 0:
			copy(x, d0)
		case i == 0 || math.IsInf(lamPrev, 0) || math.IsInf(lam, 0):
			a, b := p.Sigma(tn)/p.Sigma(t), p.Alpha(tn)-p.Sigma(tn)*p.Alpha(t)/p.Sigma(t) // DDIM
			for j := range x {
				x[j] = float32(a*float64(x[j]) + b*float64(d0[j]))
			}
		default:
			h := LogSNR(p, tn) - lam
			r := (lam - lamPrev) / h
			phi1 := -math.Expm1(-h) / h
			phi2 := (phi1 - 1) / -h
			a, c := p.Sigma(tn)/p.Sigma(t), p.Alpha(tn)*h
			b1, b2 := c*(phi1+phi2/r), -c*phi2/r
			for j := range x {
				x[j] = float32(a*float64(x[j]) + b1*float64(d0[j]) + b2*float64(d1[j]))
			}
		}
		if err := st.report(i, d0); err != nil {
			return err
		}
		d0, d1, lamPrev = d1, d0, lam
	}
	return nil
}

// GradientEstimation is Permenter & Yuan's gradient-estimation sampler (2024, "Interpreting and
// improving diffusion models from an optimization perspective", arXiv:2306.04848; ComfyUI's
// gradient_estimation, stable-diffusion.cpp's euler_ge) with γ = 2: Euler on
// d̄ = γ·v_i + (1 − γ)·v_{i−1} after a plain Euler first step. The extrapolated direction gains no
// order (global order 1) but cuts the error constant of Euler on curved flows.
func GradientEstimation(ctx context.Context, m Model, x []float32, sigmas []float64, o Options) error {
	st, err := newStepper(ctx, "gradient_estimation", m, x, sigmas, o, false)
	if err != nil {
		return err
	}
	const gamma = 2.0
	n := len(x)
	v, vOld := make([]float32, n), make([]float32, n)
	for i := range st.steps() {
		t, tn := sigmas[i], sigmas[i+1]
		if err := st.call(i, v, x, t); err != nil {
			return err
		}
		st.denoised(x, v, t)
		dt := tn - t
		for j := range x {
			d := float64(v[j])
			if i > 0 {
				d = gamma*d + (1-gamma)*float64(vOld[j])
			}
			x[j] = float32(float64(x[j]) + dt*d)
		}
		if err := st.report(i, nil); err != nil {
			return err
		}
		v, vOld = vOld, v
	}
	return nil
}
