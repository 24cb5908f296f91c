package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type scheduleJSON struct {
	Sigmas         []float64 `json:"sigmas"`
	Timesteps      []float64 `json:"timesteps"`
	ModelTimesteps []float64 `json:"model_timesteps"`
}

func scheduleOutput(t *testing.T, args ...string) scheduleJSON {
	t.Helper()
	code, out, errOut := runCLI(append([]string{"schedule", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("rflow schedule %v: exit %d: %s", args, code, errOut)
	}
	var s scheduleJSON
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("output is not the JSON object: %v\n%s", err, out)
	}
	return s
}

// Spec §8.1 (SD3, shift 3, 28 steps) and §8.2 (FLUX-dev 1024², 28 steps), a few rows each; the
// scheduler package checks every row bit for bit, this checks that the CLI prints them unchanged.
func TestScheduleJSONPresets(t *testing.T) {
	sd3 := scheduleOutput(t, "--preset", "sd3", "--steps", "28")
	if len(sd3.Sigmas) != 29 || len(sd3.Timesteps) != 28 || len(sd3.ModelTimesteps) != 28 {
		t.Fatalf("sd3 lengths %d/%d/%d", len(sd3.Sigmas), len(sd3.Timesteps), len(sd3.ModelTimesteps))
	}
	for _, c := range []struct{ got, want float64 }{
		{sd3.Sigmas[1], 0.9873806238174438}, {sd3.Sigmas[27], 0.008928571827709675}, {sd3.Sigmas[28], 0},
		{sd3.Timesteps[1], 987.380615234375}, {sd3.ModelTimesteps[27], 8.928571701049805},
	} {
		if c.got != c.want {
			t.Errorf("sd3: got %v, want %v", c.got, c.want)
		}
	}
	flux := scheduleOutput(t, "--preset", "flux-dev", "--steps", "28", "--width", "1024", "--height", "1024")
	for _, c := range []struct{ got, want float64 }{
		{flux.Sigmas[1], 0.988408625125885}, {flux.Sigmas[26], 0.19545459747314453},
		{flux.Timesteps[23], 407.07843017578125}, {flux.ModelTimesteps[23], 0.40707844495773315},
		{flux.ModelTimesteps[26], 0.19545458257198334},
	} {
		if c.got != c.want {
			t.Errorf("flux-dev: got %v, want %v", c.got, c.want)
		}
	}
}

func TestScheduleFromModelFolder(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "shared", "model-configs", "stabilityai", "stable-diffusion-3-medium-diffusers")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("../shared is absent (%v); the model-folder case needs its real configs", err)
	}
	fromModel := scheduleOutput(t, "--model", dir, "--steps", "28")
	fromPreset := scheduleOutput(t, "--preset", "sd3", "--steps", "28")
	for i := range fromPreset.Sigmas {
		if fromModel.Sigmas[i] != fromPreset.Sigmas[i] {
			t.Fatalf("σ[%d]: model folder %v, preset %v", i, fromModel.Sigmas[i], fromPreset.Sigmas[i])
		}
	}
	code, _, errOut := runCLI("schedule", "--model", dir)
	if code != 2 || !strings.Contains(errOut, "--steps is required") {
		t.Fatalf("--model without --steps: exit %d, %q", code, errOut)
	}
}

func TestScheduleCustomSigmasAndShift(t *testing.T) {
	// As in diffusers' SD3 pipeline, custom σ get the scheduler's shift 3: σ' = 3σ/(1+2σ).
	s := scheduleOutput(t, "--preset", "sd3", "--sigmas", "1,0.5,0.25")
	if len(s.Sigmas) != 4 || s.Sigmas[1] != 0.75 || s.Sigmas[3] != 0 || s.Timesteps[2] != 500 {
		t.Fatalf("custom sigmas: %+v", s)
	}
	s = scheduleOutput(t, "--preset", "sd3", "--sigmas", "1,0.5,0.25", "--sigmas-raw")
	if len(s.Sigmas) != 4 || s.Sigmas[1] != 0.5 || s.Sigmas[3] != 0 || s.Timesteps[2] != 250 {
		t.Fatalf("raw custom sigmas: %+v", s)
	}
	// Shift 1 makes the SD3 schedule a plain linspace from 1 to 0.001 on the float64 path.
	s = scheduleOutput(t, "--preset", "sd3", "--steps", "4", "--flow-shift", "1")
	if math.Abs(s.Sigmas[1]-(1-0.999/3)) > 1e-7 {
		t.Fatalf("shift 1: σ1 = %v", s.Sigmas[1])
	}
}

func TestScheduleErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--preset", "sd3", "--scheduler", "foo"}, 2, "valid: simple, normal"},
		{[]string{"--preset", "nope"}, 2, "sd3.5-large-turbo"},
		{[]string{}, 2, "exactly one of --model"},
		{[]string{"--preset", "sd3", "--sigmas", "0.5,0.7"}, 1, "decreasing"},
		{[]string{"--preset", "sd3", "--sigmas", "1,x"}, 2, `"x" is not a number`},
		{[]string{"--preset", "sd3", "--steps", "-3"}, 2, "--steps must be at least 1"},
		{[]string{"--model", t.TempDir(), "--steps", "4"}, 1, "model_index.json is missing"},
	} {
		code, _, errOut := runCLI(append([]string{"schedule"}, c.args...)...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d (want %d), stderr %q (want %q)", c.args, code, c.code, errOut, c.want)
		}
	}
}

func TestScheduleTable(t *testing.T) {
	code, out, _ := runCLI("schedule", "--preset", "flux-schnell")
	if code != 0 || !strings.Contains(out, "scheduler flowmatch, 4 steps") || !strings.Contains(out, "0.75") {
		t.Fatalf("table: exit %d\n%s", code, out)
	}
}
