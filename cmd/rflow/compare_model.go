package main

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rflowrt/rflow/compare"
	"github.com/rflowrt/rflow/internal/ort"
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

// modelRun is a comparison on one model: one reference run per (prompt, seed).
type modelRun struct {
	f    *compareFlags
	spec compareSpec
	p    *pipeline.Pipeline
	base pipeline.Request
	log  *reporter
}

// runModel runs the grid through the pipeline for every prompt and seed.
func (f *compareFlags) runModel(ctx context.Context, spec compareSpec, log *reporter) (*compareResult, error) {
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
	prov, err := ort.ParseProvider(f.provider)
	if err != nil {
		return nil, err
	}
	so := ort.SessionOptions{Provider: prov, IntraOpThreads: f.threads}
	if dir, err := os.UserCacheDir(); err == nil {
		so.CacheDir = filepath.Join(dir, "rflow", "ort-cache")
	}
	p := pipeline.New(m, pipeline.Options{Session: so, KeepModels: true})
	defer p.Close()
	mr := &modelRun{f: f, spec: spec, p: p, log: log, base: pipeline.Request{Width: f.width, Height: f.height, CFGScale: f.cfg, Guidance: f.guidance}}
	res := &compareResult{title: "rflow compare: " + m.Name, command: commandLine(spec.args)}
	res.settings = [][2]string{{"model", m.Name + " (" + string(m.Family) + ")"}, {"prompts", strings.Join(f.prompts, " / ")},
		{"samplers", f.samplers}, {"steps", f.steps}, {"schedules", defaultLabel(f.schedulers)}, {"shifts", defaultLabel(f.shifts)},
		{"seeds", f.seeds}, {"reference", f.reference + " on the model's own schedule, same prompt, seed and noise"},
		{"seconds", "the sampling loop's wall time (transformer calls included; text encoding and VAE decode not)"},
		{"straightness", "S = Σ Δσ·‖ū − vᵢ‖² / (L·‖ū‖²) on the latents, vᵢ = (x before step i − x0ᵢ)/σᵢ from Request.OnStep"}}
	for _, prompt := range f.prompts {
		for _, seed := range spec.seeds {
			if err := mr.promptSeed(ctx, res, prompt, seed, refName, refSteps); err != nil {
				return nil, err
			}
		}
	}
	return res, nil
}

// cellOut is one generation's measurements.
type cellOut struct {
	res          pipeline.Result
	nfe          int
	straightness float64
}

// generate runs one request and measures NFE and straightness through OnStep.
func (mr *modelRun) generate(ctx context.Context, r pipeline.Request) (cellOut, error) {
	meter := compare.NewStraightness(scheduler.Linear)
	var out cellOut
	var stepErr error
	r.OnStep = func(st scheduler.Step) {
		out.nfe = st.NFE
		if stepErr == nil {
			stepErr = meter.Observe(st)
		}
	}
	res, err := mr.p.Generate(ctx, r, nil)
	if err != nil {
		return out, err
	}
	if len(res.Images) == 0 {
		return out, errors.New("the pipeline returned no image")
	}
	out.res, out.straightness = res, math.NaN()
	if stepErr == nil {
		if s, err := meter.Value(res.Noise); err == nil {
			out.straightness = s
		}
	}
	return out, nil
}

// promptSeed runs the reference and every block for one prompt and seed.
func (mr *modelRun) promptSeed(ctx context.Context, res *compareResult, prompt string, seed uint64, refName string, refSteps int) error {
	req := mr.base
	req.Prompt, req.Seed = prompt, seed
	mr.log.linef("rflow: reference %s:%d for %q, seed %d", refName, refSteps, prompt, seed)
	ref := req
	ref.Sampler, ref.Steps = refName, refSteps
	rc, err := mr.generate(ctx, ref)
	if err != nil {
		return fmt.Errorf("reference %s:%d: %w", refName, refSteps, err)
	}
	for _, sched := range mr.spec.schedulers {
		for _, shift := range mr.spec.shifts {
			grid := compare.Grid{Title: fmt.Sprintf("%q, seed %d, schedule %s, shift %s", prompt, seed, defaultLabel(sched), shiftLabel(shift))}
			for _, n := range mr.spec.steps {
				grid.ColLabels = append(grid.ColLabels, fmt.Sprintf("%d steps", n))
			}
			grid.ColLabels = append(grid.ColLabels, "reference")
			for si, s := range mr.spec.samplers {
				grid.RowLabels = append(grid.RowLabels, s.Name)
				var cells []image.Image
				for _, n := range mr.spec.steps {
					r := req
					r.Sampler, r.Scheduler, r.FlowShift, r.Steps = s.Name, sched, shift, n
					row, img, err := mr.cell(ctx, r, rc)
					if err != nil {
						return err
					}
					res.rows = append(res.rows, row)
					cells = append(cells, img)
				}
				if si == 0 {
					cells = append(cells, rc.res.Images[0])
				}
				grid.Cells = append(grid.Cells, cells)
			}
			res.blocks = append(res.blocks, grid)
		}
	}
	return nil
}

// cell runs one generation and compares it with the reference.
func (mr *modelRun) cell(ctx context.Context, r pipeline.Request, ref cellOut) (compare.Row, image.Image, error) {
	c, err := mr.generate(ctx, r)
	if err != nil {
		return compare.Row{}, nil, fmt.Errorf("%s, %d steps: %w", r.Sampler, r.Steps, err)
	}
	st := c.res.Settings
	row := compare.Row{Sampler: st.Sampler, Scheduler: st.Scheduler, Shift: st.Shift, Steps: st.Steps, NFE: c.nfe,
		Seconds: c.res.Timings.Denoise.Seconds(), Straightness: c.straightness, Path: scheduler.Linear.Name(),
		Prompt: r.Prompt, Seed: r.Seed, Wasserstein: math.NaN()}
	if row.RMSE, row.MaxAbs, err = compare.ErrorStats(c.res.Latents, ref.res.Latents); err != nil {
		return row, nil, fmt.Errorf("latents against the reference: %w", err)
	}
	img := c.res.Images[0]
	if row.PSNR, err = compare.PSNR(img, ref.res.Images[0]); err != nil {
		return row, nil, err
	}
	if row.SSIM, err = compare.SSIM(img, ref.res.Images[0]); err != nil {
		return row, nil, err
	}
	mr.log.linef("rflow: %s %d steps: NFE %d, RMSE %.3g, PSNR %.1f dB", row.Sampler, row.Steps, row.NFE, row.RMSE, row.PSNR)
	return row, img, nil
}
