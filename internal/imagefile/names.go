package imagefile

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// samplerNames maps ComfyUI/rflow sampler names (and sd.cpp aliases) to A1111/Forge display
// names.
var samplerNames = map[string]string{
	"euler":                  "Euler",
	"euler_a":                "Euler a",
	"euler_ancestral":        "Euler a",
	"euler_cfg_pp":           "Euler CFG++",
	"euler_ancestral_cfg_pp": "Euler a CFG++",
	"heun":                   "Heun",
	"dpm_2":                  "DPM2",
	"dpm2":                   "DPM2",
	"dpm_2_ancestral":        "DPM2 a",
	"dpm_fast":               "DPM fast",
	"dpm_adaptive":           "DPM adaptive",
	"dpmpp_2m":               "DPM++ 2M",
	"dpm++2m":                "DPM++ 2M",
	"dpmpp_2m_sde":           "DPM++ 2M SDE",
	"dpm++2m_sde":            "DPM++ 2M SDE",
	"dpmpp_2m_sde_heun":      "DPM++ 2M SDE Heun",
	"dpmpp_2s_ancestral":     "DPM++ 2S a",
	"dpm++2s_a":              "DPM++ 2S a",
	"dpmpp_sde":              "DPM++ SDE",
	"dpmpp_3m_sde":           "DPM++ 3M SDE",
	"lms":                    "LMS",
	"ddim":                   "DDIM",
	"ddpm":                   "DDPM",
	"plms":                   "PLMS",
	"uni_pc":                 "UniPC",
	"uni_pc_bh2":             "UniPC BH2",
	"ipndm":                  "iPNDM",
	"ipndm_v":                "iPNDM_v",
	"deis":                   "DEIS",
	"lcm":                    "LCM",
	"restart":                "Restart",
}

// scheduleNames maps ComfyUI/rflow scheduler names to A1111/Forge "Schedule type" names.
var scheduleNames = map[string]string{
	"automatic":        "Automatic",
	"flowmatch":        "Automatic", // the model's own flow-matching schedule, A1111's default
	"uniform":          "Uniform",
	"simple":           "Simple",
	"normal":           "Normal",
	"karras":           "Karras",
	"exponential":      "Exponential",
	"polyexponential":  "Polyexponential",
	"sgm_uniform":      "SGM Uniform",
	"kl_optimal":       "KL Optimal",
	"align_your_steps": "Align Your Steps",
	"ddim_uniform":     "DDIM",
	"beta":             "Beta",
	"linear_quadratic": "Linear Quadratic",
	"turbo":            "Turbo",
}

// SamplerDisplayName returns the A1111/Forge display name of a sampler given by its ComfyUI /
// rflow name ("euler" → "Euler", "euler_ancestral" → "Euler a", "dpmpp_2m" → "DPM++ 2M",
// "uni_pc" → "UniPC", "ipndm" → "iPNDM"). Lookup ignores case; a name that already is a display
// name is returned unchanged, and an unknown name is title-cased word by word ("res_multistep"
// → "Res Multistep").
func SamplerDisplayName(name string) string { return displayName(name, samplerNames) }

// ScheduleDisplayName returns the A1111/Forge "Schedule type" of a scheduler given by its
// ComfyUI / rflow name ("simple" → "Simple", "sgm_uniform" → "SGM Uniform", "kl_optimal" → "KL
// Optimal", "ddim_uniform" → "DDIM", "flowmatch" → "Automatic"), like [SamplerDisplayName].
func ScheduleDisplayName(name string) string { return displayName(name, scheduleNames) }

// RNGDisplayName returns A1111's randn_source name for an rflow noise source: "torch-cpu" →
// "CPU", "philox" → "NV". Other names are returned unchanged.
func RNGDisplayName(kind string) string {
	switch strings.ToLower(kind) {
	case "torch-cpu", "cpu":
		return "CPU"
	case "philox", "nv":
		return "NV"
	}
	return kind
}

func displayName(name string, table map[string]string) string {
	if d, ok := table[strings.ToLower(name)]; ok {
		return d
	}
	for _, d := range table {
		if d == name {
			return name
		}
	}
	return titleCase(name)
}

// titleCase turns "res_multistep" into "Res Multistep": '_' and '-' become spaces and each
// word's first letter is upper-cased.
func titleCase(s string) string {
	words := strings.FieldsFunc(s, func(r rune) bool { return r == '_' || r == '-' || r == ' ' })
	for i, w := range words {
		r, n := utf8.DecodeRuneInString(w)
		words[i] = string(unicode.ToUpper(r)) + w[n:]
	}
	return strings.Join(words, " ")
}
