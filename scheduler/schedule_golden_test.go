package scheduler

import (
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"
)

// testdata/schedules_golden.json is written by testdata/gen_schedules.py (stdlib + mpmath), an independent
// Python implementation of spec Appendix B extended to every schedule; see its docstring.

type schedGoldenCase struct {
	Name               string          `json:"name"`
	Family             string          `json:"family"`
	Config             json.RawMessage `json:"config"`
	Steps              int             `json:"steps"`
	Scheduler          string          `json:"scheduler"`
	Shift              float64         `json:"shift"`
	ImageSeqLen        int             `json:"image_seq_len"`
	SigmasIn           []float64       `json:"sigmas_in"`
	SigmasRaw          bool            `json:"sigmas_raw"`
	WantSigmas         []float64       `json:"want_sigmas"`
	WantTimesteps      []float64       `json:"want_timesteps"`
	WantModelTimesteps []float64       `json:"want_model_timesteps"`
	WantMu             float64         `json:"want_mu"`
	WantDynamic        bool            `json:"want_dynamic"`
}

type schedGoldenFile struct {
	Cases   []schedGoldenCase `json:"cases"`
	BetaInc []struct {
		A, B, X, Want float64
	} `json:"betainc"`
	BetaPPF []struct {
		A, B, P, Want float64
	} `json:"betappf"`
}

func loadSchedGolden(t testing.TB) schedGoldenFile {
	t.Helper()
	data, err := os.ReadFile("testdata/schedules_golden.json")
	if err != nil {
		t.Fatalf("read golden schedules (regenerate with testdata/gen_schedules.py): %v", err)
	}
	var g schedGoldenFile
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatalf("parse golden schedules: %v", err)
	}
	if len(g.Cases) == 0 || len(g.BetaInc) == 0 || len(g.BetaPPF) == 0 {
		t.Fatalf("golden schedules file has an empty section")
	}
	return g
}

// schedBitsDiff returns the first index where got and want differ as float32 bit patterns (or in
// length), or -1. Every expected value is a float32 widened to float64, so float32 bits compare all of it.
func schedBitsDiff(got, want []float64) int {
	if len(got) != len(want) {
		return min(len(got), len(want))
	}
	for i := range got {
		if math.Float32bits(float32(got[i])) != math.Float32bits(float32(want[i])) || float64(float32(got[i])) != got[i] {
			return i
		}
	}
	return -1
}

func schedCheckBits(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if i := schedBitsDiff(got, want); i >= 0 {
		if len(got) != len(want) {
			t.Errorf("%s: len %d, want %d\n got %v\nwant %v", what, len(got), len(want), got, want)
			return
		}
		t.Errorf("%s[%d] = %v (bits %08x), want %v (bits %08x)\n got %v\nwant %v", what, i, got[i],
			math.Float32bits(float32(got[i])), want[i], math.Float32bits(float32(want[i])), got, want)
	}
}

func TestScheduleGolden(t *testing.T) {
	g := loadSchedGolden(t)
	seen := map[string]bool{}
	for _, c := range g.Cases {
		t.Run(c.Name, func(t *testing.T) {
			cfg, err := ParseFlowMatchConfig(c.Config)
			if err != nil {
				t.Fatalf("ParseFlowMatchConfig(%s): %v", c.Config, err)
			}
			req := ScheduleRequest{Family: Family(c.Family), Config: cfg, Steps: c.Steps, Scheduler: c.Scheduler,
				Shift: c.Shift, Sigmas: c.SigmasIn, SigmasRaw: c.SigmasRaw, ImageSeqLen: c.ImageSeqLen}
			s, err := BuildSchedule(req)
			if err != nil {
				t.Fatalf("BuildSchedule: %v", err)
			}
			seen[s.Scheduler] = true
			schedCheckBits(t, "Sigmas", s.Sigmas, c.WantSigmas)
			schedCheckBits(t, "Timesteps", s.Timesteps, c.WantTimesteps)
			schedCheckBits(t, "ModelTimesteps", s.ModelTimesteps, c.WantModelTimesteps)
			if s.Mu != c.WantMu || s.DynamicShift != c.WantDynamic {
				t.Errorf("Mu, DynamicShift = %v, %v; want %v, %v", s.Mu, s.DynamicShift, c.WantMu, c.WantDynamic)
			}
		})
	}
	for _, name := range append(SchedulerNames(), "custom") {
		if !seen[name] {
			t.Errorf("no golden case exercises scheduler %q", name)
		}
	}
}

// TestScheduleGoldenCoverage keeps the golden file honest: it must cover the step counts, resolutions
// and variants the issue asks for.
func TestScheduleGoldenCoverage(t *testing.T) {
	g := loadSchedGolden(t)
	var names []string
	for _, c := range g.Cases {
		names = append(names, c.Name)
	}
	all := strings.Join(names, "\n")
	for _, want := range []string{
		"sd3/1\n", "sd3/2\n", "sd3/4\n", "sd3/20\n", "sd3/50\n",
		"flux-dev/512x512/28", "flux-dev/768x1344/28", "flux-dev/2048x2048/50", "flux-dev/1024x1024/1\n",
		"use_karras_sigmas-sd3", "use_exponential_sigmas-flux", "use_beta_sigmas-sd3", "shift_terminal-flux",
		"invert-sd3", "linear-flux", "linear-sd3", "dpm/", "dpm-dynamic", "unipc/", "unipc-shift1", "unipc-dynamic",
		"comfy-kl_optimal/flux-dev", "comfy-beta/schnell",
		"custom-raw/", "custom/sd3/", "custom/flux-dev/768x1344", "custom/unipc/", "custom/dpm/", "custom/heun/",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("golden file has no case %q", want)
		}
	}
}
