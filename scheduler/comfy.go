package scheduler

import "math"

// ComfyUI's schedulers over a flow model's sampling table (spec §6.1, §6.2; comfy/model_sampling.py,
// comfy/samplers.py, comfy/k_diffusion/sampling.py).
//
// Precision. ComfyUI builds the table and σ(t) in torch float32 on the CPU. Those are plain +, −, ×, ÷
// (each rounded once), so rflow computes them exactly: the table entries and σ(t) match ComfyUI bit for
// bit. The per-scheduler arithmetic on top (torch.linspace, pow, exp, tan, scipy's beta quantile) depends
// on torch's vectorised float32 kernels (SLEEF pow/tan, FMA-contracted linspace halves), which a Go port
// cannot reproduce exactly; rflow evaluates it in float64 and rounds the result to float32, so normal,
// sgm_uniform, karras, exponential, linear_quadratic and kl_optimal agree with ComfyUI to a few float32
// ulps. simple, ddim_uniform and beta pick table entries and agree exactly.

// ComfyUI table geometry and defaults.
const (
	comfyFlowTableSize      = 1000  // ModelSamplingDiscreteFlow(timesteps=1000)
	comfyFluxTableSize      = 10000 // ModelSamplingFlux(timesteps=10000)
	comfySD3Multiplier      = 1000  // ModelSamplingDiscreteFlow multiplier; FLUX-schnell uses 1
	comfyZeroTolerance      = 1e-5  // math.isclose(…, 0, abs_tol=0.00001) in normal and ddim_uniform
	comfyLinearQuadraticThr = 0.025 // linear_quadratic_schedule threshold_noise (Mochi)
)

// comfyFlow is a ComfyUI model_sampling object of a flow model: ModelSamplingDiscreteFlow(shift,
// multiplier) when flux is false, ModelSamplingFlux(μ) when it is true.
type comfyFlow struct {
	flux  bool
	shift float64 // DiscreteFlow: the static shift
	mult  float32 // DiscreteFlow: timestep(σ) = σ·mult
	expMu float32 // Flux: float32(e^μ)
	size  int     // table length
}

// newComfyFlow picks the model sampling ComfyUI gives the model: ModelSamplingFlux(μ) for dynamic
// shifting (FLUX-dev; the ModelSamplingFlux node's μ equals DynamicShiftMu), else
// ModelSamplingDiscreteFlow(shift) with multiplier 1000 for SD3 and 1 for FLUX (schnell).
func newComfyFlow(cfg FlowMatchConfig, family Family, mu float64) comfyFlow {
	if cfg.UseDynamicShifting {
		return comfyFlow{flux: true, expMu: float32(math.Exp(mu)), size: comfyFluxTableSize}
	}
	mult := float32(comfySD3Multiplier)
	if family == FamilyFLUX {
		mult = 1
	}
	return comfyFlow{shift: cfg.Shift, mult: mult, size: comfyFlowTableSize}
}

// sigma is model_sampling.sigma(t) in float32: time_snr_shift(shift, t/mult) (identity for shift 1), or
// flux_time_shift(μ, 1, t) = e^μ/(e^μ + (1/t − 1)) where torch evaluates `c / tensor` as
// tensor.reciprocal()·c.
func (m comfyFlow) sigma(t float32) float32 {
	if m.flux {
		d := (1/t - 1) + m.expMu
		return float32(1/d) * m.expMu
	}
	c := t / m.mult
	if m.shift == 1 {
		return c
	}
	return staticShift32(m.shift, c)
}

// timestep is model_sampling.timestep(σ): σ·multiplier (DiscreteFlow) or σ (Flux).
func (m comfyFlow) timestep(s float32) float32 {
	if m.flux {
		return s
	}
	return s * m.mult
}

// entry is model_sampling.sigmas[k]: σ((k+1)/size · mult) with the division and product in float32.
func (m comfyFlow) entry(k int) float32 {
	t := float32(k+1) / float32(m.size)
	if m.flux {
		return m.sigma(t)
	}
	return m.sigma(t * m.mult)
}

func (m comfyFlow) sigmaMin() float64 { return float64(m.entry(0)) }
func (m comfyFlow) sigmaMax() float64 { return float64(m.entry(m.size - 1)) }

// torchLinspace64 is torch.linspace's algorithm (first half start + step·i, second half
// end − step·(steps−1−i)) evaluated in float64.
func torchLinspace64(start, end float64, steps int) []float64 {
	y := make([]float64, steps)
	if steps == 1 {
		y[0] = start
		return y
	}
	step := (end - start) / float64(steps-1)
	for i := range y {
		if i < steps/2 {
			y[i] = start + float64(step*float64(i))
		} else {
			y[i] = end - float64(step*float64(steps-1-i))
		}
	}
	return y
}

// comfySimple is simple_scheduler: every len/steps-th table entry from the top, then 0.
func comfySimple(m comfyFlow, steps int) []float64 {
	ss := float64(m.size) / float64(steps)
	out := make([]float64, 0, steps+1)
	for x := 0; x < steps; x++ {
		out = append(out, float64(m.entry(m.size-1-int(float64(x)*ss))))
	}
	return append(out, 0)
}

// comfyNormal is normal_scheduler (sgm=false) and sgm_uniform (sgm=true): σ(linspace(timestep(σmax),
// timestep(σmin), steps)) then 0; sgm drops the last of steps+1 points instead. If σ(end) ≈ 0 normal takes
// one more point and appends no 0 (never the case for flow tables).
func comfyNormal(m comfyFlow, steps int, sgm bool) []float64 {
	start := float64(m.timestep(m.entry(m.size - 1)))
	end := float64(m.timestep(m.entry(0)))
	appendZero := true
	var ts []float64
	if sgm {
		ts = torchLinspace64(start, end, steps+1)[:steps]
	} else {
		if math.Abs(float64(m.sigma(float32(end)))) <= comfyZeroTolerance {
			steps++
			appendZero = false
		}
		ts = torchLinspace64(start, end, steps)
	}
	out := make([]float64, 0, len(ts)+1)
	for _, t := range ts {
		out = append(out, float64(m.sigma(float32(t))))
	}
	if appendZero {
		out = append(out, 0)
	}
	return out
}

// comfyKarras is k-diffusion get_sigmas_karras(n, σmin, σmax, ρ=7) over the table's range, then 0.
func comfyKarras(m comfyFlow, n int) []float64 {
	minInv, maxInv := math.Pow(m.sigmaMin(), 1/karrasRho), math.Pow(m.sigmaMax(), 1/karrasRho)
	out := torchLinspace64(0, 1, n)
	for i, r := range out {
		out[i] = roundToFloat32(math.Pow(maxInv+float64(r*(minInv-maxInv)), karrasRho))
	}
	return append(out, 0)
}

// comfyExponential is k-diffusion get_sigmas_exponential: exp(linspace(log σmax, log σmin, n)), then 0.
func comfyExponential(m comfyFlow, n int) []float64 {
	out := torchLinspace64(math.Log(m.sigmaMax()), math.Log(m.sigmaMin()), n)
	for i, v := range out {
		out[i] = roundToFloat32(math.Exp(v))
	}
	return append(out, 0)
}

// comfyDDIMUniform is ddim_scheduler: table entries 1, 1+ss, 1+2ss, … (ss = len/steps), reversed, with
// a 0 at the end. Like ComfyUI it yields ceil((len−1)/ss) steps, which need not equal steps.
func comfyDDIMUniform(m comfyFlow, steps int) []float64 {
	x := 1
	var sigs []float64
	if math.Abs(float64(m.entry(x))) <= comfyZeroTolerance {
		steps++
	} else {
		sigs = append(sigs, 0)
	}
	ss := max(m.size/steps, 1)
	for ; x < m.size; x += ss {
		sigs = append(sigs, float64(m.entry(x)))
	}
	for i, j := 0, len(sigs)-1; i < j; i, j = i+1, j-1 {
		sigs[i], sigs[j] = sigs[j], sigs[i]
	}
	return sigs
}

// comfyBeta is beta_scheduler (α = β = 0.6): table indices rint(ppf(1 − linspace(0, 1, steps,
// endpoint=False))·(len−1)), consecutive duplicates skipped (so it can yield fewer steps), then 0.
func comfyBeta(m comfyFlow, steps int) []float64 {
	total := float64(m.size - 1)
	out := make([]float64, 0, steps+1)
	last := -1.0
	for _, v := range npLinspace(0, 1, steps, false) {
		t := math.RoundToEven(betaPPF(1-v, betaSigmasAlpha, betaSigmasAlpha) * total)
		if t != last {
			out = append(out, float64(m.entry(int(t))))
		}
		last = t
	}
	return append(out, 0)
}

// comfyLinearQuadratic is linear_quadratic_schedule (Mochi, genmoai infer.py): linear up to threshold
// 0.025 over steps/2 steps, quadratic after, σ = (1 − schedule)·σmax with the product in float32.
func comfyLinearQuadratic(m comfyFlow, steps int) []float64 {
	sched := []float64{1, 0}
	if steps > 1 {
		const thr = comfyLinearQuadraticThr
		ls := steps / 2
		qs := steps - ls
		diff := float64(ls) - float64(thr*float64(steps))
		qc := diff / float64(ls*qs*qs)
		lc := thr/float64(ls) - 2*diff/float64(qs*qs)
		konst := float64(qc * float64(ls*ls))
		sched = make([]float64, 0, steps+1)
		for i := 0; i < ls; i++ {
			sched = append(sched, 1-float64(i)*thr/float64(ls))
		}
		for i := ls; i < steps; i++ {
			q := float64(qc*float64(i*i)) + float64(lc*float64(i)) + konst
			sched = append(sched, 1-q)
		}
		sched = append(sched, 0)
	}
	smax := m.entry(m.size - 1)
	for i, x := range sched {
		sched[i] = float64(float32(x) * smax)
	}
	return sched
}

// comfyKLOptimal is kl_optimal_scheduler (A1111 PR 15608): σ_i = tan(a_i·atan σmin + (1−a_i)·atan σmax)
// with a_i = float32(i/(n−1)), then 0. For n = 1 ComfyUI divides 0 by 0 and returns NaN; rflow uses
// a_0 = 0 (σ = σmax).
func comfyKLOptimal(m comfyFlow, n int) []float64 {
	lo, hi := math.Atan(m.sigmaMin()), math.Atan(m.sigmaMax())
	out := make([]float64, n, n+1)
	for i := range out {
		a := 0.0
		if n > 1 {
			a = float64(float32(i) / float32(n-1))
		}
		out[i] = roundToFloat32(math.Tan(float64(a*lo) + float64((1-a)*hi)))
	}
	return append(out, 0)
}
