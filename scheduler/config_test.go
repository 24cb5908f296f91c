package scheduler

import (
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
)

func TestParseFlowMatchConfig(t *testing.T) {
	def := DefaultFlowMatchConfig()
	with := func(f func(*FlowMatchConfig)) FlowMatchConfig { c := def; f(&c); return c }
	tests := []struct {
		name string
		json string
		want FlowMatchConfig
	}{
		{"empty object", `{}`, def},
		{"unknown keys ignored", `{"_diffusers_version": "0.30.0", "timestep_spacing": "linspace", "foo": [1, {}]}`, def},
		{"nulls keep defaults", `{"shift": null, "shift_terminal": null, "base_shift": null, "num_train_timesteps": null}`, def},
		{"sd3-medium", `{"_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": 1000, "shift": 3.0}`,
			with(func(c *FlowMatchConfig) { c.Shift = 3 })},
		{"every field", `{"_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": 500, "shift": 2.5,
			"use_dynamic_shifting": true, "base_shift": 0.25, "max_shift": 2, "base_image_seq_len": 128.0,
			"max_image_seq_len": 8192, "time_shift_type": "linear", "invert_sigmas": true, "shift_terminal": 0.1,
			"use_exponential_sigmas": true, "stochastic_sampling": true}`,
			FlowMatchConfig{ClassName: ClassFlowMatchEuler, NumTrainTimesteps: 500, Shift: 2.5, UseDynamicShifting: true,
				BaseShift: 0.25, MaxShift: 2, BaseImageSeqLen: 128, MaxImageSeqLen: 8192, TimeShiftType: TimeShiftLinear,
				InvertSigmas: true, ShiftTerminal: 0.1, UseExponentialSigmas: true, FinalSigmasType: FinalSigmasZero,
				StochasticSampling: true}},
		{"heun keeps class", `{"_class_name": "FlowMatchHeunDiscreteScheduler", "shift": 3.0}`,
			with(func(c *FlowMatchConfig) { c.ClassName, c.Shift = ClassFlowMatchHeun, 3 })},
		{"dpm reads flow_shift, not shift", `{"_class_name": "DPMSolverMultistepScheduler", "use_flow_sigmas": true,
			"flow_shift": 3.0, "shift": 9.0, "prediction_type": "flow_prediction", "solver_order": 2, "final_sigmas_type": "zero"}`,
			with(func(c *FlowMatchConfig) { c.ClassName, c.Shift, c.UseFlowSigmas = ClassDPMSolver, 3, true })},
		{"unipc", `{"_class_name": "UniPCMultistepScheduler", "use_flow_sigmas": true, "flow_shift": 5.0}`,
			with(func(c *FlowMatchConfig) { c.ClassName, c.Shift, c.UseFlowSigmas = ClassUniPCMultistep, 5, true })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFlowMatchConfig([]byte(tt.json))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseFlowMatchConfigErrors(t *testing.T) {
	tests := []struct {
		name, json string
		want       []string
	}{
		{"not JSON", `{"shift": 3.0,`, []string{"scheduler: parse scheduler_config.json", "unexpected end"}},
		{"empty", ``, []string{"parse scheduler_config.json"}},
		{"array", `[1, 2]`, []string{"parse scheduler_config.json"}},
		{"null", `null`, []string{"want a JSON object"}},
		{"string shift", `{"shift": "3.0"}`, []string{"shift"}},
		{"fractional steps", `{"num_train_timesteps": 1000.5}`, []string{"num_train_timesteps = 1000.5, want an integer"}},
		{"bool as number", `{"use_dynamic_shifting": 1}`, []string{"use_dynamic_shifting"}},
		{"zero shift", `{"shift": 0}`, []string{"invalid shift"}},
		{"two re-spacings", `{"use_karras_sigmas": true, "use_exponential_sigmas": true}`,
			[]string{"only one of use_beta_sigmas, use_exponential_sigmas, use_karras_sigmas"}},
		{"not a flow scheduler", `{"_class_name": "EulerDiscreteScheduler"}`,
			[]string{`unknown _class_name "EulerDiscreteScheduler" (valid: FlowMatchEulerDiscreteScheduler, FlowMatchHeunDiscreteScheduler, DPMSolverMultistepScheduler, UniPCMultistepScheduler)`}},
		{"dpm without flow sigmas", `{"_class_name": "DPMSolverMultistepScheduler", "flow_shift": 3.0}`,
			[]string{"use_flow_sigmas"}},
		{"dpm sigma_min", `{"_class_name": "DPMSolverMultistepScheduler", "use_flow_sigmas": true, "final_sigmas_type": "sigma_min"}`,
			[]string{`unknown final_sigmas_type "sigma_min" (valid: zero)`}},
		{"terminal 1", `{"shift_terminal": 1.0}`, []string{"shift_terminal"}},
		{"equal anchors", `{"use_dynamic_shifting": true, "base_image_seq_len": 4096}`, []string{"max_image_seq_len"}},
		{"bad time shift", `{"time_shift_type": "sigmoid"}`, []string{"(valid: exponential, linear)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseFlowMatchConfig([]byte(tt.json))
			if err == nil {
				t.Fatalf("parsed %+v", c)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	_, err := ParseFlowMatchConfig([]byte(`{"_class_name": "DDIMScheduler"}`))
	var ne *ScheduleNameError
	if !errors.As(err, &ne) || ne.Kind != "_class_name" {
		t.Errorf("error %v is not a ScheduleNameError for _class_name", err)
	}
}

func TestDynamicShiftMu(t *testing.T) {
	cfg := DefaultFlowMatchConfig()
	tests := []struct {
		seqLen int
		want   float64
	}{
		{4096, 1.15}, // spec §1: exactly the double 1.15 at 1024²
		{ImageSeqLen(1024, 1024), 1.15},
		{256, 0.5},
		{ImageSeqLen(512, 512), 0.5 + 0.65*768/3840},
	}
	for _, tt := range tests {
		if got := DynamicShiftMu(tt.seqLen, cfg); got != tt.want && !(tt.seqLen != 4096 && schedAbs(got-tt.want) < 1e-15) {
			t.Errorf("DynamicShiftMu(%d) = %.17g, want %.17g", tt.seqLen, got, tt.want)
		}
	}
	cfg.MaxShift = 1.16 // the constant some diffusers pipelines default to: the config decides
	if got := DynamicShiftMu(4096, cfg); schedAbs(got-1.16) > 1e-15 {
		t.Errorf("μ with max_shift 1.16 = %v", got)
	}
}

func schedAbs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestImageSeqLen(t *testing.T) {
	for _, tt := range []struct{ w, h, want int }{{1024, 1024, 4096}, {512, 512, 1024}, {768, 1344, 4032},
		{2048, 2048, 16384}, {1360, 768, 4080}, {0, 1024, 0}} {
		if got := ImageSeqLen(tt.w, tt.h); got != tt.want {
			t.Errorf("ImageSeqLen(%d, %d) = %d, want %d", tt.w, tt.h, got, tt.want)
		}
	}
}

// TestScheduleDefaultsLiveInOnePlace is style lesson 6's check for the σ-schedule files: the diffusers
// defaults (1.15, 0.5, 256, 4096) appear only in config.go and presets.go. betainc.go is not scanned: its
// 0.5 is the median of a distribution, not a shift.
func TestScheduleDefaultsLiveInOnePlace(t *testing.T) {
	literal := regexp.MustCompile(`(^|[^0-9.])(1\.15|0\.5|256|4096)([^0-9]|$)`)
	for _, file := range []string{"schedule.go", "flowmatch.go", "comfy.go"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			code, _, _ := strings.Cut(line, "//")
			if m := literal.FindString(code); m != "" {
				t.Errorf("%s:%d restates a default (%s): %s", file, i+1, strings.TrimSpace(m), strings.TrimSpace(line))
			}
		}
	}
}
