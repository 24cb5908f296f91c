package imagefile

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestExpandTemplate(t *testing.T) {
	v := TemplateVars{Seed: 18446744073709551615, Index: 3, Prompt: "A Cat, on the Moon!", Steps: 28,
		Sampler: "DPM++ 2M", Width: 1024, Height: 768, Model: "sd3.5_medium"}
	for tmpl, want := range map[string]string{
		"out/{seed}-{index}.png":                      "out/18446744073709551615-3.png",
		"{prompt}_{steps}_{sampler}_{width}x{height}": "a-cat-on-the-moon_28_DPM++ 2M_1024x768",
		"{model}/{{seed}}.png":                        "sd3.5_medium/{seed}.png",
		"a}}b}c{{":                                    "a}b}c{",
		"plain.png":                                   "plain.png",
		"日本/{index}.png":                              "日本/3.png",
	} {
		got, err := ExpandTemplate(tmpl, v)
		if err != nil || got != want {
			t.Errorf("ExpandTemplate(%q) = %q, %v; want %q", tmpl, got, err, want)
		}
	}
}

func TestExpandTemplateSanitizes(t *testing.T) {
	for model, want := range map[string]string{
		"models/sd3:medium": "models_sd3_medium",
		`a\b*c?d"e<f>g|h`:   "a_b_c_d_e_f_g_h",
		"..":                "__",
		".":                 "_",
		"x\ny\x7f":          "x_y_",
		"flux1-dev.v2":      "flux1-dev.v2",
	} {
		got, err := ExpandTemplate("{model}", TemplateVars{Model: model})
		if err != nil || got != want {
			t.Errorf("model %q → %q, %v; want %q", model, got, err, want)
		}
	}
}

func TestExpandTemplateErrors(t *testing.T) {
	for tmpl, want := range map[string]string{
		"{seed}-{nope}.png": "unknown placeholder {nope}",
		"{}":                "unknown placeholder {}",
		"{SEED}":            "unknown placeholder {SEED}",
		"x{seed":            "unclosed '{' at byte 1",
		"":                  "empty output name template",
	} {
		_, err := ExpandTemplate(tmpl, TemplateVars{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ExpandTemplate(%q): err = %v, want it to contain %q", tmpl, err, want)
			continue
		}
		if strings.Contains(want, "placeholder") && !strings.Contains(err.Error(),
			"{seed}, {index}, {prompt}, {steps}, {sampler}, {width}, {height}, {model}") {
			t.Errorf("ExpandTemplate(%q): error %q does not list the valid names", tmpl, err)
		}
	}
}

func TestSlug(t *testing.T) {
	long := strings.Repeat("word ", 30)
	for in, want := range map[string]string{
		"A Cat, on the Moon!":          "a-cat-on-the-moon",
		"  --Hello__World--  ":         "hello-world",
		"café crème":                   "café-crème",
		"日本の猫":                         "日本の猫",
		"日本の猫 cat 2":                   "日本の猫-cat-2",
		"Straße ÜBER Ärger":            "straße-über-ärger",
		"हिन्दी चित्र":                 "हिन्दी-चित्र",
		"🔥🔥 !!":                        "image",
		"a\xffb":                       "a-b",
		strings.Repeat("猫", 60):        strings.Repeat("猫", 48),
		"":                             "image",
		"---":                          "image",
		long:                           "word-word-word-word-word-word-word-word-word-wor",
		strings.Repeat("a", 47) + " b": strings.Repeat("a", 47),
		strings.Repeat("x", 100):       strings.Repeat("x", 48),
		"MiXeD 123 ÀÉÎ digits 4567":    "mixed-123-àéî-digits-4567",
	} {
		got := Slug(in)
		if got != want {
			t.Errorf("Slug(%q) = %q, want %q", in, got, want)
		}
		if utf8.RuneCountInString(got) > 48 || strings.HasPrefix(got, "-") || strings.HasSuffix(got, "-") {
			t.Errorf("Slug(%q) = %q breaks the slug rules", in, got)
		}
	}
}
