package scheduler

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
)

// SamplerFunc integrates x from sigmas[0] down to sigmas[len−1] in place. x holds a float32 batch
// (B·D values, laid out as the model wants them); sigmas are strictly decreasing path times in [0, 1],
// usually ending with the terminal 0. A sampler is a plain function (k-diffusion style): it keeps no
// state between calls, allocates its scratch once per call and nothing per step.
type SamplerFunc func(ctx context.Context, m Model, x []float32, sigmas []float64, o Options) error

// Options are a sampler's knobs. The zero value is valid: Linear path, no callback, and no added noise
// in the ancestral/SDE samplers (Eta = 0); DefaultOptions gives ComfyUI's defaults.
type Options struct {
	// Noise supplies standard normal noise. Required by samplers that draw noise (they return an
	// error wrapping ErrNoiseRequired when it is nil); deterministic samplers never call it.
	Noise NoiseSource
	// Callback, if set, observes every step; a non-nil error stops the sampler, which returns it. It
	// may change Step.X in place (inpainting's masked blend): every fixed-step sampler continues from
	// the x it leaves; the adaptive dopri5 ignores such changes.
	Callback StepFunc
	// Path is the probability path; nil means Linear (rectified flow).
	Path Path
	// Eta is the ancestral/SDE noise amount of euler_ancestral, dpmpp_2s_ancestral and dpmpp_2m_sde:
	// 0 = deterministic, 1 = ComfyUI's default; must be ≥ 0 (ancestral steps clamp the down-step at 0).
	Eta float64
	// SNoise scales the noise the ancestral, SDE and lcm samplers add: 0 = none, 1 = default; ≥ 0.
	SNoise float64
	// RTol and ATol are dopri5's relative and absolute tolerances; 0 selects 1e-5 and 1e-6.
	RTol, ATol float64
}

// DefaultOptions returns ComfyUI's defaults: Eta = 1, SNoise = 1, Linear path.
func DefaultOptions() Options { return Options{Eta: 1, SNoise: 1} }

// StepNoiseSeed returns the seed ComfyUI gives the per-step noise generator of its ancestral, SDE and
// lcm samplers when sampling on the CPU: default_noise_sampler(x, seed) seeds a torch.Generator with
// seed+1 on CPU devices (and with seed itself on GPU devices), so the step noise differs from the
// initial latent noise drawn with seed. Build the step NoiseSource from a generator seeded with this.
func StepNoiseSeed(seed uint64) uint64 { return seed + 1 }

var (
	// ErrInvalidInput is wrapped by every error about bad sampler arguments (σ list, x, options).
	ErrInvalidInput = errors.New("invalid sampler input")
	// ErrNoiseRequired is wrapped when a sampler that draws noise gets Options.Noise == nil.
	ErrNoiseRequired = errors.New("sampler draws noise but Options.Noise is nil")
	// ErrUnknownSampler is wrapped by LookupSampler for a name not in Samplers().
	ErrUnknownSampler = errors.New("unknown sampler")
)

// SamplerInfo describes one sampler of the registry.
type SamplerInfo struct {
	Name         string // ComfyUI spelling
	Func         SamplerFunc
	CallsPerStep string // model calls per step: "1", "2", "2 (last step 1)", "4", "adaptive"
	Stochastic   bool   // draws noise from Options.Noise
	Order        int    // global order of the deterministic scheme (Eta = 0 for ancestral/SDE); 0: none (re-noises x0 every step)
	Doc          string // what it computes, citing the source formula
}

// Samplers returns the sampler table (a fresh copy) in a fixed order; names are ComfyUI's.
func Samplers() []SamplerInfo {
	return []SamplerInfo{
		{"euler", Euler, "1", false, 1, "Euler on dx/dt = v; diffusers FlowMatchEulerDiscreteScheduler.step bit for bit (flow-sampling.md §2.5, §9.2)"},
		{"euler_stochastic", EulerStochastic, "1", true, 0, "diffusers FlowMatchEuler stochastic_sampling=True: x0 = x − σ·v; x = α(σn)·x0 + σ(σn)·noise (§2.5)"},
		{"euler_ancestral", EulerAncestral, "1", true, 1, "ComfyUI sample_euler_ancestral_RF (k_diffusion/sampling.py, flow-sampling.md §6.3), Eta and SNoise"},
		{"heun", Heun, "2 (last step 1)", false, 2, "Heun (Karras et al. 2022 Alg. 2, s_churn = 0) = diffusers FlowMatchHeunDiscreteScheduler; last step Euler (§2.7)"},
		{"dpmpp_2m", DPMPP2M, "1", false, 2, "DPM-Solver++(2M) midpoint, diffusers DPMSolverMultistepScheduler flow mode, first and last steps first order (§2.8)"},
		{"dpmpp_2m_sde", DPMPP2MSDE, "1", true, 2, "ComfyUI sample_dpmpp_2m_sde (midpoint) with CONST λ = −logit(σ); per-step noise from Options.Noise instead of a Brownian tree (§6.3)"},
		{"dpmpp_2s_ancestral", DPMPP2SAncestral, "2 (last step 1)", true, 2, "ComfyUI sample_dpmpp_2s_ancestral_RF: DPM-Solver++(2S) midpoint in λ, RF down-step and renoise (§6.3)"},
		{"uni_pc", UniPC, "1", false, 2, "UniPC bh2 predictor–corrector, predict_x0, order 2, diffusers UniPCMultistepScheduler flow mode (§2.9)"},
		{"ipndm", IPNDM, "1", false, 2, "iPNDM (Zhang & Chen 2022), ComfyUI sample_ipndm: Adams–Bashforth up to order 4 on d = v with fixed weights; last step x = x0"},
		{"lms", LMS, "1", false, 2, "k-diffusion sample_lms: linear multistep order 4 with exact Lagrange weights on d = v; last step x = x0"},
		{"lcm", LCM, "1", true, 0, "ComfyUI sample_lcm with CONST noise_scaling: x = x0; if σn > 0: x = σn·noise + (1−σn)·x"},
		{"midpoint", Midpoint, "2", false, 2, "explicit midpoint rule (RK2) on dx/dt = v; float64 state (reference solver). rf_solver is this method: RF-Solver's second-order Taylor step (Wang et al. 2024, arXiv:2411.04746) with its finite-difference dv/dt is x + h·v(x + h/2·v, σ + h/2)"},
		{"fireflow", FireFlow, "1 (first step 2)", false, 2, "FireFlow (Deng et al. 2024, arXiv:2412.07517): midpoint rule reusing the previous step's midpoint velocity as the next step's start velocity; N+1 model calls for N steps; float64 state"},
		{"res_multistep", ResMultistep, "1", false, 2, "RES second-order multistep exponential integrator in λ (Zhang et al. 2023, arXiv:2308.02157), ComfyUI res_multistep (η = 0); first step first order, last step to 0 x = x0"},
		{"gradient_estimation", GradientEstimation, "1", false, 1, "gradient estimation (Permenter & Yuan 2024, arXiv:2306.04848), ComfyUI gradient_estimation / sd.cpp euler_ge: Euler on 2·v_i − v_{i−1} after an Euler first step"},
		{"rk4", RK4, "4", false, 4, "classical Runge–Kutta 4 on dx/dt = v; float64 state (reference solver)"},
		{"dopri5", Dopri5, "adaptive", false, 5, "adaptive Dormand–Prince 5(4) (Hairer, Nørsett & Wanner, Solving ODEs I, §II.4–5) from sigmas[0] to the last σ, RTol/ATol; float64 state"},
	}
}

// SamplerNames lists the registry names in table order (for --help).
func SamplerNames() []string {
	infos := Samplers()
	names := make([]string, len(infos))
	for i, s := range infos {
		names[i] = s.Name
	}
	return names
}

// samplerAliases are the spellings users bring from stable-diffusion.cpp (--sampling-method) and
// A1111/Forge (the "Sampler" names of their infotext), keyed as LookupSampler normalizes them.
var samplerAliases = map[string]string{
	"euler_a": "euler_ancestral", "dpm++2m": "dpmpp_2m", "dpm++2s_a": "dpmpp_2s_ancestral", // sd.cpp
	"dpm++_2m": "dpmpp_2m", "dpm++_2m_sde": "dpmpp_2m_sde", "dpm++_2s_a": "dpmpp_2s_ancestral", "unipc": "uni_pc", // A1111
	"euler_ge":  "gradient_estimation",               // sd.cpp
	"rf_solver": "midpoint", "rf-solver": "midpoint", // RF-Solver's second-order step is the midpoint rule
}

// LookupSampler returns the registry entry called name, ignoring case and reading spaces as '_', or
// one of the aliases of stable-diffusion.cpp and A1111 ("euler_a", "dpm++2m", "Euler a", "DPM++ 2M",
// "UniPC"); an unknown name is an error that lists the valid names.
func LookupSampler(name string) (SamplerInfo, error) {
	key := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(name)), " ", "_")
	if a, ok := samplerAliases[key]; ok {
		key = a
	}
	for _, s := range Samplers() {
		if s.Name == key {
			return s, nil
		}
	}
	return SamplerInfo{}, fmt.Errorf("scheduler: %w %q (valid: %s)", ErrUnknownSampler, name, strings.Join(SamplerNames(), ", "))
}

// stepper is the per-call bookkeeping every sampler shares: validated inputs, the model-call count and
// the callback. It holds no step index: each sampler's loop owns that.
type stepper struct {
	ctx    context.Context
	name   string
	m      Model
	x      []float32
	sigmas []float64
	o      Options
	path   Path
	nfe    int
	den    []float32 // x0 scratch for the callback; nil when there is no callback
}

// newStepper validates the arguments of sampler name; drawsNoise says whether Options.Noise will be used.
func newStepper(ctx context.Context, name string, m Model, x []float32, sigmas []float64, o Options, drawsNoise bool) (*stepper, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("scheduler: %s: %w: %s", name, ErrInvalidInput, fmt.Sprintf(format, a...))
	}
	switch {
	case ctx == nil:
		return nil, bad("nil context")
	case m == nil:
		return nil, bad("nil model")
	case len(x) == 0:
		return nil, bad("x is empty")
	case len(sigmas) < 2:
		return nil, bad("need at least 2 sigmas (start and end), got %d", len(sigmas))
	case !(o.Eta >= 0) || math.IsInf(o.Eta, 0):
		return nil, bad("Eta = %v, want a finite value ≥ 0", o.Eta)
	case !(o.SNoise >= 0) || math.IsInf(o.SNoise, 0):
		return nil, bad("SNoise = %v, want a finite value ≥ 0", o.SNoise)
	case !(o.RTol >= 0) || !(o.ATol >= 0):
		return nil, bad("RTol = %v, ATol = %v, want ≥ 0", o.RTol, o.ATol)
	}
	for i, s := range sigmas {
		if !(s >= 0 && s <= 1) {
			return nil, bad("sigmas[%d] = %v is outside [0, 1]", i, s)
		}
		if i > 0 && !(s < sigmas[i-1]) {
			return nil, bad("sigmas must be strictly decreasing: sigmas[%d] = %v ≥ sigmas[%d] = %v", i, s, i-1, sigmas[i-1])
		}
	}
	if drawsNoise && o.Noise == nil {
		return nil, fmt.Errorf("scheduler: %s: %w", name, ErrNoiseRequired)
	}
	st := &stepper{ctx: ctx, name: name, m: m, x: x, sigmas: sigmas, o: o, path: pathOrLinear(o.Path)}
	if o.Callback != nil {
		st.den = make([]float32, len(x))
	}
	return st, nil
}

func (st *stepper) steps() int { return len(st.sigmas) - 1 }

// call evaluates the model at (x, t) during step i into dst after checking the context, and counts it.
func (st *stepper) call(i int, dst, x []float32, t float64) error {
	if err := st.ctx.Err(); err != nil {
		return err
	}
	st.nfe++
	e := Eval{Index: i, Total: st.steps(), Sigma: st.sigmas[i], SigmaNext: st.sigmas[i+1], T: t, NFE: st.nfe}
	if err := st.m.Velocity(st.ctx, dst, x, e); err != nil {
		return fmt.Errorf("scheduler: %s: model at σ=%v: %w", st.name, t, err)
	}
	return nil
}

// callAdaptive is call for an adaptive sampler: Total = 0, Index = the accepted steps so far, and the
// interval is the whole integration range.
func (st *stepper) callAdaptive(accepted int, dst, x []float32, t float64) error {
	if err := st.ctx.Err(); err != nil {
		return err
	}
	st.nfe++
	e := Eval{Index: accepted, Sigma: st.sigmas[0], SigmaNext: st.sigmas[len(st.sigmas)-1], T: t, NFE: st.nfe}
	if err := st.m.Velocity(st.ctx, dst, x, e); err != nil {
		return fmt.Errorf("scheduler: %s: model at σ=%v: %w", st.name, t, err)
	}
	return nil
}

// noise fills dst from Options.Noise for the step t → tn.
func (st *stepper) noise(dst []float32, t, tn float64) error {
	if err := st.o.Noise.Fill(dst, t, tn); err != nil {
		return fmt.Errorf("scheduler: %s: noise for σ=%v→%v: %w", st.name, t, tn, err)
	}
	return nil
}

// x0 writes the data prediction at t for (x, v) into dst (the package's one velocity→x0 formula).
func (st *stepper) x0(dst, x, v []float32, t float64) {
	a, b := x0FromVelocityCoefs(st.path, t)
	_ = pathCombineSlice("x0", a, b, dst, x, v) // lengths are equal by construction
}

// denoised computes the callback's x0 from (x, v) at t; it does nothing without a callback.
func (st *stepper) denoised(x, v []float32, t float64) {
	if st.den != nil {
		st.x0(st.den, x, v, t)
	}
}

// report calls the callback for step i after x was updated; x0 nil means the stepper's own scratch.
func (st *stepper) report(i int, x0 []float32) error {
	if st.o.Callback == nil {
		return nil
	}
	if x0 == nil {
		x0 = st.den
	}
	return st.o.Callback(Step{Index: i, Total: st.steps(), Sigma: st.sigmas[i], SigmaNext: st.sigmas[i+1],
		X: st.x, Denoised: x0, NFE: st.nfe})
}
