package scheduler

import "testing"

// The spellings of stable-diffusion.cpp and A1111/Forge find the registry's samplers.
func TestLookupSamplerAliases(t *testing.T) {
	for alias, want := range map[string]string{
		"euler_a": "euler_ancestral", "dpm++2m": "dpmpp_2m", "dpm++2s_a": "dpmpp_2s_ancestral", "lcm": "lcm",
		"Euler": "euler", "Euler a": "euler_ancestral", "Heun": "heun", "DPM++ 2M": "dpmpp_2m", "DPM++ 2M SDE": "dpmpp_2m_sde",
		"DPM++ 2S a": "dpmpp_2s_ancestral", "UniPC": "uni_pc", "LMS": "lms", "LCM": "lcm", "iPNDM": "ipndm",
		"Euler Stochastic": "euler_stochastic", "Rk4": "rk4", " heun ": "heun",
	} {
		if s, err := LookupSampler(alias); err != nil || s.Name != want {
			t.Errorf("LookupSampler(%q) = %q, %v; want %q", alias, s.Name, err, want)
		}
	}
}
