package compare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/rflowrt/rflow/pipeline"
	"github.com/rflowrt/rflow/scheduler"
)

// ScheduleSearch is an --optimize-schedule run's settings.
type ScheduleSearch struct {
	// Steps is the number of steps of the searched schedule; Sampler the one-step sampler it is searched
	// for (euler or heun, …).
	Steps   int
	Sampler scheduler.SamplerInfo
	// GridPoints is the number of uniform candidate σ (the default schedule's σ are added to them).
	GridPoints int
	// RefineRounds > 0 adds that many coordinate-descent sweeps on the training end point.
	RefineRounds int
	// RefineSub is the number of sub-steps per grid interval of the reference trajectory (model runs:
	// heun on the refined grid).
	RefineSub int
}

// ScheduleSearchResult is what a search found and how it does on held-out starts.
type ScheduleSearchResult struct {
	Sampler  string
	Sigmas   []float64 // the optimised σ list (Steps+1 values, terminal 0)
	Default  []float64 // the default schedule at the same steps
	Grid     int       // candidate grid points
	TrainErr float64   // training end-point RMSE of the optimised schedule
	// HeldOut rows: one per held-out seed (analytic: per seed's start points).
	HeldOut []HeldOutRow
}

// HeldOutRow is one held-out seed's end-point RMSE against its reference, optimised vs default, at
// equal model calls.
type HeldOutRow struct {
	Seed               uint64
	Optimised, Default float64
}

// Gain is 1 − the geometric mean of optimised/default over the held-out rows: the typical share of
// end-point error the optimised schedule removes. A geometric mean of ratios, so that one seed whose
// default run lands in another mode of the target (a ratio of 0.04) cannot outvote the others.
func (r ScheduleSearchResult) Gain() float64 {
	sum, n := 0.0, 0
	for _, h := range r.HeldOut {
		if h.Optimised > 0 && h.Default > 0 {
			sum += math.Log(h.Optimised / h.Default)
			n++
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return 1 - math.Exp(sum/float64(n))
}

// GainText says Gain in words: "29 % lower" or "17 % higher".
func (r ScheduleSearchResult) GainText() string {
	g := r.Gain()
	if g < 0 {
		return fmt.Sprintf("%.0f %% higher", -100*g)
	}
	return fmt.Sprintf("%.0f %% lower", 100*g)
}

// Improved counts the held-out rows where the optimised schedule has the smaller error.
func (r ScheduleSearchResult) Improved() int {
	k := 0
	for _, h := range r.HeldOut {
		if h.Optimised < h.Default {
			k++
		}
	}
	return k
}

// SigmasFlag renders the σ list as txt2img flags (raw: the list is already the schedule to walk).
func (r ScheduleSearchResult) SigmasFlag() string {
	parts := make([]string, 0, len(r.Sigmas))
	for _, s := range r.Sigmas[:len(r.Sigmas)-1] {
		parts = append(parts, strconv.FormatFloat(float64(float32(s)), 'g', -1, 32))
	}
	return "--sampler " + r.Sampler + " --sigmas " + strings.Join(parts, ",") + " --sigmas-raw"
}

// PresetJSON is the preset file: model, sampler, steps, σ and the flags that replay it.
func (r ScheduleSearchResult) PresetJSON(model string) ([]byte, error) {
	type preset struct {
		Model   string    `json:"model"`
		Sampler string    `json:"sampler"`
		Steps   int       `json:"steps"`
		Sigmas  []float64 `json:"sigmas"`
		Flags   string    `json:"flags"`
		Gain    float64   `json:"held_out_rmse_reduction"`
	}
	gain := r.Gain()
	if math.IsNaN(gain) {
		gain = 0
	}
	return json.MarshalIndent(preset{model, r.Sampler, len(r.Sigmas) - 1, r.Sigmas, r.SigmasFlag(), gain}, "", "  ")
}

// Markdown is the report section of a search.
func (r ScheduleSearchResult) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Optimal Stepsize Distillation's dynamic programme (Pei et al. 2025) over %d candidate σ for %s, %d steps", r.Grid, r.Sampler, len(r.Sigmas)-1)
	b.WriteString(", trained on the training starts against the reference trajectory; error is the end-point RMSE against each held-out start's reference, at equal model calls.\n\n")
	fmt.Fprintf(&b, "- optimised σ: `%s`\n- default σ: `%s`\n- replay: `%s`\n- training end-point RMSE: %.4g\n\n", fmtList(r.Sigmas), fmtList(r.Default), r.SigmasFlag(), r.TrainErr)
	b.WriteString("| held-out seed | RMSE optimised | RMSE default | reduction |\n|---|---|---|---|\n")
	for _, h := range r.HeldOut {
		fmt.Fprintf(&b, "| %d | %.4g | %.4g | %.0f %% |\n", h.Seed, h.Optimised, h.Default, 100*(1-h.Optimised/h.Default))
	}
	fmt.Fprintf(&b, "\nOver the held-out seeds (geometric mean of the ratios) the optimised schedule's end-point error is %s than the default's; it is better on %d of %d seeds.\n",
		r.GainText(), r.Improved(), len(r.HeldOut))
	return b.String()
}

func fmtList(v []float64) string {
	p := make([]string, len(v))
	for i, s := range v {
		p[i] = strconv.FormatFloat(s, 'g', 5, 64)
	}
	return strings.Join(p, ", ")
}

// search runs the programme and the optional refinement on one training batch.
func (s ScheduleSearch) search(ctx context.Context, m scheduler.Model, x0 []float32, grid []float64, ref [][]float32) ([]float64, float64, error) {
	var step scheduler.SamplerFunc
	if s.Sampler.Name != "euler" {
		step = s.Sampler.Func
	}
	sig, trainErr, err := scheduler.OptimizeSchedule(ctx, m, step, x0, grid, ref, s.Steps)
	if err != nil {
		return nil, 0, err
	}
	if s.RefineRounds > 0 {
		return scheduler.RefineSchedule(ctx, m, s.Sampler.Func, x0, ref[len(ref)-1], sig, s.RefineRounds, 8)
	}
	return sig, trainErr, nil
}

func (s ScheduleSearch) check() error {
	if s.Steps < 1 || s.GridPoints < s.Steps+1 || s.Sampler.Func == nil {
		return fmt.Errorf("compare: schedule search: %d steps on %d grid points with sampler %q", s.Steps, s.GridPoints, s.Sampler.Name)
	}
	if s.Sampler.Stochastic || s.Sampler.CallsPerStep == "adaptive" {
		return fmt.Errorf("compare: schedule search: %s is not a deterministic fixed-step sampler", s.Sampler.Name)
	}
	return nil
}

// OptimizeAnalytic searches on the analytic flow: train are the training start points, held the
// held-out seeds' start points (keyed by seed), def the default σ list at s.Steps. References are the
// flow's exact transport.
func OptimizeAnalytic(ctx context.Context, f *scheduler.AnalyticFlow, s ScheduleSearch, train []float32, held map[uint64][]float32, seeds []uint64, def []float64) (ScheduleSearchResult, error) {
	if err := s.check(); err != nil {
		return ScheduleSearchResult{}, err
	}
	grid := scheduler.CandidateGrid(s.GridPoints, def)
	ref := make([][]float32, len(grid))
	ref[0] = append([]float32(nil), train...)
	y := make([]float64, len(train))
	for j := 1; j < len(grid); j++ {
		if err := f.Transport(ctx, y, ref[j-1], grid[j-1], grid[j], 1e-9); err != nil {
			return ScheduleSearchResult{}, err
		}
		ref[j] = make([]float32, len(y))
		for q, v := range y {
			ref[j][q] = float32(v)
		}
	}
	sig, trainErr, err := s.search(ctx, f, train, grid, ref)
	if err != nil {
		return ScheduleSearchResult{}, err
	}
	res := ScheduleSearchResult{Sampler: s.Sampler.Name, Sigmas: sig, Default: def, Grid: len(grid), TrainErr: trainErr}
	for _, seed := range seeds {
		x0 := held[seed]
		truth := make([]float64, len(x0))
		if err := f.Transport(ctx, truth, x0, sig[0], 0, 1e-10); err != nil {
			return res, err
		}
		run := func(sigmas []float64) (float64, error) {
			x := append([]float32(nil), x0...)
			if err := s.Sampler.Func(ctx, f, x, sigmas, scheduler.Options{Path: f.Path}); err != nil {
				return 0, err
			}
			rmse, _, err := ErrorStats(x, truth)
			return rmse, err
		}
		o, err := run(sig)
		if err != nil {
			return res, err
		}
		d, err := run(def)
		if err != nil {
			return res, err
		}
		res.HeldOut = append(res.HeldOut, HeldOutRow{Seed: seed, Optimised: o, Default: d})
	}
	return res, nil
}

// ModelSearch is a search on a model: the base request (prompt, size, guidance), the training seed and
// batch, the held-out seeds and the reference used to score them.
type ModelSearch struct {
	Base       pipeline.Request
	TrainSeed  uint64
	TrainBatch int
	HeldOut    []uint64
	// Reference is the sampler and steps of each held-out seed's reference on the model's own schedule.
	RefSampler string
	RefSteps   int
}

// OptimizeModel searches on a model through the pipeline: one generation of the training batch walks
// the candidate grid with Request.SamplerFunc (reference trajectory by heun on the grid refined
// RefineSub times, then the programme); each held-out seed then runs the optimised and the default
// schedule and is scored against its reference (latent RMSE). log, if set, gets progress lines.
func OptimizeModel(ctx context.Context, p *pipeline.Pipeline, s ScheduleSearch, ms ModelSearch, log func(string)) (ScheduleSearchResult, error) {
	if err := s.check(); err != nil {
		return ScheduleSearchResult{}, err
	}
	say := func(f string, a ...any) {
		if log != nil {
			log(fmt.Sprintf(f, a...))
		}
	}
	base := ms.Base
	base.Sampler = s.Sampler.Name
	defReq := base
	defReq.Steps, defReq.Seed = s.Steps, ms.TrainSeed
	say("rflow: schedule search: the default %d-step schedule", s.Steps)
	dres, err := p.Generate(ctx, defReq, nil)
	if err != nil {
		return ScheduleSearchResult{}, fmt.Errorf("default schedule: %w", err)
	}
	def := dres.Settings.Sigmas
	grid := scheduler.CandidateGrid(s.GridPoints, def)
	sub := max(s.RefineSub, 1)
	fine := make([]float64, 0, (len(grid)-1)*sub+1)
	for j := 0; j+1 < len(grid); j++ {
		for q := range sub {
			fine = append(fine, grid[j]+(grid[j+1]-grid[j])*float64(q)/float64(sub))
		}
	}
	fine = append(fine, grid[len(grid)-1])
	var res ScheduleSearchResult
	var searchErr error
	train := base
	train.Seed, train.BatchSize = ms.TrainSeed, max(ms.TrainBatch, 1)
	train.Sigmas, train.SigmasRaw, train.Steps = grid[:len(grid)-1], true, 0
	train.SamplerFunc = func(ctx context.Context, m scheduler.Model, x []float32, _ []float64, _ scheduler.Options) error {
		ref := make([][]float32, 0, len(grid))
		ref = append(ref, append([]float32(nil), x...))
		y := append([]float32(nil), x...)
		say("rflow: schedule search: reference trajectory (heun, %d steps over %d grid points)", len(fine)-1, len(grid))
		o := scheduler.Options{Callback: func(st scheduler.Step) error {
			if (st.Index+1)%sub == 0 {
				ref = append(ref, append([]float32(nil), st.X...))
			}
			return nil
		}}
		if err := scheduler.Heun(ctx, m, y, fine, o); err != nil {
			return err
		}
		say("rflow: schedule search: dynamic programme, %d steps of %s", s.Steps, s.Sampler.Name)
		sig, trainErr, err := s.search(ctx, m, x, grid, ref)
		if err != nil {
			searchErr = err
			return err
		}
		res = ScheduleSearchResult{Sampler: s.Sampler.Name, Sigmas: sig, Default: def, Grid: len(grid), TrainErr: trainErr}
		copy(x, y)
		return nil
	}
	if _, err := p.Generate(ctx, train, nil); err != nil {
		return res, errors.Join(fmt.Errorf("schedule search: %w", err), searchErr)
	}
	for _, seed := range ms.HeldOut {
		say("rflow: schedule search: held-out seed %d", seed)
		r := base
		r.Seed = seed
		ref := r
		ref.Sampler, ref.Steps = ms.RefSampler, ms.RefSteps
		rr, err := p.Generate(ctx, ref, nil)
		if err != nil {
			return res, fmt.Errorf("reference for seed %d: %w", seed, err)
		}
		opt := r
		opt.Sigmas, opt.SigmasRaw = res.Sigmas[:len(res.Sigmas)-1], true
		or, err := p.Generate(ctx, opt, nil)
		if err != nil {
			return res, fmt.Errorf("optimised schedule, seed %d: %w", seed, err)
		}
		dr := r
		dr.Steps = s.Steps
		dres, err := p.Generate(ctx, dr, nil)
		if err != nil {
			return res, fmt.Errorf("default schedule, seed %d: %w", seed, err)
		}
		o, _, err := ErrorStats(or.Latents, rr.Latents)
		if err != nil {
			return res, err
		}
		d, _, err := ErrorStats(dres.Latents, rr.Latents)
		if err != nil {
			return res, err
		}
		res.HeldOut = append(res.HeldOut, HeldOutRow{Seed: seed, Optimised: o, Default: d})
	}
	return res, nil
}
