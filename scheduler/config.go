package scheduler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
)

// Scheduler class names a diffusers scheduler_config.json can carry in "_class_name". The class picks the
// schedule BuildSchedule uses when the request names none (see ScheduleRequest.Scheduler).
const (
	ClassFlowMatchEuler  = "FlowMatchEulerDiscreteScheduler" // schedule "flowmatch" (spec §2.2–2.4)
	ClassFlowMatchHeun   = "FlowMatchHeunDiscreteScheduler"  // FlowMatchEuler's static-shift σ (spec §2.7)
	ClassDPMSolver       = "DPMSolverMultistepScheduler"     // schedule "dpmpp", flow mode (spec §2.8)
	ClassUniPCMultistep  = "UniPCMultistepScheduler"         // schedule "unipc", flow mode (spec §2.9)
	TimeShiftExponential = "exponential"                     // e^μ / (e^μ + (1/t − 1))
	TimeShiftLinear      = "linear"                          // μ / (μ + (1/t − 1))
	FinalSigmasZero      = "zero"                            // the only final_sigmas_type rflow supports
)

// The diffusers defaults (FlowMatchEulerDiscreteScheduler.__init__ and the pipelines' calculate_shift).
// Every default of the scheduler config lives here and nowhere else (style lesson 6).
const (
	defaultNumTrainTimesteps = 1000
	defaultShift             = 1.0
	defaultBaseShift         = 0.5
	defaultMaxShift          = 1.15
	defaultBaseImageSeqLen   = 256
	defaultMaxImageSeqLen    = 4096
)

// Image-sequence geometry shared by SD3 and FLUX: the VAE downsamples by 8 and the transformer takes 2×2
// patches, so one image token covers 16×16 pixels (spec §3.3 `(h/2)(w/2)` on the latent, §4.3).
const imageTokenPixels = 16

// FlowMatchConfig is the schedule-relevant part of a diffusers scheduler_config.json (spec §2.1, §2.8,
// §2.9). Build one with DefaultFlowMatchConfig or ParseFlowMatchConfig; a literal zero value is not valid.
type FlowMatchConfig struct {
	// ClassName is "_class_name": ClassFlowMatchEuler (default), ClassFlowMatchHeun, ClassDPMSolver or
	// ClassUniPCMultistep. It picks the default schedule.
	ClassName string
	// NumTrainTimesteps is N, the training steps; t = σ·N. Default 1000, range ≥ 1.
	NumTrainTimesteps int
	// Shift is the static shift s in s·σ/(1+(s−1)·σ): "shift" for the FlowMatch classes, "flow_shift" for
	// DPM-Solver and UniPC. Default 1 (no shift), range > 0. Unused while UseDynamicShifting is set.
	Shift float64
	// UseDynamicShifting replaces the static shift by the time shift with μ = DynamicShiftMu(image size).
	UseDynamicShifting bool
	// BaseShift and MaxShift are μ at BaseImageSeqLen and MaxImageSeqLen image tokens; μ is linear in
	// between and beyond. Defaults 0.5 and 1.15 (FLUX.1-dev ⇒ μ = 1.15 at 1024²).
	BaseShift, MaxShift float64
	// BaseImageSeqLen and MaxImageSeqLen are the two anchor token counts of μ. Defaults 256 and 4096;
	// they must differ.
	BaseImageSeqLen, MaxImageSeqLen int
	// TimeShiftType is TimeShiftExponential (default) or TimeShiftLinear.
	TimeShiftType string
	// InvertSigmas (Mochi) returns 1−σ with a terminal 1 instead of 0. FlowMatch classes only.
	InvertSigmas bool
	// ShiftTerminal, when > 0, stretches the shifted σ so the last one equals it (LTX). Range [0, 1);
	// 0 (JSON null) is off. FlowMatchEuler and UniPC only.
	ShiftTerminal float64
	// UseKarrasSigmas, UseExponentialSigmas and UseBetaSigmas re-space the shifted σ (Karras ρ=7,
	// log-linear, Beta(0.6, 0.6) quantiles). At most one may be set. FlowMatchEuler only.
	UseKarrasSigmas, UseExponentialSigmas, UseBetaSigmas bool
	// UseFlowSigmas is DPM-Solver's and UniPC's flow mode; it must be set for those classes.
	UseFlowSigmas bool
	// FinalSigmasType is DPM-Solver's and UniPC's terminal σ; only FinalSigmasZero ("zero") is supported.
	FinalSigmasType string
	// StochasticSampling is FlowMatchEuler's re-noising step (spec §2.5). Schedules ignore it; it is kept
	// so a sampler can honour the folder.
	StochasticSampling bool
}

// DefaultFlowMatchConfig returns diffusers' FlowMatchEulerDiscreteScheduler defaults: N = 1000, shift 1,
// no dynamic shifting (base/max shift 0.5/1.15 over 256/4096 image tokens), exponential time shift.
func DefaultFlowMatchConfig() FlowMatchConfig {
	return FlowMatchConfig{
		ClassName:         ClassFlowMatchEuler,
		NumTrainTimesteps: defaultNumTrainTimesteps,
		Shift:             defaultShift,
		BaseShift:         defaultBaseShift,
		MaxShift:          defaultMaxShift,
		BaseImageSeqLen:   defaultBaseImageSeqLen,
		MaxImageSeqLen:    defaultMaxImageSeqLen,
		TimeShiftType:     TimeShiftExponential,
		FinalSigmasType:   FinalSigmasZero,
	}
}

// FlowMatchClassNames lists the scheduler classes a config may name, in a stable order.
func FlowMatchClassNames() []string {
	return []string{ClassFlowMatchEuler, ClassFlowMatchHeun, ClassDPMSolver, ClassUniPCMultistep}
}

// DynamicShiftMu is the resolution-dependent shift μ for imageSeqLen image tokens (diffusers
// calculate_shift, BFL get_lin_function; spec §1): μ = L·m + b with m = (max_shift − base_shift) /
// (max_seq − base_seq) and b = base_shift − m·base_seq, in that float64 order. Every family uses this one
// function. 1024² (4096 tokens) with the defaults gives exactly 1.15.
func DynamicShiftMu(imageSeqLen int, cfg FlowMatchConfig) float64 {
	m := (cfg.MaxShift - cfg.BaseShift) / float64(cfg.MaxImageSeqLen-cfg.BaseImageSeqLen)
	b := cfg.BaseShift - float64(m*float64(cfg.BaseImageSeqLen))
	return float64(float64(imageSeqLen)*m) + b
}

// ImageSeqLen is the number of image tokens of a width×height image for SD3 and FLUX:
// (height/16)·(width/16) (VAE factor 8 × 2×2 patches); 4096 at 1024².
func ImageSeqLen(width, height int) int {
	return (height / imageTokenPixels) * (width / imageTokenPixels)
}

// rawFlowMatchConfig mirrors scheduler_config.json. Pointers stay nil for absent keys and JSON null, so
// the default survives; integers arrive as float64 and are checked to be whole.
type rawFlowMatchConfig struct {
	ClassName            *string  `json:"_class_name"`
	NumTrainTimesteps    *float64 `json:"num_train_timesteps"`
	Shift                *float64 `json:"shift"`
	FlowShift            *float64 `json:"flow_shift"`
	UseDynamicShifting   *bool    `json:"use_dynamic_shifting"`
	BaseShift            *float64 `json:"base_shift"`
	MaxShift             *float64 `json:"max_shift"`
	BaseImageSeqLen      *float64 `json:"base_image_seq_len"`
	MaxImageSeqLen       *float64 `json:"max_image_seq_len"`
	TimeShiftType        *string  `json:"time_shift_type"`
	InvertSigmas         *bool    `json:"invert_sigmas"`
	ShiftTerminal        *float64 `json:"shift_terminal"`
	UseKarrasSigmas      *bool    `json:"use_karras_sigmas"`
	UseExponentialSigmas *bool    `json:"use_exponential_sigmas"`
	UseBetaSigmas        *bool    `json:"use_beta_sigmas"`
	UseFlowSigmas        *bool    `json:"use_flow_sigmas"`
	FinalSigmasType      *string  `json:"final_sigmas_type"`
	StochasticSampling   *bool    `json:"stochastic_sampling"`
}

// ParseFlowMatchConfig reads the bytes of a model folder's scheduler/scheduler_config.json into a config,
// starting from DefaultFlowMatchConfig: absent keys and nulls keep the default, unknown keys are ignored,
// "_class_name" is kept. The static shift comes from "flow_shift" for DPM-Solver/UniPC and from "shift"
// otherwise. Malformed JSON, wrong types and invalid values (see Validate) are errors.
func ParseFlowMatchConfig(data []byte) (FlowMatchConfig, error) {
	var raw rawFlowMatchConfig
	if err := json.Unmarshal(data, &raw); err != nil {
		return FlowMatchConfig{}, fmt.Errorf("scheduler: parse scheduler_config.json: %w", err)
	}
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return FlowMatchConfig{}, errors.New("scheduler: parse scheduler_config.json: want a JSON object, got null")
	}
	c := DefaultFlowMatchConfig()
	overrideString(&c.ClassName, raw.ClassName)
	shift := raw.Shift
	if c.ClassName == ClassDPMSolver || c.ClassName == ClassUniPCMultistep {
		shift = raw.FlowShift
	}
	overrideFloat(&c.Shift, shift)
	overrideFloat(&c.BaseShift, raw.BaseShift)
	overrideFloat(&c.MaxShift, raw.MaxShift)
	overrideFloat(&c.ShiftTerminal, raw.ShiftTerminal)
	overrideString(&c.TimeShiftType, raw.TimeShiftType)
	overrideString(&c.FinalSigmasType, raw.FinalSigmasType)
	for _, b := range []struct {
		dst *bool
		src *bool
	}{
		{&c.UseDynamicShifting, raw.UseDynamicShifting}, {&c.InvertSigmas, raw.InvertSigmas},
		{&c.UseKarrasSigmas, raw.UseKarrasSigmas}, {&c.UseExponentialSigmas, raw.UseExponentialSigmas},
		{&c.UseBetaSigmas, raw.UseBetaSigmas}, {&c.UseFlowSigmas, raw.UseFlowSigmas},
		{&c.StochasticSampling, raw.StochasticSampling},
	} {
		if b.src != nil {
			*b.dst = *b.src
		}
	}
	for _, n := range []struct {
		key string
		dst *int
		src *float64
	}{
		{"num_train_timesteps", &c.NumTrainTimesteps, raw.NumTrainTimesteps},
		{"base_image_seq_len", &c.BaseImageSeqLen, raw.BaseImageSeqLen},
		{"max_image_seq_len", &c.MaxImageSeqLen, raw.MaxImageSeqLen},
	} {
		if n.src == nil {
			continue
		}
		v := *n.src
		if v != math.Trunc(v) || math.Abs(v) > 1<<31 {
			return FlowMatchConfig{}, fmt.Errorf("scheduler: parse scheduler_config.json: %s = %v, want an integer", n.key, v)
		}
		*n.dst = int(v)
	}
	if err := c.Validate(); err != nil {
		return FlowMatchConfig{}, fmt.Errorf("scheduler: scheduler_config.json: %w", err)
	}
	return c, nil
}

func overrideFloat(dst *float64, src *float64) {
	if src != nil {
		*dst = *src
	}
}

func overrideString(dst *string, src *string) {
	if src != nil {
		*dst = *src
	}
}

// Validate reports the first problem with c, as diffusers' constructors and set_timesteps would: an
// unknown class or time-shift type (the error lists the valid ones), N < 1, a shift that is not a finite
// positive number, equal μ anchors under dynamic shifting, shift_terminal outside [0, 1), more than one of
// karras/exponential/beta, a DPM-Solver/UniPC config without use_flow_sigmas, or a final σ type other than
// "zero".
func (c FlowMatchConfig) Validate() error {
	if !nameIn(FlowMatchClassNames(), c.ClassName) {
		return &ScheduleNameError{Kind: "_class_name", Name: c.ClassName, Valid: FlowMatchClassNames()}
	}
	if !nameIn([]string{TimeShiftExponential, TimeShiftLinear}, c.TimeShiftType) {
		return &ScheduleNameError{Kind: "time_shift_type", Name: c.TimeShiftType,
			Valid: []string{TimeShiftExponential, TimeShiftLinear}}
	}
	switch {
	case c.NumTrainTimesteps < 1 || c.NumTrainTimesteps > 1<<24:
		return paramErrorf("num_train_timesteps", "%d is outside [1, 16777216]", c.NumTrainTimesteps)
	case !(c.Shift > 0) || math.IsInf(c.Shift, 0):
		return paramErrorf("shift", "%v is not a finite number > 0", c.Shift)
	case !(c.ShiftTerminal >= 0 && c.ShiftTerminal < 1):
		return paramErrorf("shift_terminal", "%v is outside [0, 1)", c.ShiftTerminal)
	case c.UseDynamicShifting && c.MaxImageSeqLen == c.BaseImageSeqLen:
		return paramErrorf("max_image_seq_len", "equals base_image_seq_len (%d); μ is undefined", c.BaseImageSeqLen)
	case c.UseDynamicShifting && !(finiteF64(c.BaseShift) && finiteF64(c.MaxShift)):
		return paramErrorf("base_shift", "base_shift %v and max_shift %v must be finite", c.BaseShift, c.MaxShift)
	case countSet(c.UseKarrasSigmas, c.UseExponentialSigmas, c.UseBetaSigmas) > 1:
		return paramErrorf("use_karras_sigmas",
			"only one of use_beta_sigmas, use_exponential_sigmas, use_karras_sigmas can be used")
	}
	if c.ClassName == ClassDPMSolver || c.ClassName == ClassUniPCMultistep {
		return c.validateMultistep()
	}
	return nil
}

// validateMultistep checks what rflow supports of DPM-Solver and UniPC: their flow-sigma branch only.
func (c FlowMatchConfig) validateMultistep() error {
	switch {
	case !c.UseFlowSigmas:
		return paramErrorf("use_flow_sigmas", "%s without use_flow_sigmas=true is not a flow-matching schedule", c.ClassName)
	case c.UseKarrasSigmas || c.UseExponentialSigmas || c.UseBetaSigmas:
		return paramErrorf("use_karras_sigmas", "%s: karras/exponential/beta σ replace the flow σ (not supported)", c.ClassName)
	case c.InvertSigmas:
		return paramErrorf("invert_sigmas", "%s has no invert_sigmas", c.ClassName)
	case c.FinalSigmasType != FinalSigmasZero:
		return &ScheduleNameError{Kind: "final_sigmas_type", Name: c.FinalSigmasType, Valid: []string{FinalSigmasZero}}
	case c.ClassName == ClassDPMSolver && c.ShiftTerminal > 0:
		return paramErrorf("shift_terminal", "%s has no shift_terminal", c.ClassName)
	case c.ClassName == ClassDPMSolver && c.UseDynamicShifting && c.TimeShiftType != TimeShiftExponential:
		return paramErrorf("time_shift_type", "%s supports dynamic shifting only with %q", c.ClassName, TimeShiftExponential)
	}
	return nil
}

func nameIn(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func countSet(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

func finiteF64(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// ScheduleNameError reports a name that is not in one of the package's tables (scheduler, preset, family, class,
// time-shift type). Valid lists the accepted names.
type ScheduleNameError struct {
	Kind  string   // what was looked up: "scheduler", "preset", "family", "_class_name", …
	Name  string   // the name given
	Valid []string // the names accepted, in display order
}

func (e *ScheduleNameError) Error() string {
	return fmt.Sprintf("scheduler: unknown %s %q (valid: %s)", e.Kind, e.Name, strings.Join(e.Valid, ", "))
}

// ScheduleParamError reports an out-of-range or inconsistent schedule parameter; Field names it (a
// ScheduleRequest field or a scheduler_config.json key).
type ScheduleParamError struct {
	Field  string
	Reason string
}

func (e *ScheduleParamError) Error() string { return "scheduler: invalid " + e.Field + ": " + e.Reason }

func paramErrorf(field, format string, args ...any) error {
	return &ScheduleParamError{Field: field, Reason: fmt.Sprintf(format, args...)}
}
