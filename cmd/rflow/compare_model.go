package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/rflowrt/rflow/compare"
	"github.com/rflowrt/rflow/pipeline"
	"github.com/rflowrt/rflow/scheduler"
)

// parseReference reads --reference sampler:steps.
func parseReference(s string) (string, int, error) {
	name, steps, ok := strings.Cut(s, ":")
	if !ok {
		return "", 0, fmt.Errorf("--reference %q: want sampler:steps, e.g. heun:100", s)
	}
	if _, err := scheduler.LookupSampler(name); err != nil {
		return "", 0, fmt.Errorf("--reference: %w", err)
	}
	n, err := strconv.Atoi(steps)
	if err != nil || n < 1 || n > scheduler.MaxSteps {
		return "", 0, fmt.Errorf("--reference %q: steps must be a whole number in [1, %d]", s, scheduler.MaxSteps)
	}
	return name, n, nil
}

// runModel runs the grid through the pipeline for every prompt and seed.
func (f *compareFlags) runModel(ctx context.Context, spec compareSpec, log *reporter) (*compare.Result, error) {
	refName, refSteps, err := parseReference(f.reference)
	if err != nil {
		return nil, err
	}
	if err := f.ort.init(); err != nil {
		return nil, err
	}
	m, err := openAnyModel(ctx, f.model, f.ckpt, log.w, f.quiet)
	if err != nil {
		return nil, err
	}
	so, err := f.sessionOptions()
	if err != nil {
		return nil, err
	}
	p := pipeline.New(m, pipeline.Options{Session: so, KeepModels: true})
	defer p.Close()
	settings := [][2]string{{"model", m.Name + " (" + string(m.Family) + ")"}, {"prompts", strings.Join(f.prompts, " / ")},
		{"samplers", f.samplers}, {"steps", f.steps}, {"schedules", defaultLabel(f.schedulers)}, {"shifts", defaultLabel(f.shifts)},
		{"seeds", f.seeds}, {"reference", f.reference + " on the model's own schedule, same prompt, seed and noise"},
		{"seconds", "the sampling loop's wall time (transformer calls included; text encoding and VAE decode not)"},
		{"straightness", "S = Σ Δσ·‖ū − vᵢ‖² / (L·‖ū‖²) on the latents, vᵢ = (x before step i − x0ᵢ)/σᵢ from Request.OnStep"},
		{"guidance rules", defaultLabel(f.guidanceRules) + " (each rule × CFG scale has its own reference, run with that rule)"},
		{"CFG scales", defaultLabel(f.cfgScales)}, {"step caches", defaultLabel(f.stepCaches)},
		{"model calls", "transformer calls that ran (a step cache fills the others); the budget table and plots count these"}}
	ms := compare.ModelSpec{Base: pipeline.Request{Width: f.width, Height: f.height, CFGScale: f.cfg, Guidance: f.guidance},
		Prompts: f.prompts, Seeds: spec.seeds, Samplers: spec.samplers, Steps: spec.steps, Schedulers: spec.schedulers,
		Shifts: spec.shifts, Rules: spec.rules, CFGScales: spec.cfgScales, Caches: spec.caches, RefSampler: refName,
		RefSteps: refSteps, Title: "rflow compare: " + m.Name, Command: commandLine(spec.args), Settings: settings}
	return compare.RunModel(ctx, p, ms, func(line string) { log.linef("%s", line) })
}
