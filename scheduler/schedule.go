package scheduler

import (
	"fmt"
	"math"
)

// Family is a model family's diffusers pipeline. It decides what the pipeline hands the scheduler (FLUX
// passes linspace(1, 1/N, N) as custom sigmas, SD3 nothing), the transformer's timestep input (SD3 t,
// FLUX t/1000) and ComfyUI's sampling multiplier.
type Family string

// The families rflow runs.
const (
	FamilySD3  Family = "sd3"  // StableDiffusion3Pipeline: SD3, SD3.5
	FamilyFLUX Family = "flux" // FluxPipeline: FLUX.1-dev, FLUX.1-schnell
)

// fluxTimestepDivisor: FluxPipeline calls the transformer with timestep=t/1000 (pipeline_flux.py), and
// the graph multiplies by 1000 again (spec §4.4).
const fluxTimestepDivisor = 1000

// MaxSteps is the largest number of steps a schedule may have (ComfyUI's KSampler limit).
const MaxSteps = 10000

// FamilyNames lists the valid Family values.
func FamilyNames() []string { return []string{string(FamilySD3), string(FamilyFLUX)} }

// ModelTimestep is the value the family's transformer receives for scheduler timestep t: float32(t) for
// SD3 (spec §3.3), float32(float32(t)/1000) for FLUX (true float32 division as on CPU torch, spec §8.2).
func (f Family) ModelTimestep(t float64) float64 {
	if f == FamilyFLUX {
		return float64(float32(t) / fluxTimestepDivisor)
	}
	return float64(float32(t))
}

// ScheduleRequest says which σ schedule to build. Family, Config and Steps (or Sigmas) are required.
type ScheduleRequest struct {
	// Family is FamilySD3 or FamilyFLUX (required).
	Family Family
	// Config is the scheduler config from a preset or a model folder (ParseFlowMatchConfig).
	Config FlowMatchConfig
	// Steps is the number of denoising steps, [1, MaxSteps]. With Sigmas it may be 0 (inferred) or must
	// equal the number of σ above the terminal 0.
	Steps int
	// Scheduler is "" for the config's own class (flowmatch, flowmatch_heun, dpmpp or unipc), else any
	// name from SchedulerNames: a ComfyUI scheduler over the model's sampling table, or a diffusers class.
	Scheduler string
	// Shift > 0 overrides the static shift and turns dynamic shifting off, as constructing the diffusers
	// scheduler with shift=Shift, use_dynamic_shifting=False would (sd.cpp --flow-shift). 0 keeps the
	// config's. For FLUX, e^μ is the equivalent static shift (μ = 1.15 ⇔ 3.158).
	Shift float64
	// Sigmas is a custom σ list: values in [0, 1], strictly decreasing; a terminal 0 is appended when
	// missing. It overrides Scheduler. By default the list is shifted as diffusers' SD3 and FLUX
	// pipelines shift a `sigmas=` argument: by the config's shift (or Shift), or the time shift with μ
	// under dynamic shifting, then shift_terminal and re-spacing, in the config class's arithmetic
	// (FlowMatchEuler's float32 custom path; UniPC's float64 flow branch; Heun and DPM-Solver, which
	// take no list in diffusers, as FlowMatchEuler with their shift). With SigmasRaw it is used as
	// given, rounded to float32.
	Sigmas []float64
	// SigmasRaw uses Sigmas exactly as given: no shift, no re-spacing (rflow's meaning before it
	// followed diffusers).
	SigmasRaw bool
	// ImageSeqLen is the image token count (H/16)·(W/16) (ImageSeqLen(w, h)); it sets μ and is required
	// when the config uses dynamic shifting (FLUX.1-dev), ignored otherwise.
	ImageSeqLen int
}

// Schedule is a complete σ schedule and what the model sees at each step.
type Schedule struct {
	// Scheduler is the schedule built: a SchedulerNames entry, or "custom" for ScheduleRequest.Sigmas.
	Scheduler string
	// Sigmas are the σ the sampler walks, float32 values, terminal 0 included: len = Steps+1, except that
	// ComfyUI's ddim_uniform and beta can yield other counts (as in ComfyUI). Only a config with
	// invert_sigmas (Mochi) ends in 1 and increases.
	Sigmas []float64
	// Timesteps are the scheduler's timesteps t in training-step units (diffusers scheduler.timesteps):
	// float32(σ·N), integer-truncated for dpmpp and unipc. len = len(Sigmas)−1.
	Timesteps []float64
	// ModelTimesteps are the exact values fed to the transformer's timestep input: Family.ModelTimestep(t)
	// for the diffusers schedules and custom σ, ComfyUI's model_sampling.timestep(σ) (σ·1000 SD3, σ FLUX)
	// for ComfyUI's schedulers.
	ModelTimesteps []float64
	// Mu is the resolution shift μ used (0 unless DynamicShift).
	Mu float64
	// DynamicShift reports whether the time shift with Mu replaced the static shift.
	DynamicShift bool
}

// scheduleInput is what a diffusers schedule builder needs.
type scheduleInput struct {
	cfg    FlowMatchConfig
	family Family
	steps  int
	mu     float64
	seqLen int // ScheduleRequest.ImageSeqLen (flux2)
}

// scheduleEntry is one row of the scheduler table: exactly one of comfy and diffusers is set.
type scheduleEntry struct {
	name      string
	doc       string
	fixedMu   bool   // the schedule ignores dynamic shifting (FlowMatchHeun, flux2's own μ)
	seqLen    bool   // the schedule needs ScheduleRequest.ImageSeqLen (flux2)
	sampler   string // the sampler of the diffusers class (diffusers entries only)
	comfy     func(m comfyFlow, steps int) []float64
	diffusers func(in scheduleInput) (sigmas, timesteps []float64)
}

// scheduleEntries is the one table scheduler names resolve through (style lesson 12).
var scheduleEntries = []scheduleEntry{
	{name: "simple", doc: "ComfyUI simple: every len/steps-th entry of the model's σ table", comfy: comfySimple},
	{name: "normal", doc: "ComfyUI normal: σ(linspace(t(σmax), t(σmin), steps)); = diffusers for SD3",
		comfy: func(m comfyFlow, n int) []float64 { return comfyNormal(m, n, false) }},
	{name: "sgm_uniform", doc: "ComfyUI sgm_uniform: normal over steps+1 points without the last",
		comfy: func(m comfyFlow, n int) []float64 { return comfyNormal(m, n, true) }},
	{name: "karras", doc: "ComfyUI karras: Karras et al. (2022) ρ=7 over the table's σ range", comfy: comfyKarras},
	{name: "exponential", doc: "ComfyUI exponential: log-linear over the table's σ range", comfy: comfyExponential},
	{name: "ddim_uniform", doc: "ComfyUI ddim_uniform: table entries 1, 1+len/steps, … (step count may differ)",
		comfy: comfyDDIMUniform},
	{name: "beta", doc: "ComfyUI beta: Beta(0.6, 0.6) quantiles of the table (duplicates dropped)", comfy: comfyBeta},
	{name: "linear_quadratic", doc: "ComfyUI linear_quadratic (Mochi): linear then quadratic in 1−σ",
		comfy: comfyLinearQuadratic},
	{name: "kl_optimal", doc: "ComfyUI kl_optimal: tan of linearly spaced atan σ", comfy: comfyKLOptimal},
	{name: "smoothstep", doc: "stable-diffusion.cpp smoothstep: table entries at u²(3−2u) of uniform u (dense at both ends)",
		comfy: scheduleSmoothstep},
	{name: "logit_normal", doc: "quantiles of SD3's logit-normal(0, 1) training distribution, then the model's shift",
		comfy: scheduleLogitNormal},
	{name: "bong_tangent", doc: "RES4LYF bong_tangent (as stable-diffusion.cpp runs it): two arctan ramps σmax → mid → σmin, then 0",
		comfy: scheduleBongTangent},
	{name: "uniform", doc: "N+1 uniform points 1 → 0 including 0 (FlowSteer's grid), then the model's shift", comfy: scheduleUniform},
	{name: "flux2", doc: "FLUX.2: linspace(1, 0, N+1) time-shifted by the empirical μ(image tokens, steps)",
		fixedMu: true, seqLen: true, sampler: "euler", diffusers: flux2Sigmas},
	{name: "flowmatch", doc: "diffusers FlowMatchEulerDiscreteScheduler (the FLUX pipeline's linspace σ for flux)",
		diffusers: func(in scheduleInput) ([]float64, []float64) {
			var custom []float64
			if in.family == FamilyFLUX {
				custom = fluxPipelineSigmas(in.steps)
			}
			return flowMatchEuler(in.cfg, in.steps, in.mu, custom)
		}, sampler: "euler"},
	{name: "flowmatch_heun", doc: "diffusers FlowMatchHeunDiscreteScheduler: static shift only, σ not yet doubled",
		fixedMu: true, sampler: "heun", diffusers: func(in scheduleInput) ([]float64, []float64) { return flowMatchHeun(in.cfg, in.steps) }},
	{name: "dpmpp", doc: "diffusers DPMSolverMultistepScheduler flow σ (integer timesteps)",
		sampler: "dpmpp_2m", diffusers: func(in scheduleInput) ([]float64, []float64) { return dpmSolverFlow(in.cfg, in.steps, in.mu) }},
	{name: "unipc", doc: "diffusers UniPCMultistepScheduler flow σ (integer timesteps, σ0 nudged below 1)",
		sampler: "uni_pc", diffusers: func(in scheduleInput) ([]float64, []float64) { return unipcFlow(in.cfg, in.steps, in.mu) }},
}

// SchedulerNames lists the names ScheduleRequest.Scheduler accepts: the ComfyUI schedulers, then the
// diffusers classes.
func SchedulerNames() []string {
	names := make([]string, len(scheduleEntries))
	for i, e := range scheduleEntries {
		names[i] = e.name
	}
	return names
}

// SchedulerHelp is a one-line description of a scheduler name, "" if the name is unknown.
func SchedulerHelp(name string) string {
	if e, ok := lookupSchedule(name); ok {
		return e.doc
	}
	return ""
}

func lookupSchedule(name string) (scheduleEntry, bool) {
	for _, e := range scheduleEntries {
		if e.name == name {
			return e, true
		}
	}
	return scheduleEntry{}, false
}

// classSchedule maps a config's _class_name to its own schedule.
func classSchedule(class string) string {
	switch class {
	case ClassFlowMatchHeun:
		return "flowmatch_heun"
	case ClassDPMSolver:
		return "dpmpp"
	case ClassUniPCMultistep:
		return "unipc"
	}
	return "flowmatch"
}

// DefaultSampler is the sampler a run uses when it names none, so that a model runs as diffusers runs
// it: the step of the diffusers scheduler class. For a schedule built from a diffusers class
// (flowmatch, flowmatch_heun, dpmpp, unipc) that is the class's sampler; for a ComfyUI schedule or a
// custom σ list, the class cfg names: FlowMatchEulerDiscreteScheduler → euler (euler_stochastic with
// stochastic_sampling), FlowMatchHeunDiscreteScheduler → heun, DPMSolverMultistepScheduler (flow
// mode, DPM-Solver++ order 2) → dpmpp_2m, UniPCMultistepScheduler (flow mode, bh2) → uni_pc.
func DefaultSampler(cfg FlowMatchConfig, schedule string) string {
	e, ok := lookupSchedule(schedule)
	if !ok || e.sampler == "" {
		e, _ = lookupSchedule(classSchedule(cfg.ClassName))
	}
	if name := e.sampler; name != "euler" {
		return name
	}
	if cfg.StochasticSampling && cfg.ClassName == ClassFlowMatchEuler {
		return "euler_stochastic"
	}
	return "euler"
}

// BuildSchedule builds the σ schedule r asks for — a pure function: the same request gives the same
// bits. Errors (never panics) for an unknown family or scheduler (listing the valid names), an invalid
// config, steps outside [1, MaxSteps], a bad custom σ list, a missing ImageSeqLen under dynamic
// shifting, or a schedule that leaves [0, 1] (e.g. shift_terminal with one step).
func BuildSchedule(r ScheduleRequest) (Schedule, error) {
	cfg, err := r.effectiveConfig()
	if err != nil {
		return Schedule{}, err
	}
	if len(r.Sigmas) > 0 {
		return customSchedule(r, cfg)
	}
	if r.Steps < 1 || r.Steps > MaxSteps {
		return Schedule{}, paramErrorf("Steps", "%d is outside [1, %d]", r.Steps, MaxSteps)
	}
	name := r.Scheduler
	if name == "" {
		name = classSchedule(cfg.ClassName)
	}
	e, ok := lookupSchedule(name)
	if !ok {
		return Schedule{}, &ScheduleNameError{Kind: "scheduler", Name: name, Valid: SchedulerNames()}
	}
	if e.seqLen && r.ImageSeqLen < 1 {
		return Schedule{}, paramErrorf("ImageSeqLen", "the %s schedule needs the image token count (H/16)·(W/16), got %d", name, r.ImageSeqLen)
	}
	in := scheduleInput{cfg: cfg, family: r.Family, steps: r.Steps, seqLen: r.ImageSeqLen}
	s := Schedule{Scheduler: name, DynamicShift: cfg.UseDynamicShifting && !e.fixedMu}
	if s.DynamicShift {
		if in.mu, err = r.mu(cfg); err != nil {
			return Schedule{}, err
		}
		s.Mu = in.mu
	}
	if e.comfy != nil {
		if s.DynamicShift && cfg.TimeShiftType != TimeShiftExponential {
			return Schedule{}, paramErrorf("Scheduler", "ComfyUI's %s has no %s time shift (ModelSamplingFlux is exponential)",
				name, cfg.TimeShiftType)
		}
		m := newComfyFlow(cfg, r.Family, in.mu)
		s.Sigmas = e.comfy(m, r.Steps)
		s.Timesteps, s.ModelTimesteps = comfyTimesteps(m, cfg, s.Sigmas)
	} else {
		s.Sigmas, s.Timesteps = e.diffusers(in)
		s.ModelTimesteps = familyModelTimesteps(r.Family, s.Timesteps)
		if e.seqLen { // flux2 time-shifts with its own μ
			s.Mu, s.DynamicShift = Flux2EmpiricalMu(r.ImageSeqLen, r.Steps), true
		}
	}
	return s, checkSchedule(s)
}

// effectiveConfig validates the family and config and applies the Shift override.
func (r ScheduleRequest) effectiveConfig() (FlowMatchConfig, error) {
	if r.Family != FamilySD3 && r.Family != FamilyFLUX {
		return FlowMatchConfig{}, &ScheduleNameError{Kind: "family", Name: string(r.Family), Valid: FamilyNames()}
	}
	cfg := r.Config
	if err := cfg.Validate(); err != nil {
		return FlowMatchConfig{}, err
	}
	switch {
	case r.Shift > 0 && !math.IsInf(r.Shift, 1):
		cfg.Shift, cfg.UseDynamicShifting = r.Shift, false
	case r.Shift != 0:
		return FlowMatchConfig{}, paramErrorf("Shift", "%v is not 0 (the config's) or a finite number > 0", r.Shift)
	}
	return cfg, nil
}

// mu is DynamicShiftMu for the request's image size.
func (r ScheduleRequest) mu(cfg FlowMatchConfig) (float64, error) {
	if r.ImageSeqLen < 1 {
		return 0, paramErrorf("ImageSeqLen", "dynamic shifting needs the image token count (H/16)·(W/16), got %d",
			r.ImageSeqLen)
	}
	mu := DynamicShiftMu(r.ImageSeqLen, cfg)
	if !finiteF64(mu) {
		return 0, paramErrorf("ImageSeqLen", "μ(%d) = %v is not finite", r.ImageSeqLen, mu)
	}
	return mu, nil
}

// customSchedule validates a user σ list, then shifts it as diffusers does (shiftedCustomSchedule) or,
// with SigmasRaw, uses it as is (float32-rounded, terminal 0 appended).
func customSchedule(r ScheduleRequest, cfg FlowMatchConfig) (Schedule, error) {
	sig := make([]float64, 0, len(r.Sigmas)+1)
	for i, v := range r.Sigmas {
		if !(v >= 0 && v <= 1) {
			return Schedule{}, paramErrorf("Sigmas", "Sigmas[%d] = %v is outside [0, 1]", i, v)
		}
		v32 := roundToFloat32(v)
		if i > 0 && !(v32 < sig[i-1]) {
			return Schedule{}, paramErrorf("Sigmas", "not strictly decreasing: Sigmas[%d] = %v after %v (as float32)",
				i, v, sig[i-1])
		}
		sig = append(sig, v32)
	}
	if sig[len(sig)-1] != 0 {
		sig = append(sig, 0)
	}
	steps := len(sig) - 1
	switch {
	case steps < 1 || steps > MaxSteps:
		return Schedule{}, paramErrorf("Sigmas", "%d steps (σ above 0) is outside [1, %d]", steps, MaxSteps)
	case r.Steps != 0 && r.Steps != steps:
		return Schedule{}, paramErrorf("Steps", "%d, but Sigmas has %d steps", r.Steps, steps)
	}
	if !r.SigmasRaw {
		return shiftedCustomSchedule(r, cfg, r.Sigmas[:steps])
	}
	n := float32(cfg.NumTrainTimesteps)
	ts := make([]float64, steps)
	for i := range ts {
		ts[i] = float64(float32(sig[i]) * n)
	}
	return Schedule{Scheduler: "custom", Sigmas: sig, Timesteps: ts,
		ModelTimesteps: familyModelTimesteps(r.Family, ts)}, nil
}

// familyModelTimesteps maps scheduler timesteps to the family's transformer input.
func familyModelTimesteps(f Family, ts []float64) []float64 {
	out := make([]float64, len(ts))
	for i, t := range ts {
		out[i] = f.ModelTimestep(t)
	}
	return out
}

// comfyTimesteps gives a ComfyUI schedule's timesteps in diffusers units (float32(σ·N)) and what
// ComfyUI feeds the model (model_sampling.timestep(σ)).
func comfyTimesteps(m comfyFlow, cfg FlowMatchConfig, sigmas []float64) (ts, model []float64) {
	n := float32(cfg.NumTrainTimesteps)
	steps := len(sigmas) - 1
	ts, model = make([]float64, steps), make([]float64, steps)
	for i, s := range sigmas[:steps] {
		ts[i] = float64(float32(s) * n)
		model[i] = float64(m.timestep(float32(s)))
	}
	return ts, model
}

// checkSchedule rejects non-finite or out-of-range values, which some configs produce (diffusers returns
// NaN there).
func checkSchedule(s Schedule) error {
	for i, v := range s.Sigmas {
		if !(v >= 0 && v <= 1) {
			return paramErrorf("Sigmas", "the %s schedule gives σ[%d] = %v, outside [0, 1]", s.Scheduler, i, v)
		}
	}
	for i, v := range s.ModelTimesteps {
		if !finiteF64(v) || !finiteF64(s.Timesteps[i]) {
			return paramErrorf("Timesteps", "the %s schedule gives a non-finite timestep at step %d", s.Scheduler, i)
		}
	}
	return nil
}

// String renders the schedule compactly for logs: name, μ and σ.
func (s Schedule) String() string {
	return fmt.Sprintf("%s μ=%g dynamic=%t σ=%v", s.Scheduler, s.Mu, s.DynamicShift, s.Sigmas)
}
