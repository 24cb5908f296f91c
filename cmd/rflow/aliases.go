package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/rflowrt/rflow/internal/rng"
	"github.com/rflowrt/rflow/scheduler"
)

// samplerName resolves --sampler (and stable-diffusion.cpp's --sampling-method) to the registry's
// name, so that images record one spelling: "euler_a" and "Euler a" are euler_ancestral.
func samplerName(flag, s string) (string, error) {
	if s == "" {
		return "", nil
	}
	info, err := scheduler.LookupSampler(s)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	return info.Name, nil
}

// schedulerName resolves --scheduler: ComfyUI's names, A1111's "Schedule type" names in any case
// ("SGM Uniform", "KL Optimal", "DDIM"), and "discrete" (stable-diffusion.cpp) and "automatic"
// (A1111) for the model's own schedule (returned as "").
func schedulerName(s string) string {
	key := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), " ", "_")
	switch key {
	case "discrete", "automatic", "default":
		return ""
	case "ddim":
		return "ddim_uniform"
	}
	for _, n := range scheduler.SchedulerNames() {
		if n == key {
			return key
		}
	}
	return s // unknown: the pipeline's error lists the valid names
}

// rngKind resolves --rng: rflow's names, stable-diffusion.cpp's "cuda" (its Philox emulation, the
// same as philox) and "std_default" (read as torch-cpu, a CPU generator: sd.cpp's own
// std::default_random_engine numbers are not reproduced), and A1111's "NV" and "CPU".
func rngKind(s string) (rng.Kind, error) {
	switch strings.ToLower(s) {
	case "cuda", "nv", "gpu":
		return rng.Philox, nil
	case "std_default", "cpu":
		return rng.TorchCPU, nil
	}
	k, err := rng.ParseKind(s)
	if err != nil {
		return "", fmt.Errorf("--rng: %w (or cuda = philox, std_default = torch-cpu)", err)
	}
	return k, nil
}

// rngHelp is --rng's help text.
const rngHelp = "noise generator: torch-cpu (diffusers' CPU generator, ComfyUI; sd.cpp's std_default is read as this) or philox (A1111 NV; sd.cpp's cuda is this)"

// seedValue is -s/--seed: a seed, or -1 for a random one (stable-diffusion.cpp's and A1111's
// spelling).
type seedValue struct {
	seed   *uint64
	random *bool
}

func (s seedValue) String() string {
	if s.random != nil && *s.random {
		return "-1"
	}
	if s.seed == nil {
		return "0"
	}
	return strconv.FormatUint(*s.seed, 10)
}

func (s seedValue) Set(v string) error {
	if strings.TrimSpace(v) == "-1" {
		*s.random = true
		return nil
	}
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return fmt.Errorf("want a whole number ≥ 0, or -1 for a random seed")
	}
	*s.seed, *s.random = n, false
	return nil
}

func (s seedValue) Type() string { return "int" }
