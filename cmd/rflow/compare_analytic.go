package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/rflowrt/rflow/compare"
	"github.com/rflowrt/rflow/scheduler"
)

// parseAnalytic reads "gmm" or "gmm:D".
func parseAnalytic(s string) (int, error) {
	name, d, ok := strings.Cut(s, ":")
	if name != "gmm" {
		return 0, fmt.Errorf("--analytic %q: want gmm or gmm:D", s)
	}
	if !ok {
		return 2, nil
	}
	dim, err := strconv.Atoi(d)
	if err != nil || dim < 1 || dim > 4096 {
		return 0, fmt.Errorf("--analytic %q: D must be a whole number in [1, 4096]", s)
	}
	return dim, nil
}

func (f *compareFlags) paths() []scheduler.Path {
	switch f.path {
	case "cosine":
		return []scheduler.Path{scheduler.Cosine}
	case "both":
		return []scheduler.Path{scheduler.Linear, scheduler.Cosine}
	}
	return []scheduler.Path{scheduler.Linear}
}

// runAnalytic runs the grid on the analytic mixture (compare.RunAnalytic).
func (f *compareFlags) runAnalytic(ctx context.Context, spec compareSpec, log *reporter) (*compare.Result, error) {
	dim, err := parseAnalytic(f.analytic)
	if err != nil {
		return nil, err
	}
	as := compare.AnalyticSpec{Dim: dim, Paths: f.paths(), Samplers: spec.samplers, Steps: spec.steps, Seeds: spec.seeds,
		Schedulers: spec.schedulers, Shifts: spec.shifts, Caches: spec.caches, Samples: f.samples, Projections: f.projections,
		Cell: f.cell, Title: "rflow compare: analytic Gaussian mixture", Command: commandLine(spec.args), Settings: f.analyticSettings(spec, dim)}
	return compare.RunAnalytic(ctx, as, func(line string) { log.linef("%s", line) })
}

func (f *compareFlags) analyticSettings(spec compareSpec, dim int) [][2]string {
	return [][2]string{
		{"target", fmt.Sprintf("Gaussian mixture in %d-D: 3 components, means at radius 1.5 at 90°/210°/330° (coordinates beyond 2: ±0.5), std 0.5/0.4/0.3, weights 0.5/0.3/0.2", dim)},
		{"paths", f.path},
		{"samplers", f.samplers},
		{"steps", f.steps},
		{"schedules", defaultLabel(f.schedulers) + " (diffusers FlowMatchEuler σ with the default config: uniform 1 → 1/1000, then 0)"},
		{"shifts", defaultLabel(f.shifts)},
		{"seeds", f.seeds},
		{"points per cell", strconv.Itoa(f.samples)},
		{"reference", "exact transport of the same start points: float64 Dormand–Prince 5(4) at rtol = atol = 1e-10 on the closed-form velocity"},
		{"distribution distance", fmt.Sprintf("sliced 2-Wasserstein over %d fixed random directions to %d exact target draws", f.projections, f.samples)},
		{"straightness", "S = Σ Δσ·‖ū − vᵢ‖² / (L·‖ū‖²) over the sampler's own steps (vᵢ from each step's x0 prediction; ū = (x_start − x_end)/L, L the σ range; batch sums)"},
		{"seconds", "sampler wall time (closed-form model, so mostly arithmetic)"},
		{"step caches", defaultLabel(f.stepCaches) + " (model calls: the closed-form calls that ran)"},
	}
}

func defaultLabel(s string) string {
	if s == "" {
		return "default"
	}
	return s
}
