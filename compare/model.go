package compare

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"strconv"
	"strings"

	"github.com/rflowrt/rflow/pipeline"
	"github.com/rflowrt/rflow/scheduler"
)

// ModelSpec is a comparison on a model: the grid, the base request (size, guidance), the prompts and
// the reference each cell is measured against.
type ModelSpec struct {
	Base       pipeline.Request
	Prompts    []string
	Seeds      []uint64
	Samplers   []scheduler.SamplerInfo
	Steps      []int
	Schedulers []string  // "" = the model's
	Shifts     []float64 // 0 = the model's
	Rules      []scheduler.GuidanceRule
	CFGScales  []float64 // 0 = the base request's
	Caches     []scheduler.StepCacheConfig
	// RefSampler and RefSteps are the reference run on the model's own schedule (heun, 100).
	RefSampler string
	RefSteps   int
	// Title, Command and Settings head report.md.
	Title, Command string
	Settings       [][2]string
}

// modelRun is a comparison on one model: one reference run per (prompt, seed, guidance variant).
type modelRun struct {
	spec ModelSpec
	p    *pipeline.Pipeline
	log  func(string)
}

func (mr *modelRun) linef(format string, a ...any) {
	if mr.log != nil {
		mr.log(fmt.Sprintf(format, a...))
	}
}

// RunModel runs the grid through the pipeline for every prompt, seed and guidance variant; log, if
// set, gets a line per reference and cell.
func RunModel(ctx context.Context, p *pipeline.Pipeline, spec ModelSpec, log func(string)) (*Result, error) {
	mr := &modelRun{spec: spec, p: p, log: log}
	res := &Result{Title: spec.Title, Command: spec.Command, Settings: spec.Settings}
	for _, prompt := range spec.Prompts {
		for _, seed := range spec.Seeds {
			if err := mr.promptSeed(ctx, res, prompt, seed, spec.RefSampler, spec.RefSteps); err != nil {
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
	meter := NewStraightness(scheduler.Linear)
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

// promptSeed runs, for one prompt and seed, every guidance variant (rule × CFG scale): its reference,
// then every step cache × schedule × shift block of samplers × steps.
func (mr *modelRun) promptSeed(ctx context.Context, res *Result, prompt string, seed uint64, refName string, refSteps int) error {
	for _, rule := range mr.spec.Rules {
		for _, cfg := range mr.spec.CFGScales {
			req := mr.spec.Base
			req.Prompt, req.Seed = prompt, seed
			if !rule.IsCFG() {
				req.GuidanceRule = rule.String()
			}
			if cfg > 0 {
				req.CFGScale, req.TrueCFGScale = cfg, cfg
			}
			if err := mr.variant(ctx, res, req, rule, refName, refSteps); err != nil {
				return err
			}
		}
	}
	return nil
}

// variant runs one guidance variant's reference and blocks.
func (mr *modelRun) variant(ctx context.Context, res *Result, req pipeline.Request, rule scheduler.GuidanceRule, refName string, refSteps int) error {
	label := variantLabel(rule, req.CFGScale)
	mr.linef("rflow: reference %s:%d for %q, seed %d%s", refName, refSteps, req.Prompt, req.Seed, label)
	ref := req
	ref.Sampler, ref.Steps = refName, refSteps
	if rule.EulerOnly() {
		ref.Sampler = "euler" // cfg++ is defined for Euler only: its reference is Euler at the reference's steps
	}
	rc, err := mr.generate(ctx, ref)
	if err != nil {
		return fmt.Errorf("reference %s:%d%s: %w", ref.Sampler, refSteps, label, err)
	}
	uncached := map[string]cellOut{} // the cache-off cell of each (schedule, shift, sampler, steps)
	for _, cache := range mr.spec.Caches {
		for _, sched := range mr.spec.Schedulers {
			for _, shift := range mr.spec.Shifts {
				title := fmt.Sprintf("%q, seed %d, schedule %s, shift %s%s", req.Prompt, req.Seed, defaultLabel(sched), shiftLabel(shift), label)
				if cache.Kind != scheduler.StepCacheOff {
					title += ", " + cache.String()
				}
				grid := Grid{Title: title}
				for _, n := range mr.spec.Steps {
					grid.ColLabels = append(grid.ColLabels, fmt.Sprintf("%d steps", n))
				}
				grid.ColLabels = append(grid.ColLabels, "reference")
				for si, s := range mr.spec.Samplers {
					if rule.EulerOnly() && s.Name != "euler" {
						continue // cfg++ runs with euler only
					}
					grid.RowLabels = append(grid.RowLabels, s.Name)
					var cells []image.Image
					for _, n := range mr.spec.Steps {
						r := req
						r.Sampler, r.Scheduler, r.FlowShift, r.Steps = s.Name, sched, shift, n
						if cache.Kind != scheduler.StepCacheOff {
							r.StepCache = cache.String()
						}
						row, out, err := mr.cell(ctx, r, rc)
						if err != nil {
							return err
						}
						res.Rows = append(res.Rows, row)
						cells = append(cells, out.res.Images[0])
						key := fmt.Sprintf("%s|%g|%s|%d", sched, shift, s.Name, n)
						if cache.Kind == scheduler.StepCacheOff {
							uncached[key] = out
						} else if base, ok := uncached[key]; ok {
							st, err := cacheStatOf(cache.String(), fmt.Sprintf("%s %d steps, %q, seed %d%s", s.Name, n, req.Prompt, req.Seed, label), out, base)
							if err != nil {
								return err
							}
							res.Caches = append(res.Caches, st)
						}
					}
					if si == 0 || len(grid.Cells) == 0 {
						cells = append(cells, rc.res.Images[0])
					}
					grid.Cells = append(grid.Cells, cells)
				}
				if len(grid.RowLabels) > 0 {
					res.Blocks = append(res.Blocks, grid)
				}
			}
		}
	}
	return nil
}

// variantLabel names a guidance variant in titles and logs ("" for the default CFG at the default scale).
func variantLabel(rule scheduler.GuidanceRule, cfg float64) string {
	var parts []string
	if !rule.IsCFG() {
		parts = append(parts, rule.String())
	}
	if cfg > 0 {
		parts = append(parts, "CFG "+strconv.FormatFloat(cfg, 'g', -1, 64))
	}
	if len(parts) == 0 {
		return ""
	}
	return ", " + strings.Join(parts, ", ")
}

// cell runs one generation and compares it with the reference.
func (mr *modelRun) cell(ctx context.Context, r pipeline.Request, ref cellOut) (Row, cellOut, error) {
	c, err := mr.generate(ctx, r)
	if err != nil {
		return Row{}, c, fmt.Errorf("%s, %d steps: %w", r.Sampler, r.Steps, err)
	}
	st := c.res.Settings
	row := Row{Sampler: st.Sampler, Scheduler: st.Scheduler, Shift: st.Shift, Steps: st.Steps, NFE: c.nfe,
		Seconds: c.res.Timings.Denoise.Seconds(), Straightness: c.straightness, Path: scheduler.Linear.Name(),
		Prompt: r.Prompt, Seed: r.Seed, Wasserstein: math.NaN(), GuidanceRule: "cfg", CFGScale: st.CFGScale,
		StepCache: "off", ModelCalls: c.res.Timings.ModelCalls}
	if st.GuidanceRule != "" {
		row.GuidanceRule = st.GuidanceRule
	}
	if st.StepCache != "" {
		row.StepCache = st.StepCache
	}
	if st.TrueCFGScale > 1 {
		row.CFGScale = st.TrueCFGScale
	}
	if row.RMSE, row.MaxAbs, err = ErrorStats(c.res.Latents, ref.res.Latents); err != nil {
		return row, c, fmt.Errorf("latents against the reference: %w", err)
	}
	img := c.res.Images[0]
	if row.PSNR, err = PSNR(img, ref.res.Images[0]); err != nil {
		return row, c, err
	}
	if row.SSIM, err = SSIM(img, ref.res.Images[0]); err != nil {
		return row, c, err
	}
	mr.linef("rflow: %s %d steps: NFE %d (%d model calls), RMSE %.3g, PSNR %.1f dB", row.Sampler, row.Steps, row.NFE, row.Calls(), row.RMSE, row.PSNR)
	return row, c, nil
}

// cacheStatOf compares a cached cell with the same cell uncached.
func cacheStatOf(cache, cell string, c, base cellOut) (CacheStat, error) {
	st := CacheStat{Cache: cache, Cell: cell, Calls: c.res.Timings.ModelCalls, UncachedCalls: base.res.Timings.ModelCalls}
	var err error
	if st.RMSEAdded, _, err = ErrorStats(c.res.Latents, base.res.Latents); err != nil {
		return st, err
	}
	if st.PSNR, err = PSNR(c.res.Images[0], base.res.Images[0]); err != nil {
		return st, err
	}
	return st, nil
}
