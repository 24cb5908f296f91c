package imagefile

import (
	"reflect"
	"strings"
	"testing"
)

// roundTripCases are 20 varied parameter sets that Text and ParseText must carry unchanged.
func roundTripCases() []Params {
	base := Params{Prompt: "a cat", Steps: 28, Sampler: "Euler", ScheduleType: "Simple",
		CFGScale: 7, Seed: 42, Width: 1024, Height: 1024, Model: "sd3.5_medium", Version: "rflow 0.1.0"}
	with := func(f func(p *Params)) Params {
		p := base
		f(&p)
		return p
	}
	return []Params{
		base,
		with(func(p *Params) { p.NegativePrompt = "blurry, low quality" }),
		with(func(p *Params) { p.CFGScale, p.DistilledCFGScale, p.Model = 1, 3.5, "flux1-dev" }),
		with(func(p *Params) { p.CFGScale = 4.25; p.RNG = "CPU" }),
		with(func(p *Params) { p.CFGScale = 0.1; p.RNG = "NV" }),
		with(func(p *Params) { p.Seed = 18446744073709551615 }),
		with(func(p *Params) { p.Seed = 0; p.Steps = 0 }),
		with(func(p *Params) { p.DenoisingStrength = 0.75; p.ClipSkip = 2 }),
		with(func(p *Params) { p.Sampler, p.ScheduleType, p.Model, p.Version = "", "", "", "" }),
		with(func(p *Params) { p.Prompt = "line one\nline two,\nline: three" }),
		with(func(p *Params) { p.Prompt = ""; p.NegativePrompt = "only negative" }),
		with(func(p *Params) { p.Prompt = "" }),
		with(func(p *Params) { p.NegativePrompt = "neg\nover: two, lines" }),
		with(func(p *Params) { p.Model = "models/sd3:medium, v2 \"q\" \\ é 日本" }),
		with(func(p *Params) { p.Prompt = "日本の猫, é, 😀"; p.NegativePrompt = "ügly" }),
		with(func(p *Params) { p.Extra = []KV{{"Shift", "3"}, {"Module 1", "ae"}, {"Empty", ""}} }),
		with(func(p *Params) { p.Extra = []KV{{"Note", "a,b:c\nd\te\x01\"f\"\\"}, {"Uni", "é\u2028x"}} }),
		with(func(p *Params) { p.Sampler, p.ScheduleType = "DPM++ 2M SDE", "SGM Uniform" }),
		with(func(p *Params) { p.Width, p.Height, p.CFGScale = 8, 16, 1e-5 }),
		with(func(p *Params) {
			p.Prompt = "a \"quoted\" prompt with Steps: 3, Seed: 4, Size: 5x6"
			p.CFGScale, p.DistilledCFGScale, p.DenoisingStrength = 12.5, 0.2, 1
			p.ClipSkip, p.RNG, p.Extra = 12, "CPU", []KV{{"Shift/x-y", "1.15"}}
		}),
	}
}

func TestParseTextRoundTrip(t *testing.T) {
	cases := roundTripCases()
	if len(cases) != 20 {
		t.Fatalf("%d cases, want 20", len(cases))
	}
	for i, p := range cases {
		text := p.Text()
		got, err := ParseText(text)
		if err != nil {
			t.Errorf("case %d: ParseText(%q): %v", i, text, err)
			continue
		}
		if !reflect.DeepEqual(got, p) {
			t.Errorf("case %d: round trip of %q\n got %#v\nwant %#v", i, text, got, p)
		}
	}
}

func TestParseTextForge(t *testing.T) {
	text := "FredFraiStyle \"positive.\"\n\n<lora:x:0.95>\nNegative prompt: bad, ugly\n" +
		"Steps: 20, Sampler: Euler, Schedule type: Simple, CFG scale: 1, Distilled CFG Scale: 3.5, " +
		"Seed: 3045329758, Size: 832x1216, Model hash: 06f96f89f6, Model: flux_dev, " +
		"Lora hashes: \"FredFraiStyle-FLUX-Share: de92428f6411, Ars: c4f0b45e6a60\", " +
		"Version: f2.0.1v1.10.1-previous-561-g82eb7566, Module 1: ae, Module 2: clip_l"
	got, err := ParseText(text)
	if err != nil {
		t.Fatal(err)
	}
	want := Params{
		Prompt: "FredFraiStyle \"positive.\"\n\n<lora:x:0.95>", NegativePrompt: "bad, ugly",
		Steps: 20, Sampler: "Euler", ScheduleType: "Simple", CFGScale: 1, DistilledCFGScale: 3.5,
		Seed: 3045329758, Width: 832, Height: 1216, Model: "flux_dev",
		Version: "f2.0.1v1.10.1-previous-561-g82eb7566",
		Extra: []KV{{"Model hash", "06f96f89f6"},
			{"Lora hashes", "FredFraiStyle-FLUX-Share: de92428f6411, Ars: c4f0b45e6a60"},
			{"Module 1", "ae"}, {"Module 2", "clip_l"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %#v\nwant %#v", got, want)
	}
}

func TestParseTextPromptOnly(t *testing.T) {
	// Fewer than three "Key: value" pairs on the last line: it is prompt, as in A1111.
	got, err := ParseText("  a photo\nstyle: painterly, mood: calm \n")
	if err != nil {
		t.Fatal(err)
	}
	want := Params{Prompt: "a photo\nstyle: painterly, mood: calm"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
}

func TestParseTextBadValues(t *testing.T) {
	got, err := ParseText("p\nSteps: many, CFG scale: x, Seed: -1, Size: big, Clip skip: 2, Model: m")
	if err == nil {
		t.Fatal("no error")
	}
	for _, key := range []string{`"Steps"`, `"CFG scale"`, `"Seed"`, `"Size"`} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error %q does not name %s", err, key)
		}
	}
	if got.Prompt != "p" || got.ClipSkip != 2 || got.Model != "m" {
		t.Errorf("good fields not kept: %#v", got)
	}
}

func TestParseTextBadQuote(t *testing.T) {
	// A quoted value that is not valid JSON is kept raw, as A1111's unquote does.
	got, err := ParseText("p\nSteps: 1, Seed: 2, Size: 3x4, Note: \"bad \\x escape\"")
	if err != nil {
		t.Fatal(err)
	}
	if want := []KV{{"Note", `"bad \x escape"`}}; !reflect.DeepEqual(got.Extra, want) {
		t.Errorf("Extra = %q, want %q", got.Extra, want)
	}
}

func FuzzParseText(f *testing.F) {
	for _, p := range roundTripCases() {
		f.Add(p.Text())
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseText(s)
		if err != nil {
			return
		}
		_ = p.Text() // must not panic
	})
}
