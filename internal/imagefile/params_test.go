package imagefile

import (
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"
)

// golden is testdata/golden.json, written by testdata/gen_golden.py from Python's own
// json.dumps, repr and an A1111 create_infotext transcription.
type golden struct {
	Infotext []struct {
		Name              string      `json:"name"`
		Prompt            string      `json:"prompt"`
		NegativePrompt    string      `json:"negative_prompt"`
		Steps             int         `json:"steps"`
		Sampler           string      `json:"sampler"`
		Scheduler         string      `json:"scheduler"`
		CFGScale          float64     `json:"cfg_scale"`
		DistilledCFGScale float64     `json:"distilled_cfg_scale"`
		Seed              uint64      `json:"seed"`
		Width             int         `json:"width"`
		Height            int         `json:"height"`
		Model             string      `json:"model"`
		DenoisingStrength float64     `json:"denoising_strength"`
		ClipSkip          int         `json:"clip_skip"`
		RNG               string      `json:"rng"`
		Extra             [][2]string `json:"extra"`
		Version           string      `json:"version"`
		Expected          string      `json:"expected"`
	} `json:"infotext"`
	Quote   [][2]string          `json:"quote"`
	RawRepr [][2]json.RawMessage `json:"repr"` // [float, repr]
}

func loadGolden(t *testing.T) golden {
	t.Helper()
	b, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Infotext) < 5 || len(g.Quote) < 10 || len(g.RawRepr) < 10 {
		t.Fatalf("golden.json looks incomplete: %d/%d/%d cases", len(g.Infotext), len(g.Quote), len(g.RawRepr))
	}
	return g
}

func TestTextMatchesA1111(t *testing.T) {
	for _, c := range loadGolden(t).Infotext {
		p := Params{
			Prompt: c.Prompt, NegativePrompt: c.NegativePrompt, Steps: c.Steps, Sampler: c.Sampler,
			ScheduleType: c.Scheduler, CFGScale: c.CFGScale, DistilledCFGScale: c.DistilledCFGScale,
			Seed: c.Seed, Width: c.Width, Height: c.Height, Model: c.Model,
			DenoisingStrength: c.DenoisingStrength, ClipSkip: c.ClipSkip, RNG: c.RNG, Version: c.Version,
		}
		for _, kv := range c.Extra {
			p.Extra = append(p.Extra, KV{kv[0], kv[1]})
		}
		if got := p.Text(); got != c.Expected {
			t.Errorf("%s:\n got %q\nwant %q", c.Name, got, c.Expected)
		}
	}
}

func TestTextHardCoded(t *testing.T) {
	// The two everyday cases, spelled out so a reader sees the format without golden.json.
	sd3 := Params{Prompt: "a cat", NegativePrompt: "blurry", Steps: 28, Sampler: "Euler",
		ScheduleType: "Simple", CFGScale: 7, Seed: 42, Width: 1024, Height: 1024,
		Model: "sd3.5_medium", Extra: []KV{{"Shift", "3"}}, Version: "rflow 0.1.0"}
	want := "a cat\nNegative prompt: blurry\nSteps: 28, Sampler: Euler, Schedule type: Simple, " +
		"CFG scale: 7, Seed: 42, Size: 1024x1024, Model: sd3.5_medium, Shift: 3, Version: rflow 0.1.0"
	if got := sd3.Text(); got != want {
		t.Errorf("SD3:\n got %q\nwant %q", got, want)
	}
	flux := Params{Prompt: "a dog", Steps: 20, Sampler: "Euler", ScheduleType: "Simple",
		CFGScale: 1, DistilledCFGScale: 3.5, Seed: 7, Width: 896, Height: 1152, Model: "flux1-dev",
		RNG: "NV", Version: "rflow 0.1.0"}
	want = "a dog\nSteps: 20, Sampler: Euler, Schedule type: Simple, CFG scale: 1, " +
		"Distilled CFG Scale: 3.5, Seed: 7, Size: 896x1152, Model: flux1-dev, RNG: NV, Version: rflow 0.1.0"
	if got := flux.Text(); got != want {
		t.Errorf("FLUX:\n got %q\nwant %q", got, want)
	}
}

func TestTextOmitsZeroFields(t *testing.T) {
	got := Params{Prompt: "p", Steps: 1, CFGScale: 2, Seed: 3, Width: 4, Height: 5, ClipSkip: 1}.Text()
	if want := "p\nSteps: 1, CFG scale: 2, Seed: 3, Size: 4x5"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, key := range []string{"Negative prompt", "Sampler", "Schedule", "Distilled", "Model",
		"Denoising", "Clip skip", "RNG", "Version"} {
		if strings.Contains(got, key) {
			t.Errorf("%q written in %q", key, got)
		}
	}
}

func TestTextReplacesInvalidUTF8(t *testing.T) {
	got := Params{Prompt: "a\xffb", Model: "m\xfe,", Steps: 1, Width: 1, Height: 1}.Text()
	want := "a\uFFFDb\nSteps: 1, CFG scale: 0, Seed: 0, Size: 1x1, Model: \"m\uFFFD,\""
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestQuoteMatchesPython(t *testing.T) {
	for _, c := range loadGolden(t).Quote {
		if got := quote(c[0]); got != c[1] {
			t.Errorf("quote(%q) = %q, Python gives %q", c[0], got, c[1])
		}
	}
}

func TestPythonRepr(t *testing.T) {
	for _, c := range loadGolden(t).RawRepr {
		var f float64
		var s string
		if err := json.Unmarshal(c[0], &f); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(c[1], &s); err != nil {
			t.Fatal(err)
		}
		if got := PythonRepr(f); got != s {
			t.Errorf("PythonRepr(%v) = %q, Python gives %q", f, got, s)
		}
	}
	for f, want := range map[float64]string{math.NaN(): "nan", math.Inf(1): "inf", math.Inf(-1): "-inf"} {
		if got := PythonRepr(f); got != want {
			t.Errorf("PythonRepr(%v) = %q, want %q", f, got, want)
		}
	}
}

func TestFormatFloat(t *testing.T) {
	for f, want := range map[float64]string{
		7: "7", 1: "1", 0: "0", math.Copysign(0, -1): "0", -3: "-3", 3.5: "3.5", 0.1: "0.1",
		0.75: "0.75", 1e-5: "1e-05", 1e16: "1e+16", 9999999999999998: "9999999999999998",
		1.5e300: "1.5e+300",
	} {
		if got := FormatFloat(f); got != want {
			t.Errorf("FormatFloat(%v) = %q, want %q", f, got, want)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := Params{Steps: 1, Width: 8, Height: 8, Extra: []KV{{"Shift", "3"}, {"Module 1", "ae"}, {"a/b-c d_1", ""}}}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid params: %v", err)
	}
	for name, p := range map[string]Params{
		"negative steps": {Steps: -1},
		"negative size":  {Width: -8},
		"NaN CFG":        {CFGScale: math.NaN()},
		"Inf denoise":    {DenoisingStrength: math.Inf(1)},
		"key with colon": {Extra: []KV{{"a:b", "x"}}},
		"key with comma": {Extra: []KV{{"a,b", "x"}}},
		"one-char key":   {Extra: []KV{{"a", "x"}}},
		"leading space":  {Extra: []KV{{" ab", "x"}}},
		"reserved key":   {Extra: []KV{{"Seed", "1"}}},
		"repeated key":   {Extra: []KV{{"Shift", "1"}, {"Shift", "2"}}},
	} {
		if err := p.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		} else if !strings.HasPrefix(err.Error(), "imagefile: invalid parameters") {
			t.Errorf("%s: error %q lacks the package prefix", name, err)
		}
	}
}

func TestDisplayNames(t *testing.T) {
	sampler := map[string]string{
		"euler": "Euler", "euler_ancestral": "Euler a", "heun": "Heun", "dpmpp_2m": "DPM++ 2M",
		"dpmpp_2m_sde": "DPM++ 2M SDE", "dpmpp_2s_ancestral": "DPM++ 2S a", "lms": "LMS",
		"uni_pc": "UniPC", "ipndm": "iPNDM", "lcm": "LCM", "EULER": "Euler", "Euler a": "Euler a",
		"DPM++ 2M": "DPM++ 2M", "res_multistep": "Res Multistep", "er-sde": "Er Sde", "": "",
	}
	for in, want := range sampler {
		if got := SamplerDisplayName(in); got != want {
			t.Errorf("SamplerDisplayName(%q) = %q, want %q", in, got, want)
		}
	}
	schedule := map[string]string{
		"simple": "Simple", "karras": "Karras", "normal": "Normal", "sgm_uniform": "SGM Uniform",
		"kl_optimal": "KL Optimal", "exponential": "Exponential", "beta": "Beta",
		"ddim_uniform": "DDIM", "flowmatch": "Automatic", "SGM Uniform": "SGM Uniform",
		"bong_tangent": "Bong Tangent",
	}
	for in, want := range schedule {
		if got := ScheduleDisplayName(in); got != want {
			t.Errorf("ScheduleDisplayName(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"torch-cpu": "CPU", "philox": "NV", "other": "other"} {
		if got := RNGDisplayName(in); got != want {
			t.Errorf("RNGDisplayName(%q) = %q, want %q", in, got, want)
		}
	}
}
