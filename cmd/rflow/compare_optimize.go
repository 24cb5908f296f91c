package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/rflowrt/rflow/compare"
	"github.com/rflowrt/rflow/pipeline"
	"github.com/rflowrt/rflow/scheduler"
)

// optimizeFlags are rflow compare --optimize-schedule's own flags.
type optimizeFlags struct {
	on         bool
	heldOut    string
	gridPoints int
	refine     int
	batch      int
}

// presetName is the preset file an --optimize-schedule run writes next to report.md.
const presetName = "optimized-schedule.json"

// optimizeSpec validates the search flags: one step count, one deterministic fixed-step sampler.
func (f *compareFlags) optimizeSpec(spec compareSpec, samplersChanged bool) (compare.ScheduleSearch, []uint64, error) {
	s := compare.ScheduleSearch{RefineRounds: f.opt.refine, RefineSub: 4}
	if len(spec.steps) != 1 {
		return s, nil, errors.New("--optimize-schedule searches one schedule: give one --steps N")
	}
	s.Steps = spec.steps[0]
	s.Sampler, _ = scheduler.LookupSampler("euler")
	if samplersChanged {
		if len(spec.samplers) != 1 {
			return s, nil, errors.New("--optimize-schedule searches for one sampler: give one --samplers name (default euler)")
		}
		s.Sampler = spec.samplers[0]
	}
	s.GridPoints = f.opt.gridPoints
	if s.GridPoints == 0 {
		s.GridPoints = 49
		if s.Sampler.Name != "euler" {
			s.GridPoints = 17 // every σ pair costs the sampler's calls
		}
	}
	if s.GridPoints < s.Steps+1 || s.GridPoints > 2000 {
		return s, nil, fmt.Errorf("--grid-points %d: want %d … 2000", s.GridPoints, s.Steps+1)
	}
	if f.opt.refine < 0 || f.opt.refine > 20 || f.opt.batch < 1 || f.opt.batch > 64 {
		return s, nil, errors.New("--refine-rounds must be in [0, 20] and --train-batch in [1, 64]")
	}
	held, err := parseSeeds(f.opt.heldOut)
	if err != nil {
		return s, nil, fmt.Errorf("--held-out-seeds: %v", err)
	}
	for _, h := range held {
		for _, t := range spec.seeds {
			if h == t {
				return s, nil, fmt.Errorf("--held-out-seeds: seed %d is also a training seed (--seeds)", h)
			}
		}
	}
	if s.Sampler.Stochastic || s.Sampler.CallsPerStep == "adaptive" {
		return s, nil, fmt.Errorf("--optimize-schedule needs a deterministic fixed-step sampler, not %s", s.Sampler.Name)
	}
	return s, held, nil
}

// runOptimize runs --optimize-schedule and writes report.md and the preset file into --out; the
// replay flags go to out.
func (f *compareFlags) runOptimize(ctx context.Context, spec compareSpec, s compare.ScheduleSearch, held []uint64, out io.Writer, log *reporter) error {
	var res compare.ScheduleSearchResult
	var err error
	model := "analytic " + f.analytic
	if f.analytic != "" {
		res, err = f.optimizeAnalytic(ctx, spec, s, held, log)
	} else {
		model, res, err = f.optimizeModel(ctx, spec, s, held, log)
	}
	if err != nil {
		return err
	}
	preset, err := res.PresetJSON(model)
	if err != nil {
		return err
	}
	doc := compare.Document{Title: "rflow compare --optimize-schedule: " + model, Command: commandLine(spec.args),
		Settings: [][2]string{{"model", model}, {"sampler", s.Sampler.Name}, {"steps", fmt.Sprint(s.Steps)},
			{"training seed", fmt.Sprint(spec.seeds[0])}, {"held-out seeds", f.opt.heldOut},
			{"candidate grid", fmt.Sprintf("%d uniform σ plus the default schedule's (%d in all)", s.GridPoints, res.Grid)},
			{"refinement", fmt.Sprintf("%d coordinate-descent rounds on the training end point", s.RefineRounds)}},
		Sections: []compare.Section{{Heading: "Optimised schedule", Body: res.Markdown()}}}
	var md strings.Builder
	if err := doc.WriteMarkdown(&md); err != nil {
		return err
	}
	if err := compare.WriteAll(f.out, []compare.File{{Name: "report.md", Data: []byte(md.String())}, {Name: presetName, Data: append(preset, '\n')}}); err != nil {
		return err
	}
	fmt.Fprintln(out, res.SigmasFlag())
	log.linef("rflow: held-out end-point RMSE %s than the default schedule's (better on %d of %d seeds); wrote %s (report.md, %s)",
		res.GainText(), res.Improved(), len(res.HeldOut), f.out, presetName)
	return nil
}

func (f *compareFlags) optimizeAnalytic(ctx context.Context, spec compareSpec, s compare.ScheduleSearch, held []uint64, log *reporter) (compare.ScheduleSearchResult, error) {
	dim, err := parseAnalytic(f.analytic)
	if err != nil {
		return compare.ScheduleSearchResult{}, err
	}
	g, err := compare.AnalyticMixture(dim)
	if err != nil {
		return compare.ScheduleSearchResult{}, err
	}
	paths := f.paths()
	if len(paths) != 1 {
		return compare.ScheduleSearchResult{}, errors.New("--optimize-schedule searches on one path: --path linear or cosine")
	}
	flow := &scheduler.AnalyticFlow{Target: g, Path: paths[0]}
	train, err := compare.AnalyticStart(g, spec.seeds[0], f.samples)
	if err != nil {
		return compare.ScheduleSearchResult{}, err
	}
	starts := map[uint64][]float32{}
	for _, h := range held {
		if starts[h], err = compare.AnalyticStart(g, h, f.samples); err != nil {
			return compare.ScheduleSearchResult{}, err
		}
	}
	def, err := compare.AnalyticSigmas(spec.schedulers[0], spec.shifts[0], s.Steps)
	if err != nil {
		return compare.ScheduleSearchResult{}, err
	}
	log.linef("rflow: searching a %d-step %s schedule on the analytic flow (%d training points)", s.Steps, s.Sampler.Name, f.samples)
	return compare.OptimizeAnalytic(ctx, flow, s, train, starts, held, def.Sigmas)
}

func (f *compareFlags) optimizeModel(ctx context.Context, spec compareSpec, s compare.ScheduleSearch, held []uint64, log *reporter) (string, compare.ScheduleSearchResult, error) {
	refName, refSteps, err := parseReference(f.reference)
	if err != nil {
		return "", compare.ScheduleSearchResult{}, err
	}
	if err := f.ort.init(); err != nil {
		return "", compare.ScheduleSearchResult{}, err
	}
	m, err := openAnyModel(ctx, f.model, f.ckpt, log.w, f.quiet)
	if err != nil {
		return "", compare.ScheduleSearchResult{}, err
	}
	so, err := f.sessionOptions()
	if err != nil {
		return "", compare.ScheduleSearchResult{}, err
	}
	p := pipeline.New(m, pipeline.Options{Session: so, KeepModels: true})
	defer p.Close()
	base := pipeline.Request{Prompt: f.prompts[0], Width: f.width, Height: f.height, CFGScale: f.cfg, Guidance: f.guidance,
		Scheduler: spec.schedulers[0], FlowShift: spec.shifts[0]}
	ms := compare.ModelSearch{Base: base, TrainSeed: spec.seeds[0], TrainBatch: f.opt.batch, HeldOut: held,
		RefSampler: refName, RefSteps: refSteps}
	res, err := compare.OptimizeModel(ctx, p, s, ms, func(line string) { log.linef("%s", line) })
	return m.Name, res, err
}
