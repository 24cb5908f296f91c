package scheduler

import "math"

// Schedules from other runtimes and papers. All but flux2 are built over the model's σ table (its
// static shift, or FLUX.1-dev's μ), like ComfyUI's schedulers; their arithmetic is float64 rounded to
// float32. AYS (Sabour et al. 2024) and GITS (Chen et al. 2024) are not offered: their published
// noise levels are for SD1.5, SDXL and SVD (VE σ), none for a flow-matching model, and
// stable-diffusion.cpp's AYS refuses other models too.

// at is the table's σ at unshifted time u ∈ [0, 1] (model_sampling.sigma of u's timestep).
func (m comfyFlow) at(u float64) float64 {
	if m.flux {
		return float64(m.sigma(float32(u)))
	}
	return float64(m.sigma(float32(u) * m.mult))
}

// scheduleSmoothstep is stable-diffusion.cpp's smoothstep scheduler: table entries at
// round(S(u)·(len−1)) for u = 1 − i/N, S(u) = u²(3 − 2u) (the Hermite smoothstep: dense steps at both
// ends, "close to beta"), then 0; one step is [σmax, 0].
func scheduleSmoothstep(m comfyFlow, n int) []float64 {
	out := make([]float64, 0, n+1)
	top := m.size - 1
	if n == 1 {
		return append(out, float64(m.entry(top)), 0)
	}
	for i := range n {
		u := 1 - float64(i)/float64(n)
		out = append(out, float64(m.entry(int(math.Round(u*u*(3-2*u)*float64(top))))))
	}
	return append(out, 0)
}

// scheduleLogitNormal places the σ at the quantiles of the logit-normal distribution SD3 was trained
// on (Esser et al. 2024, "Scaling Rectified Flow Transformers", §3.1: t = sigmoid(m + s·z), z ~ N(0, 1),
// m = 0, s = 1): u_i = 1 − i/N, t_i = sigmoid(Φ⁻¹(u_i)) (t_0 = 1), then the model's shift; steps are
// dense where training put its samples, near t = ½, and sparse at both ends.
func scheduleLogitNormal(m comfyFlow, n int) []float64 {
	out := make([]float64, 0, n+1)
	for i := range n {
		u := 1 - float64(i)/float64(n)
		t := 1.0
		if u < 1 {
			t = 1 / (1 + math.Exp(-math.Sqrt2*math.Erfinv(2*u-1)))
		}
		out = append(out, roundToFloat32(m.at(t)))
	}
	return append(out, 0)
}

// scheduleUniform is the "N + 1 uniform points including 0" grid (FlowSteer's baseline; also what a
// uniform flow-matching integrator walks): u_i = 1 − i/N for i = 0..N through the model's shift. Unlike
// diffusers' FlowMatchEuler σ (linspace(1, 1/1000·…) then 0) the last step is as long as the others.
func scheduleUniform(m comfyFlow, n int) []float64 {
	out := make([]float64, 0, n+1)
	for i := range n {
		out = append(out, roundToFloat32(m.at(1-float64(i)/float64(n))))
	}
	return append(out, 0)
}

// scheduleBongTangent is RES4LYF's bong_tangent (ClownsharkBatwing, sigmas.py) as stable-diffusion.cpp
// runs it: two arctan ramps, σmax → midpoint → σmin of the table, pivots at 0.6 of N + 2 points,
// slopes 0.2·40/(N + 2), the first ramp's last point dropped, then the last σ replaced by 0.
func scheduleBongTangent(m comfyFlow, n int) []float64 {
	start, end := m.sigmaMax(), m.sigmaMin()
	middle := end + (start-end)*0.5
	const pivot, slope = 0.6, 0.2
	steps := n + 2
	mid := int((float64(steps)*pivot + float64(steps)*pivot) * 0.5)
	piv := int(float64(steps) * pivot)
	sl := slope / (float64(steps) / 40)
	len2 := steps - mid
	len1 := steps - len2
	s1 := bongRamp(len1, sl, float64(piv), start, middle)
	s2 := bongRamp(len2, sl, float64(piv-len1), middle, end)
	out := append(s1[:max(len(s1)-1, 0)], s2...)
	for len(out) < n+1 {
		out = append(out, end)
	}
	out = out[:n+1]
	for i := range out {
		out[i] = roundToFloat32(out[i])
	}
	out[n] = 0
	return out
}

// bongRamp is get_bong_tangent_sigmas: (a(x) − a(last))/(a(0) − a(last))·(start − end) + end with
// a(x) = ((2/π)·atan(−slope·(x − pivot)) + 1)/2, x = 0..steps−1.
func bongRamp(steps int, slope, pivot, start, end float64) []float64 {
	a := func(x float64) float64 { return ((2/math.Pi)*math.Atan(-slope*(x-pivot)) + 1) / 2 }
	hi, lo := a(0), a(float64(steps-1))
	out := make([]float64, steps)
	for x := range out {
		if math.Abs(hi-lo) < 1e-8 {
			out[x] = start + (end-start)*float64(x)/math.Max(1, float64(steps-1))
			continue
		}
		out[x] = (a(float64(x))-lo)/(hi-lo)*(start-end) + end
	}
	return out
}

// Flux2EmpiricalMu is FLUX.2's resolution- and step-dependent μ (black-forest-labs/flux2,
// sampling.compute_empirical_mu; diffusers' Flux2 pipelines): for L = imageSeqLen tokens,
// μ = 0.00016927·L + 0.45666666 above 4300 tokens; below, the line through (10 steps,
// 8.73809524e-05·L + 1.89833333) and (200 steps, 0.00016927·L + 0.45666666) at the given steps.
func Flux2EmpiricalMu(imageSeqLen, steps int) float64 {
	const a1, b1, a2, b2 = 8.73809524e-05, 1.89833333, 0.00016927, 0.45666666
	l := float64(imageSeqLen)
	m200 := a2*l + b2
	if imageSeqLen > 4300 {
		return m200
	}
	m10 := a1*l + b1
	a := (m200 - m10) / 190
	return a*float64(steps) + (m200 - 200*a)
}

// flux2Sigmas is FLUX.2's get_schedule: linspace(1, 0, N + 1) through the exponential time shift
// e^μ/(e^μ + 1/t − 1) with μ = Flux2EmpiricalMu.
func flux2Sigmas(in scheduleInput) (sigmas, timesteps []float64) {
	mu := Flux2EmpiricalMu(in.seqLen, in.steps)
	em := math.Exp(mu)
	n := float32(in.cfg.NumTrainTimesteps)
	sigmas = make([]float64, in.steps+1)
	timesteps = make([]float64, in.steps)
	for i := range in.steps {
		t := 1 - float64(i)/float64(in.steps)
		sigmas[i] = roundToFloat32(em / (em + (1/t - 1)))
		timesteps[i] = float64(float32(sigmas[i]) * n)
	}
	return sigmas, timesteps
}
