package scheduler

import "math"

// shiftedCustomSchedule is what diffusers' SD3 and FLUX pipelines make of a `sigmas=` list (their
// retrieve_timesteps hands it to scheduler.set_timesteps together with μ when the config uses dynamic
// shifting): the σ above the terminal 0 (the user's values, before any rounding) are shifted by the
// config's shift, or time-shifted with μ = DynamicShiftMu(ImageSeqLen), then stretched and re-spaced
// as the config says, and the terminal 0 is appended. Per class:
//
//   - FlowMatchEulerDiscreteScheduler: set_timesteps(sigmas=…) exactly: the list as numpy float32,
//     shift (or time shift), shift_terminal, karras/exponential/beta re-spacing and invert_sigmas, all
//     in float32 as diffusers does (flowMatchEuler's custom path, the same as the FLUX pipeline's own
//     linspace); timesteps float32(σ·N).
//   - UniPCMultistepScheduler (flow mode): its flow branch with the list: float64 shift (or time
//     shift), shift_terminal, σ0 nudged below 1 by 1e-6, integer-truncated timesteps. (diffusers 0.38
//     fails on the plain list the pipelines pass — list × float is a TypeError — and computes this
//     when given the list as an array.)
//   - FlowMatchHeunDiscreteScheduler and DPMSolverMultistepScheduler take no σ list in diffusers
//     (set_timesteps has no sigmas argument, so the pipelines refuse one); rflow shifts the list as
//     FlowMatchEuler would with the class's shift — Heun's static shift, DPM-Solver's flow_shift or e^μ
//     — so --sigmas means the same schedule shape on every model.
//
// A shift that folds two neighbouring σ onto one float32 value is an error: such a list needs
// SigmasRaw.
func shiftedCustomSchedule(r ScheduleRequest, cfg FlowMatchConfig, sigmas []float64) (Schedule, error) {
	s := Schedule{Scheduler: "custom"}
	fixed := cfg.ClassName == ClassFlowMatchHeun // FlowMatchHeun has no dynamic shifting
	var err error
	if cfg.UseDynamicShifting && !fixed {
		if s.Mu, err = r.mu(cfg); err != nil {
			return Schedule{}, err
		}
		s.DynamicShift = true
	}
	switch cfg.ClassName {
	case ClassUniPCMultistep:
		s.Sigmas, s.Timesteps = unipcCustom(cfg, sigmas, s.Mu)
	case ClassFlowMatchHeun, ClassDPMSolver:
		fm := DefaultFlowMatchConfig()
		fm.NumTrainTimesteps, fm.Shift, fm.UseDynamicShifting = cfg.NumTrainTimesteps, cfg.Shift, s.DynamicShift
		fm.BaseShift, fm.MaxShift, fm.BaseImageSeqLen, fm.MaxImageSeqLen = cfg.BaseShift, cfg.MaxShift, cfg.BaseImageSeqLen, cfg.MaxImageSeqLen
		fm.TimeShiftType = cfg.TimeShiftType
		s.Sigmas, s.Timesteps = flowMatchEuler(fm, len(sigmas), s.Mu, sigmas)
	default:
		s.Sigmas, s.Timesteps = flowMatchEuler(cfg, len(sigmas), s.Mu, sigmas)
	}
	s.ModelTimesteps = familyModelTimesteps(r.Family, s.Timesteps)
	if err := checkSchedule(s); err != nil {
		return Schedule{}, err
	}
	for i := 1; i < len(s.Sigmas)-1; i++ {
		if d := s.Sigmas[i] - s.Sigmas[i-1]; (d >= 0) != cfg.InvertSigmas || d == 0 {
			return Schedule{}, paramErrorf("Sigmas", "the model's shift maps Sigmas[%d] and Sigmas[%d] onto the same float32 σ %v; "+
				"use the list unshifted (SigmasRaw) or spread it", i-1, i, s.Sigmas[i])
		}
	}
	return s, nil
}

// unipcCustom is UniPCMultistepScheduler.set_timesteps(sigmas=…) in flow mode: unipcFlow with the
// given list in place of linspace(1, 1/N, n+1)[:-1].
func unipcCustom(cfg FlowMatchConfig, custom []float64, mu float64) (sigmas, timesteps []float64) {
	s := make([]float64, len(custom))
	for i, x := range custom {
		if cfg.UseDynamicShifting {
			s[i] = timeShift64(cfg.TimeShiftType, mu, x)
		} else {
			s[i] = staticShift64(cfg.Shift, x)
		}
	}
	if cfg.ShiftTerminal > 0 {
		stretchToTerminal64(cfg.ShiftTerminal, s)
	}
	if math.Abs(s[0]-1) < unipcOneNudge {
		s[0] -= unipcOneNudge
	}
	return truncatedFlowSchedule(s, float64(cfg.NumTrainTimesteps))
}
