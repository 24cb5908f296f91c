package scheduler

import "math"

// The diffusers σ constructions (spec §2), reproduced to the float32 bit: every float64 product that feeds
// an addition is wrapped in float64(…) and every float32 one in float32(…), which forbids the compiler from
// fusing them into an FMA (Go spec, "Floating-point operators"); numpy and torch round each operation.

// Re-spacing constants of diffusers' _convert_to_karras / _convert_to_beta (and ComfyUI's karras/beta).
const (
	karrasRho       = 7.0
	betaSigmasAlpha = 0.6 // α = β of the Beta-quantile spacing ("Beta Sampling is All You Need")
	unipcOneNudge   = 1e-6
)

// roundToFloat32 rounds x to the nearest float32 (ties to even), as numpy astype(float32) and torch
// .to(float32) do, and widens it back.
func roundToFloat32(x float64) float64 { return float64(float32(x)) }

// npLinspace is numpy.linspace(start, stop, num, endpoint) in float64: y[i] = i·step + start with
// step = (stop−start)/div, and y[num−1] = stop when endpoint (numpy/_core/function_base.py).
func npLinspace(start, stop float64, num int, endpoint bool) []float64 {
	y := make([]float64, num)
	div := num
	if endpoint {
		div = num - 1
	}
	if div <= 0 {
		for i := range y {
			y[i] = start
		}
		return y
	}
	delta := stop - start
	step := delta / float64(div)
	for i := range y {
		if step == 0 { // numpy's denormal branch: y/div·delta
			y[i] = float64(float64(i)/float64(div)*delta) + start
		} else {
			y[i] = float64(float64(i)*step) + start
		}
	}
	if endpoint && num > 1 {
		y[num-1] = stop
	}
	return y
}

// staticShift64 is the static shift s·σ/(1+(s−1)·σ) in numpy float64 order (spec §1).
func staticShift64(s, x float64) float64 { return float64(s*x) / (1 + float64((s-1)*x)) }

// staticShift32 is the static shift in float32 tensor arithmetic: the python scalars s and s−1 are cast to
// float32 first, then each operation rounds (torch and numpy-float32 alike).
func staticShift32(s float64, x float32) float32 {
	sh, sh1 := float32(s), float32(s-1)
	return float32(sh*x) / (1 + float32(sh1*x))
}

// timeShift64 is diffusers' time_shift(μ, 1, t) in float64: exponential e^μ/(e^μ + (1/t−1)) or linear
// μ/(μ + (1/t−1)) (spec §2.4; the power 1.0 is exact).
func timeShift64(kind string, mu, t float64) float64 {
	m := mu
	if kind != TimeShiftLinear {
		m = math.Exp(mu)
	}
	return m / (m + (1/t - 1))
}

// timeShift32 is time_shift on a numpy float32 array: math.exp(μ) (or μ) is cast to float32 first.
func timeShift32(kind string, mu float64, t float32) float32 {
	m := float32(mu)
	if kind != TimeShiftLinear {
		m = float32(math.Exp(mu))
	}
	return m / (m + (1/t - 1))
}

// stretchToTerminal64 is stretch_shift_to_terminal in float64: 1 − (1−σ)/scale with
// scale = (1−σ_last)/(1−terminal) (spec §2.4; LTX-Video rf.py).
func stretchToTerminal64(terminal float64, s []float64) {
	scale := (1 - s[len(s)-1]) / (1 - terminal)
	for i, x := range s {
		s[i] = 1 - (1-x)/scale
	}
}

// stretchToTerminal32 is the stretch on a numpy float32 array under NumPy 2 promotion (NEP 50): the
// np.float32 scale divided by a python float stays float32. (NumPy 1.x computed that one scalar in
// float64, which can differ by an ulp of the scale.)
func stretchToTerminal32(terminal float64, s []float32) {
	scale := (1 - s[len(s)-1]) / float32(1-terminal)
	for i, x := range s {
		s[i] = 1 - (1-x)/scale
	}
}

// flowMatchInitRange is FlowMatchEulerDiscreteScheduler.__init__'s σ range (spec §2.2): σ = t/N for
// t = N…1 in float32, statically shifted in float32 unless dynamic. Returns sigma_min (t = 1) and
// sigma_max (t = N) as the python floats set_timesteps uses.
func flowMatchInitRange(cfg FlowMatchConfig) (sigmaMin, sigmaMax float64) {
	n := float32(cfg.NumTrainTimesteps)
	sig := func(t float32) float64 {
		s := t / n
		if !cfg.UseDynamicShifting {
			s = staticShift32(cfg.Shift, s)
		}
		return float64(s)
	}
	return sig(1), sig(n)
}

// flowMatchDefault64 is set_timesteps with sigmas=None (SD3 pipeline): linspace between the already
// shifted __init__ endpoints in float64, σ = t/N, then the shift again — the low-end double shift of
// spec §2.3 — then the optional terminal stretch. Not yet rounded to float32.
func flowMatchDefault64(cfg FlowMatchConfig, steps int, mu float64) []float64 {
	n := float64(cfg.NumTrainTimesteps)
	sigmaMin, sigmaMax := flowMatchInitRange(cfg)
	s := npLinspace(float64(sigmaMax*n), float64(sigmaMin*n), steps, true)
	for i, t := range s {
		x := t / n
		if cfg.UseDynamicShifting {
			s[i] = timeShift64(cfg.TimeShiftType, mu, x)
		} else {
			s[i] = staticShift64(cfg.Shift, x)
		}
	}
	if cfg.ShiftTerminal > 0 {
		stretchToTerminal64(cfg.ShiftTerminal, s)
	}
	return s
}

// flowMatchCustom32 is set_timesteps with custom sigmas (the FLUX pipeline's linspace(1, 1/N, N)): the
// list becomes a numpy float32 array and the shift and stretch run in float32 (spec §2.3 dtype quirk).
func flowMatchCustom32(cfg FlowMatchConfig, custom []float64, mu float64) []float64 {
	s := make([]float32, len(custom))
	for i, x := range custom {
		x32 := float32(x)
		if cfg.UseDynamicShifting {
			s[i] = timeShift32(cfg.TimeShiftType, mu, x32)
		} else {
			s[i] = staticShift32(cfg.Shift, x32)
		}
	}
	if cfg.ShiftTerminal > 0 {
		stretchToTerminal32(cfg.ShiftTerminal, s)
	}
	out := make([]float64, len(s))
	for i, x := range s {
		out[i] = float64(x)
	}
	return out
}

// respaceKarras is diffusers' _convert_to_karras (Karras et al. 2022, eq. 5; ρ = 7) between the first and
// last σ: (σmax^(1/ρ) + ramp·(σmin^(1/ρ) − σmax^(1/ρ)))^ρ, ramp = linspace(0, 1, n), float64.
func respaceKarras(s []float64) []float64 {
	minInv, maxInv := math.Pow(s[len(s)-1], 1/karrasRho), math.Pow(s[0], 1/karrasRho)
	out := npLinspace(0, 1, len(s), true)
	for i, r := range out {
		out[i] = math.Pow(maxInv+float64(r*(minInv-maxInv)), karrasRho)
	}
	return out
}

// respaceExponential is diffusers' _convert_to_exponential: exp(linspace(log σmax, log σmin, n)).
func respaceExponential(s []float64) []float64 {
	out := npLinspace(math.Log(s[0]), math.Log(s[len(s)-1]), len(s), true)
	for i, v := range out {
		out[i] = math.Exp(v)
	}
	return out
}

// respaceBeta is diffusers' _convert_to_beta (Lee et al. 2024, arXiv:2407.12173): σmin + ppf·(σmax−σmin)
// with ppf = Beta(0.6, 0.6) quantiles of 1 − linspace(0, 1, n) (scipy.stats.beta.ppf; here betaPPF).
func respaceBeta(s []float64) []float64 {
	sigmaMin, sigmaMax := s[len(s)-1], s[0]
	out := npLinspace(0, 1, len(s), true)
	for i, v := range out {
		q := betaPPF(1-v, betaSigmasAlpha, betaSigmasAlpha)
		out[i] = sigmaMin + float64(q*(sigmaMax-sigmaMin))
	}
	return out
}

// flowMatchEuler is diffusers FlowMatchEulerDiscreteScheduler.set_timesteps (spec §2.3): custom == nil is
// the default path, else the `sigmas=` argument. It returns σ (float32 values, terminal 0 — or 1 with
// invert_sigmas) and the timesteps float32(σ·N).
func flowMatchEuler(cfg FlowMatchConfig, steps int, mu float64, custom []float64) (sigmas, timesteps []float64) {
	var s []float64
	if custom == nil {
		s = flowMatchDefault64(cfg, steps, mu)
	} else {
		s = flowMatchCustom32(cfg, custom, mu)
	}
	switch {
	case cfg.UseKarrasSigmas:
		s = respaceKarras(s)
	case cfg.UseExponentialSigmas:
		s = respaceExponential(s)
	case cfg.UseBetaSigmas:
		s = respaceBeta(s)
	}
	n := float32(cfg.NumTrainTimesteps)
	sigmas = make([]float64, len(s)+1)
	timesteps = make([]float64, len(s))
	for i, x := range s {
		x32 := float32(x)
		if cfg.InvertSigmas {
			x32 = 1 - x32
		}
		sigmas[i] = float64(x32)
		timesteps[i] = float64(x32 * n)
	}
	if cfg.InvertSigmas {
		sigmas[len(s)] = 1
	}
	return sigmas, timesteps
}

// flowMatchHeun is FlowMatchHeunDiscreteScheduler.set_timesteps' σ (spec §2.7): its config has only N and
// the static shift, so it is flowMatchEuler's default path with nothing else. The Heun sampler, not the
// schedule, repeats the inner σ.
func flowMatchHeun(cfg FlowMatchConfig, steps int) (sigmas, timesteps []float64) {
	h := DefaultFlowMatchConfig()
	h.NumTrainTimesteps, h.Shift = cfg.NumTrainTimesteps, cfg.Shift
	return flowMatchEuler(h, steps, 0, nil)
}

// dpmSolverFlow is DPMSolverMultistepScheduler.set_timesteps with use_flow_sigmas (spec §2.8):
// σ_k = shift(1 − linspace(1, 1/N, n+1)[n−k]) for k < n in float64, with flow_shift = e^μ under dynamic
// shifting; the model's timesteps are σ·N truncated to integers; σ is rounded to float32 with terminal 0.
func dpmSolverFlow(cfg FlowMatchConfig, steps int, mu float64) (sigmas, timesteps []float64) {
	n := float64(cfg.NumTrainTimesteps)
	flowShift := cfg.Shift
	if cfg.UseDynamicShifting {
		flowShift = math.Exp(mu)
	}
	alphas := npLinspace(1, 1/n, steps+1, true)
	s := make([]float64, steps)
	for k := range s {
		s[k] = staticShift64(flowShift, 1-alphas[steps-k])
	}
	return truncatedFlowSchedule(s, n)
}

// unipcFlow is UniPCMultistepScheduler.set_timesteps with use_flow_sigmas (spec §2.9):
// σ = linspace(1, 1/N, n+1)[:-1], time-shifted (dynamic) or statically shifted, optionally stretched;
// σ0 within 1e-6 of 1 is lowered by 1e-6; integer-truncated timesteps; float32 σ with terminal 0.
func unipcFlow(cfg FlowMatchConfig, steps int, mu float64) (sigmas, timesteps []float64) {
	n := float64(cfg.NumTrainTimesteps)
	return unipcCustom(cfg, npLinspace(1, 1/n, steps+1, true)[:steps], mu)
}

// truncatedFlowSchedule finishes the DPM-Solver/UniPC flow branch: timesteps = int64(σ·N) (torch casts
// float64 → int64 by truncation), σ → float32 with the terminal 0 (final_sigmas_type "zero").
func truncatedFlowSchedule(s []float64, n float64) (sigmas, timesteps []float64) {
	sigmas = make([]float64, len(s)+1)
	timesteps = make([]float64, len(s))
	for i, x := range s {
		sigmas[i] = roundToFloat32(x)
		timesteps[i] = math.Trunc(float64(x * n))
	}
	return sigmas, timesteps
}

// fluxPipelineSigmas is what diffusers' FluxPipeline passes as custom sigmas: np.linspace(1, 1/N, N)
// (spec §4.4).
func fluxPipelineSigmas(steps int) []float64 {
	return npLinspace(1, 1/float64(steps), steps, true)
}
