package scheduler

import (
	"context"
	"math"
)

// UniPC is the UniPC-2 predictor–corrector (Zhao et al. 2023, B(h) = e^h − 1, "bh2") in data prediction
// (predict_x0), as diffusers' UniPCMultistepScheduler computes it in flow mode (flow-sampling.md §2.9;
// solver_order 2, lower_order_final, no disabled corrector). Each step:
//
//  1. v = model(x, σ_i); m_i = x0(x, σ_i), from the uncorrected x.
//  2. i > 0: UniC corrects x using m_i, the previous sample and history (order of the previous predictor).
//  3. UniP predicts x at σ_{i+1}, order min(2, i+1, N−i): first and last steps first order.
//
// The last step lands on σ = 0 with x = m_{N−1}, so its corrector does not reach the output (diffusers
// behaves the same). A first σ within 1e-6 of 1 is lowered by 1e-6, for the model call too, as diffusers'
// set_timesteps does, to keep λ finite. Coefficients are float64 (diffusers: float32).
func UniPC(ctx context.Context, m Model, x []float32, sigmas []float64, o Options) error {
	st, err := newStepper(ctx, "uni_pc", m, x, sigmas, o, false)
	if err != nil {
		return err
	}
	n, steps := len(x), st.steps()
	time := func(i int) float64 {
		if i == 0 && math.Abs(sigmas[0]-1) < 1e-6 {
			return sigmas[0] - min(1e-6, (sigmas[0]-sigmas[1])/2)
		}
		return sigmas[i]
	}
	v, last := make([]float32, n), make([]float32, n)
	hist := [3][]float32{make([]float32, n), make([]float32, n), make([]float32, n)} // m_i, m_{i−1}, m_{i−2}
	order := 0                                                                       // order of the previous predictor
	for i := range steps {
		t := time(i)
		if err := st.call(i, v, x, t); err != nil {
			return err
		}
		hist[0], hist[1], hist[2] = hist[2], hist[0], hist[1]
		st.x0(hist[0], x, v, t)
		if i > 0 { // s1 is used by order 2 only
			uniC(st.path, x, last, hist, time(max(0, i-2)), time(i-1), t, order)
		}
		order = min(2, i+1, steps-i)
		copy(last, x)
		uniP(st.path, x, hist, time(max(0, i-1)), t, sigmas[i+1], order)
		if err := st.report(i, hist[0]); err != nil {
			return err
		}
	}
	return nil
}

// uniBh2 holds the bh2 quantities of a step s0 → t: the first-order coefficients of x_t = a·x + b·m0,
// B(h) and, for a history point at s1, r = (λ_s1 − λ_s0)/h and the order-2 right-hand side b1, b2.
type uniBh2 struct {
	a, b, bh, r, b1, b2 float64
}

func newUniBh2(p Path, s1, s0, t float64) uniBh2 {
	ls0 := LogSNR(p, s0)
	h := LogSNR(p, t) - ls0
	hh := -h
	hPhi1 := math.Expm1(hh) // h·φ1(h) = e^hh − 1
	u := uniBh2{a: p.Sigma(t) / p.Sigma(s0), b: -p.Alpha(t) * hPhi1, bh: hPhi1}
	u.r = (LogSNR(p, s1) - ls0) / h
	hPhiK := hPhi1/hh - 1
	u.b1 = hPhiK / u.bh
	u.b2 = (hPhiK/hh - 0.5) * 2 / u.bh
	return u
}

// uniP is diffusers' multistep_uni_p_bh_update from s0 to t (x in place; hist[0] = m0 at s0, hist[1] at
// s1). Order 2 uses ρ = ½: x_t = a·x + b·m0 − α_t·B(h)·½·(m1 − m0)/r.
func uniP(p Path, x []float32, hist [3][]float32, s1, s0, t float64, order int) {
	u := newUniBh2(p, s1, s0, t)
	m0, m1 := hist[0], hist[1]
	c := 0.0
	if order == 2 {
		c = -p.Alpha(t) * u.bh * 0.5 / u.r
	}
	for j := range x {
		acc := u.a*float64(x[j]) + u.b*float64(m0[j])
		if c != 0 {
			acc += c * (float64(m1[j]) - float64(m0[j]))
		}
		x[j] = float32(acc)
	}
}

// uniC is diffusers' multistep_uni_c_bh_update for the step s0 → t just taken: from the pre-predictor
// sample last, m0 = hist[1] (at s0), m1 = hist[2] (at s1) and the new m_t = hist[0], it writes the
// corrected x_t = a·last + b·m0 − α_t·B(h)·(ρ0·(m1 − m0)/r + ρ1·(m_t − m0)), with ρ = ½ for order 1 and
// ρ solving [[1, 1], [r, 1]]·ρ = (b1, b2) for order 2.
func uniC(p Path, x, last []float32, hist [3][]float32, s1, s0, t float64, order int) {
	u := newUniBh2(p, s1, s0, t)
	mt, m0, m1 := hist[0], hist[1], hist[2]
	k := -p.Alpha(t) * u.bh
	c0, c1 := 0.0, 0.5*k
	if order == 2 {
		rho0 := (u.b1 - u.b2) / (1 - u.r)
		c0, c1 = k*rho0/u.r, k*(u.b1-rho0)
	}
	for j := range x {
		d0 := float64(m0[j])
		acc := u.a*float64(last[j]) + u.b*d0 + c1*(float64(mt[j])-d0)
		if c0 != 0 {
			acc += c0 * (float64(m1[j]) - d0)
		}
		x[j] = float32(acc)
	}
}
