package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/rflowrt/rflow/assets"
	"github.com/rflowrt/rflow/compare"
	"github.com/rflowrt/rflow/internal/imagefile"
	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/scheduler"
)

// compareFlags are rflow compare's flags.
type compareFlags struct {
	model, analytic, path, reference, out string
	prompts                               []string
	seeds, samplers, steps                string
	schedulers, shifts                    string
	guidanceRules, cfgScales, stepCaches  string
	width, height, samples, projections   int
	cell                                  int
	cfg, guidance                         float64
	provider                              string
	threads                               int
	overwrite, quiet                      bool
	ort                                   *ortFlags
	sess                                  *sessionFlags
	ckpt                                  checkpointFlags
	opt                                   optimizeFlags
}

func addCompareFlags(fs *pflag.FlagSet) *compareFlags {
	f := &compareFlags{}
	fs.StringVarP(&f.model, "model", "m", "", "model folder, checkpoint or embedded demo ("+strings.Join(assets.Names(), ", ")+"); default "+assets.Default+" unless --analytic")
	f.ckpt.register(fs)
	fs.StringVar(&f.analytic, "analytic", "", "compare on an analytic flow with exact ground truth instead of a model: gmm (the 2-D 3-component mixture) or gmm:D (D dimensions)")
	fs.StringVar(&f.path, "path", "linear", "analytic runs: probability path linear (rectified flow), cosine (VP flow matching) or both")
	fs.StringArrayVarP(&f.prompts, "prompt", "p", nil, "prompt (repeatable; model runs)")
	fs.StringVar(&f.seeds, "seeds", "1", "comma-separated seeds; every cell of a seed starts from the same noise")
	fs.StringVar(&f.samplers, "samplers", "euler,heun,dpmpp_2m", "comma-separated samplers (grid rows): "+strings.Join(scheduler.SamplerNames(), ", "))
	fs.StringVar(&f.steps, "steps", "8,16,32", "comma-separated step counts (grid columns)")
	fs.StringVar(&f.schedulers, "schedulers", "", "comma-separated σ schedules (default: the model's; analytic: flowmatch, uniform in σ)")
	fs.StringVar(&f.shifts, "shifts", "", "comma-separated static σ shifts (default: the model's; analytic: 1)")
	fs.StringVar(&f.reference, "reference", "heun:100", "model runs: the reference, sampler:steps on the model's own schedule")
	fs.IntVar(&f.samples, "samples", 2000, "analytic runs: points per cell (all start from the seed's noise)")
	fs.IntVar(&f.projections, "projections", 128, "analytic runs: directions of the sliced Wasserstein distance")
	fs.IntVarP(&f.width, "width", "W", 0, "model runs: image width (default: the model's)")
	fs.IntVarP(&f.height, "height", "H", 0, "model runs: image height (default: the model's)")
	fs.Float64Var(&f.cfg, "cfg-scale", 0, "model runs: SD3 guidance scale (default: the model's)")
	fs.StringVar(&f.guidanceRules, "guidance-rules", "", "model runs: comma-separated guidance rules, an axis (cfg, cfg-zero-star, apg[:eta=…,norm-threshold=…,momentum=…], cfg++); each gets its own reference")
	fs.StringVar(&f.cfgScales, "cfg-scales", "", "model runs: comma-separated CFG scales, an axis (SD3 guidance scale; FLUX true CFG scale with -n); each gets its own reference")
	fs.StringVar(&f.stepCaches, "step-caches", "", "comma-separated step caches, an axis: off, easycache[:T], taylor[:T] (also key=value forms); off is added as the baseline; cells are costed in model calls that ran")
	fs.Float64Var(&f.guidance, "guidance", 0, "model runs: FLUX-dev distilled guidance (default 3.5)")
	fs.IntVar(&f.cell, "cell", 128, "grid thumbnail size in pixels")
	fs.StringVar(&f.provider, "provider", "cpu", "model runs: execution provider")
	fs.IntVarP(&f.threads, "threads", "t", 0, "model runs: intra-op threads (default: number of cores)")
	fs.StringVar(&f.out, "out", "", "output folder for grid.png, metrics.csv, report.md and the plots (required)")
	fs.BoolVar(&f.overwrite, "overwrite", false, "replace the outputs of an earlier comparison in --out")
	fs.BoolVarP(&f.quiet, "quiet", "q", false, "print nothing but errors")
	fs.BoolVar(&f.opt.on, "optimize-schedule", false, "search the --steps N σ list (one N) for the sampler (default euler) that best follows a high-NFE reference trajectory (Optimal Stepsize Distillation's dynamic programme) on the first --seeds seed, score it against the default schedule on --held-out-seeds, write report.md and "+presetName+" and print the replay flags")
	fs.StringVar(&f.opt.heldOut, "held-out-seeds", "101,102,103", "--optimize-schedule: seeds the search never sees, for scoring")
	fs.IntVar(&f.opt.gridPoints, "grid-points", 0, "--optimize-schedule: uniform candidate σ (default 49 for euler, 17 for two-call samplers)")
	fs.IntVar(&f.opt.refine, "refine-rounds", 0, "--optimize-schedule: coordinate-descent sweeps on the training end point after the search")
	fs.IntVar(&f.opt.batch, "train-batch", 4, "--optimize-schedule, model runs: images of the training seed's batch")
	f.ort = addORTFlags(fs)
	f.sess = addSessionFlags(fs)
	return f
}

// sessionOptions are the model runs' ONNX Runtime settings: provider, threads and txt2img's session flags.
func (f *compareFlags) sessionOptions() (ort.SessionOptions, error) {
	prov, err := ort.ParseProvider(f.provider)
	if err != nil {
		return ort.SessionOptions{}, err
	}
	so := ort.SessionOptions{Provider: prov, IntraOpThreads: f.threads}
	return so, f.sess.apply(&so, os.Getenv)
}

// compareSpec is the validated grid.
type compareSpec struct {
	samplers   []scheduler.SamplerInfo
	steps      []int
	seeds      []uint64
	schedulers []string  // "" = default
	shifts     []float64 // 0 = default
	rules      []scheduler.GuidanceRule
	cfgScales  []float64 // 0 = --cfg-scale / the model's
	caches     []scheduler.StepCacheConfig
	args       []string // the command line, for report.md
}

func runCompare(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := pflag.NewFlagSet("compare", pflag.ContinueOnError)
	f := addCompareFlags(fs)
	if err := parseFlags(fs, args, out); err != nil {
		return err
	}
	spec, err := f.spec(fs)
	if err != nil {
		return &usageError{fs: fs, err: err}
	}
	spec.args = args
	created, err := f.prepareOut()
	if err != nil {
		return err
	}
	log := newReporter(errOut, f.quiet)
	if f.opt.on {
		s, held, err := f.optimizeSpec(spec, fs.Changed("samplers"))
		if err != nil {
			return &usageError{fs: fs, err: err}
		}
		err = f.runOptimize(ctx, spec, s, held, out, log)
		if err != nil && created {
			_ = os.Remove(f.out)
		}
		return err
	}
	var res *compare.Result
	if f.analytic != "" {
		res, err = f.runAnalytic(ctx, spec, log)
	} else {
		res, err = f.runModel(ctx, spec, log)
	}
	if err == nil {
		err = res.Write(f.out, f.cell)
	}
	if err != nil {
		if created {
			_ = os.Remove(f.out) // only if still empty: never anything of the user's
		}
		return err
	}
	log.linef("rflow: wrote %s (grid.png, metrics.csv, report.md, %s)", f.out, strings.Join(res.PlotNames(), ", "))
	return nil
}

// spec validates the flags.
func (f *compareFlags) spec(fs *pflag.FlagSet) (compareSpec, error) {
	var s compareSpec
	if f.out == "" {
		return s, errors.New("--out is required")
	}
	if f.analytic != "" && fs.Changed("model") {
		return s, errors.New("--analytic and -m/--model exclude each other")
	}
	if f.analytic != "" {
		if _, err := parseAnalytic(f.analytic); err != nil {
			return s, err
		}
	} else {
		if _, _, err := parseReference(f.reference); err != nil {
			return s, err
		}
		if len(f.prompts) == 0 {
			return s, errors.New("-p/--prompt is required for model runs (or use --analytic gmm)")
		}
		if err := f.ckpt.promptsLoRAs(f.prompts); err != nil {
			return s, err
		}
		if fs.Changed("path") {
			return s, errors.New("--path needs --analytic: models have the path they were trained on")
		}
	}
	if f.path != "linear" && f.path != "cosine" && f.path != "both" {
		return s, fmt.Errorf("--path %q: want linear, cosine or both", f.path)
	}
	if err := checkSides(fs, f.width, f.height); err != nil {
		return s, err
	}
	if f.threads < 0 {
		return s, fmt.Errorf("--threads %d: want 0 or more", f.threads)
	}
	if f.samples < 2 || f.samples > 1_000_000 || f.projections < 1 || f.cell < 16 || f.cell > 1024 {
		return s, fmt.Errorf("--samples must be in [2, 1e6], --projections ≥ 1, --cell in [16, 1024]")
	}
	var err error
	if s.samplers, err = parseSamplers(f.samplers); err != nil {
		return s, err
	}
	if s.steps, err = parseStepList(f.steps); err != nil {
		return s, err
	}
	if s.seeds, err = parseSeeds(f.seeds); err != nil {
		return s, err
	}
	s.schedulers, s.shifts = []string{""}, []float64{0}
	if f.schedulers != "" {
		s.schedulers = nil
		for _, n := range splitList(f.schedulers) {
			s.schedulers = append(s.schedulers, schedulerName(n))
		}
	}
	if s.rules, s.cfgScales, s.caches, err = f.axes(); err != nil {
		return s, err
	}
	if f.analytic != "" && (f.guidanceRules != "" || f.cfgScales != "") {
		return s, errors.New("--guidance-rules and --cfg-scales need a model: the analytic flow has no conditioning")
	}
	if f.shifts != "" {
		if s.shifts, err = parseFloats(f.shifts); err != nil {
			return s, fmt.Errorf("--shifts: %v", err)
		}
		for _, v := range s.shifts {
			if !(v > 0) || v > 1000 {
				return s, fmt.Errorf("--shifts: %v: want a shift in (0, 1000]", v)
			}
		}
	}
	return s, nil
}

// axes parses the guidance, CFG-scale and step-cache axes (one default entry each when not given).
func (f *compareFlags) axes() ([]scheduler.GuidanceRule, []float64, []scheduler.StepCacheConfig, error) {
	rules := []scheduler.GuidanceRule{{Kind: scheduler.GuidanceCFG}}
	if f.guidanceRules != "" {
		rules = nil
		for _, spec := range splitSpecs(f.guidanceRules) {
			r, err := scheduler.ParseGuidanceRule(spec)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("--guidance-rules: %w", err)
			}
			rules = append(rules, r)
		}
	}
	scales := []float64{0}
	if f.cfgScales != "" {
		var err error
		if scales, err = parseFloats(f.cfgScales); err != nil {
			return nil, nil, nil, fmt.Errorf("--cfg-scales: %v", err)
		}
		for _, v := range scales {
			if !(v >= 0) || v > 100 {
				return nil, nil, nil, fmt.Errorf("--cfg-scales: %v: want a scale in [0, 100]", v)
			}
		}
	}
	caches := []scheduler.StepCacheConfig{{}}
	if f.stepCaches != "" {
		caches = nil
		for _, spec := range splitSpecs(f.stepCaches) {
			c, err := scheduler.ParseStepCache(spec)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("--step-caches: %w", err)
			}
			caches = append(caches, c)
		}
		if !slices.ContainsFunc(caches, func(c scheduler.StepCacheConfig) bool { return c.Kind == scheduler.StepCacheOff }) {
			caches = append([]scheduler.StepCacheConfig{{}}, caches...) // the uncached baseline every cache is measured against
		}
		slices.SortStableFunc(caches, func(a, b scheduler.StepCacheConfig) int { // off first
			return boolInt(a.Kind != scheduler.StepCacheOff) - boolInt(b.Kind != scheduler.StepCacheOff)
		})
	}
	return rules, scales, caches, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// splitSpecs splits a comma list of specs whose parameters are themselves comma-separated key=value
// pairs: "cfg,apg:eta=0,norm=5,cfg++" is cfg, apg:eta=0,norm=5 and cfg++ (a key=value item continues
// the spec before it).
func splitSpecs(s string) []string {
	var out []string
	for _, p := range splitList(s) {
		if len(out) > 0 && strings.Contains(p, "=") && !strings.Contains(p, ":") {
			out[len(out)-1] += "," + p
			continue
		}
		out = append(out, p)
	}
	return out
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parseSamplers(s string) ([]scheduler.SamplerInfo, error) {
	names := splitList(s)
	if len(names) == 0 {
		return nil, errors.New("--samplers: no sampler named")
	}
	var out []scheduler.SamplerInfo
	for _, n := range names {
		info, err := scheduler.LookupSampler(n)
		if err != nil {
			return nil, fmt.Errorf("--samplers: %w", err)
		}
		out = append(out, info)
	}
	return out, nil
}

func parseStepList(s string) ([]int, error) {
	var out []int
	for _, p := range splitList(s) {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > scheduler.MaxSteps {
			return nil, fmt.Errorf("--steps: %q: want whole numbers in [1, %d]", p, scheduler.MaxSteps)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("--steps: no step count given")
	}
	return out, nil
}

func parseSeeds(s string) ([]uint64, error) {
	var out []uint64
	for _, p := range splitList(s) {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("--seeds: %q: want non-negative whole numbers", p)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("--seeds: no seed given")
	}
	return out, nil
}

// prepareOut creates the output folder (created reports whether it was new) and refuses to replace an
// earlier comparison's files without --overwrite.
func (f *compareFlags) prepareOut() (created bool, err error) {
	if _, err := os.Stat(f.out); errors.Is(err, os.ErrNotExist) {
		created = true
	}
	if err := imagefile.CheckDirWritable(f.out); err != nil {
		return false, fmt.Errorf("--out: %w", err)
	}
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return false, fmt.Errorf("--out: %w", err)
	}
	if f.overwrite {
		return created, nil
	}
	for _, name := range []string{"metrics.csv", "report.md", "grid.png", presetName} {
		if _, err := os.Stat(filepath.Join(f.out, name)); err == nil {
			return created, fmt.Errorf("%s already exists; pass --overwrite to replace it", filepath.Join(f.out, name))
		}
	}
	return created, nil
}
