package scheduler

import (
	"context"
	"math"
)

// DPMPP2M is DPM-Solver++(2M) with the midpoint update (Lu et al. 2022), as diffusers'
// DPMSolverMultistepScheduler computes it in flow mode (flow-sampling.md §2.8: algorithm_type
// "dpmsolver++", solver_order 2, solver_type "midpoint", lower_order_final, final_sigmas_type "zero").
// With m = x0(x, σ) (x − σ·v on Linear), λ = log α − log σ, h = λ_t − λ_s:
//
//	first order:  x ← (σ_t/σ_s)·x − α_t·(e^−h − 1)·m0
//	second order: x ← (σ_t/σ_s)·x − α_t·(e^−h − 1)·m0 − ½·α_t·(e^−h − 1)·(m0 − m1)/r0,  r0 = h_prev/h
//
// The first step is first order, and so is the last when it ends at σ = 0 (then x = m0 exactly) or when
// there are fewer than 15 steps (diffusers' lower_order_final). A start at α = 0 (σ = 1 on Linear, where
// λ = −∞; diffusers' own flow schedule starts at shift(0.999) and never gets there) takes the exact
// limit: the first step is then x ← σ_t·x + α_t·m0, and the next step, whose r0 would be ∞ (diffusers'
// IEEE arithmetic gives D1 = 0), is first order too. Coefficients are float64; m is float32.
func DPMPP2M(ctx context.Context, m Model, x []float32, sigmas []float64, o Options) error {
	st, err := newStepper(ctx, "dpmpp_2m", m, x, sigmas, o, false)
	if err != nil {
		return err
	}
	n, p, steps := len(x), st.path, st.steps()
	v, m0, m1 := make([]float32, n), make([]float32, n), make([]float32, n)
	hPrev := math.Inf(1)
	for i := range steps {
		t, tn := sigmas[i], sigmas[i+1]
		if err := st.call(i, v, x, t); err != nil {
			return err
		}
		st.x0(m0, x, v, t)
		h := LogSNR(p, tn) - LogSNR(p, t)
		a := p.Sigma(tn) / p.Sigma(t)
		b := -p.Alpha(tn) * math.Expm1(-h)
		firstOrder := i == 0 || math.IsInf(hPrev, 0) || (i == steps-1 && (tn == 0 || steps < 15))
		if firstOrder {
			for j := range x {
				x[j] = float32(a*float64(x[j]) + b*float64(m0[j]))
			}
		} else {
			c := 0.5 * b * h / hPrev // ½·(−α_t·(e^−h − 1))/r0
			for j := range x {
				x[j] = float32(a*float64(x[j]) + b*float64(m0[j]) + c*(float64(m0[j])-float64(m1[j])))
			}
		}
		if err := st.report(i, m0); err != nil {
			return err
		}
		m0, m1, hPrev = m1, m0, h
	}
	return nil
}

// sdeFirstSigma replaces a first σ ≥ 1 in dpmpp_2m_sde: ComfyUI's offset_first_sigma_for_snr uses
// model_sampling.percent_to_sigma(1e-4), which is 1 − 1e-4 for an unshifted flow model (a shifted one
// gives shift(0.9999), slightly closer to 1; a sampler does not know the model's shift).
const sdeFirstSigma = 1 - 1e-4

// DPMPP2MSDE is ComfyUI's sample_dpmpp_2m_sde (solver_type "midpoint") with the CONST half-logSNR
// λ = −logit(σ) = log((1−σ)/σ), generalised to λ = log(α/σ) of the path (flow-sampling.md §6.3):
//
//	x ← (σ_t/σ_s)·e^(−η·h)·x + α_t·(1 − e^(−(η+1)h))·m
//	  + ½·α_t·(1 − e^(−(η+1)h))·(m − m_prev)/r,   r = h_prev/h   (from the second step on)
//	  + σ_t·√(1 − e^(−2ηh))·SNoise·z                             (when η > 0 and SNoise > 0)
//
// and x = m on a step to σ = 0. A first σ ≥ 1 is replaced by 1 − 1e-4 (see sdeFirstSigma), for the model
// call too, as ComfyUI does (by (1 + σ1)/2 if σ1 is even closer to 1, where ComfyUI would step upwards). ComfyUI draws z from a torchsde Brownian tree (increments over the step,
// normalised); this sampler takes independent per-step noise from Options.Noise instead. For disjoint
// steps the two have the same distribution, but a seed gives different images than ComfyUI.
// With Eta = 0 it is deterministic and equals dpmpp_2m on schedules that end at 0.
func DPMPP2MSDE(ctx context.Context, m Model, x []float32, sigmas []float64, o Options) error {
	noisy := o.Eta > 0 && o.SNoise > 0
	st, err := newStepper(ctx, "dpmpp_2m_sde", m, x, sigmas, o, noisy)
	if err != nil {
		return err
	}
	n, p, eta := len(x), st.path, o.Eta
	v, md, mOld, z := make([]float32, n), make([]float32, n), make([]float32, n), []float32(nil)
	if noisy {
		z = make([]float32, n)
	}
	hPrev := 0.0
	for i := range st.steps() {
		t, tn := sigmas[i], sigmas[i+1]
		if i == 0 && t >= 1 {
			t = max(sdeFirstSigma, (1+tn)/2) // stays above a next σ beyond 1 − 1e-4
		}
		if err := st.call(i, v, x, t); err != nil {
			return err
		}
		st.x0(md, x, v, t)
		if tn == 0 {
			copy(x, md)
		} else {
			h := LogSNR(p, tn) - LogSNR(p, t)
			ph := -math.Expm1(-h * (eta + 1)) // 1 − e^(−(η+1)h)
			a := p.Sigma(tn) / p.Sigma(t) * math.Exp(-h*eta)
			b := p.Alpha(tn) * ph
			c := 0.0
			if i > 0 {
				c = 0.5 * b * h / hPrev
			}
			var zs float64
			if noisy {
				if err := st.noise(z, sigmas[i], tn); err != nil {
					return err
				}
				zs = p.Sigma(tn) * math.Sqrt(-math.Expm1(-2*h*eta)) * o.SNoise
			}
			sdeUpdate(x, md, mOld, z, a, b, c, zs)
			hPrev = h
		}
		if err := st.report(i, md); err != nil {
			return err
		}
		md, mOld = mOld, md
	}
	return nil
}

// sdeUpdate is x = a·x + b·m + c·(m − mOld) + zs·z in float64 (terms with a zero factor skipped).
func sdeUpdate(x, m, mOld, z []float32, a, b, c, zs float64) {
	for j := range x {
		acc := a*float64(x[j]) + b*float64(m[j])
		if c != 0 {
			acc += c * (float64(m[j]) - float64(mOld[j]))
		}
		if zs != 0 {
			acc += zs * float64(z[j])
		}
		x[j] = float32(acc)
	}
}
