package compare

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/rflowrt/rflow/scheduler"
)

// AnalyticMixture is --analytic gmm's target: three components with means at radius 1.5 at angles
// 90°, 210° and 330° in the first two coordinates (coordinates beyond the second are ±0.5,
// alternating per component and coordinate), standard deviations 0.5, 0.4, 0.3 and weights 0.5, 0.3,
// 0.2. Well separated enough that the flow curves, wide enough that 8 steps are in the asymptotic
// regime of the samplers' orders.
func AnalyticMixture(dim int) (*scheduler.GaussianMixture, error) {
	var means [][]float64
	for k := range 3 {
		a := math.Pi/2 + 2*math.Pi*float64(k)/3
		mu := make([]float64, dim)
		mu[0] = 1.5 * math.Cos(a)
		if dim > 1 {
			mu[1] = 1.5 * math.Sin(a)
		}
		for d := 2; d < dim; d++ {
			mu[d] = 0.5 * float64(1-2*((k+d)%2))
		}
		means = append(means, mu)
	}
	return scheduler.NewGaussianMixture(means, []float64{0.5, 0.4, 0.3}, []float64{0.5, 0.3, 0.2})
}

// analyticSeed is one seed's shared data: start points, exact target draws and the plot window.
type analyticSeed struct {
	seed   uint64
	start  []float32
	target []float64
	bounds Bounds
}

func newAnalyticSeed(g *scheduler.GaussianMixture, seed uint64, n int) (analyticSeed, error) {
	s := analyticSeed{seed: seed, start: make([]float32, n*g.Dim()), target: make([]float64, n*g.Dim())}
	r := rand.New(rand.NewPCG(seed, 0x57a27))
	for j := range s.start {
		s.start[j] = float32(r.NormFloat64())
	}
	if err := g.Sample(rand.New(rand.NewPCG(seed, 0x7a26e7)), s.target); err != nil {
		return s, err
	}
	s.bounds = ScatterBounds(s.target, g.Dim())
	return s, nil
}

// AnalyticSpec is a comparison on the analytic mixture: the grid and what each cell measures.
type AnalyticSpec struct {
	Dim        int
	Paths      []scheduler.Path
	Samplers   []scheduler.SamplerInfo
	Steps      []int
	Seeds      []uint64
	Schedulers []string  // "" = the default (FlowMatchEuler with the default config)
	Shifts     []float64 // 0 = the default
	Caches     []scheduler.StepCacheConfig
	// Samples is the points per cell, Projections the sliced-W₂ directions, Cell the thumbnail size.
	Samples, Projections, Cell int
	// Title, Command and Settings head report.md.
	Title, Command string
	Settings       [][2]string
}

// RunAnalytic runs the grid on the analytic mixture for every seed, path, step cache, schedule and
// shift; log, if set, gets a line per block.
func RunAnalytic(ctx context.Context, spec AnalyticSpec, log func(string)) (*Result, error) {
	g, err := AnalyticMixture(spec.Dim)
	if err != nil {
		return nil, err
	}
	res := &Result{Analytic: true, Title: spec.Title, Command: spec.Command, Settings: spec.Settings}
	var exact []exactStats
	for _, seed := range spec.Seeds {
		sd, err := newAnalyticSeed(g, seed, spec.Samples)
		if err != nil {
			return nil, err
		}
		for _, p := range spec.Paths {
			run := &analyticRun{spec: spec, flow: &scheduler.AnalyticFlow{Target: g, Path: p}, sd: sd, truth: map[[2]float64][]float64{},
				uncached: map[string]analyticCell{}}
			es, err := run.exactStats(ctx)
			if err != nil {
				return nil, err
			}
			exact = append(exact, es)
			for _, cache := range spec.Caches {
				for _, sched := range spec.Schedulers {
					for _, shift := range spec.Shifts {
						if log != nil {
							log(fmt.Sprintf("rflow: %s path, seed %d, schedule %s, shift %g, step cache %s", p.Name(), seed, defaultLabel(sched), shift, cache))
						}
						if err := run.block(ctx, res, sched, shift, cache); err != nil {
							return nil, err
						}
					}
				}
			}
		}
	}
	res.Sections = analyticSections(exact, res.Rows, len(spec.Paths) > 1)
	return res, nil
}

// AnalyticStart is a seed's start points: n·dim standard normal values (PCG).
func AnalyticStart(g *scheduler.GaussianMixture, seed uint64, n int) ([]float32, error) {
	sd, err := newAnalyticSeed(g, seed, n)
	return sd.start, err
}

func defaultLabel(s string) string {
	if s == "" {
		return "default"
	}
	return s
}

// analyticRun measures one (path, seed): exact solutions are cached per σ range, and the uncached
// end point of every cell is kept for the step-cache comparison.
type analyticRun struct {
	spec     AnalyticSpec
	flow     *scheduler.AnalyticFlow
	sd       analyticSeed
	truth    map[[2]float64][]float64
	uncached map[string]analyticCell
}

// analyticCell is an uncached cell's end point and model calls.
type analyticCell struct {
	x     []float32
	calls int
}

func (a *analyticRun) exact(ctx context.Context, from, to float64) ([]float64, error) {
	k := [2]float64{from, to}
	if t, ok := a.truth[k]; ok {
		return t, nil
	}
	t := make([]float64, len(a.sd.start))
	if err := a.flow.Transport(ctx, t, a.sd.start, from, to, 1e-10); err != nil {
		return nil, err
	}
	a.truth[k] = t
	return t, nil
}

// AnalyticSigmas builds the σ list of one cell.
func AnalyticSigmas(sched string, shift float64, steps int) (scheduler.Schedule, error) {
	cfg := scheduler.DefaultFlowMatchConfig()
	s, err := scheduler.BuildSchedule(scheduler.ScheduleRequest{Family: scheduler.FamilySD3, Config: cfg, Steps: steps, Scheduler: sched, Shift: shift})
	if err != nil {
		return s, fmt.Errorf("schedule %s, shift %g, %d steps: %w", defaultLabel(sched), shift, steps, err)
	}
	return s, nil
}

// block runs every sampler × steps cell of one schedule block and adds its rows and grid.
func (a *analyticRun) block(ctx context.Context, res *Result, sched string, shift float64, cache scheduler.StepCacheConfig) error {
	dim := a.flow.Target.Dim()
	title := fmt.Sprintf("%s path, schedule %s, shift %s, seed %d", a.flow.Path.Name(), defaultLabel(sched), shiftLabel(shift), a.sd.seed)
	if cache.Kind != scheduler.StepCacheOff {
		title += ", " + cache.String()
	}
	grid := Grid{Title: title}
	for _, n := range a.spec.Steps {
		grid.ColLabels = append(grid.ColLabels, fmt.Sprintf("%d steps", n))
	}
	grid.ColLabels = append(grid.ColLabels, "exact")
	for si, s := range a.spec.Samplers {
		grid.RowLabels = append(grid.RowLabels, s.Name)
		var cells []image.Image
		for _, n := range a.spec.Steps {
			row, x, err := a.cell(ctx, s, sched, shift, n, cache)
			if err != nil {
				return err
			}
			res.Rows = append(res.Rows, row)
			key := fmt.Sprintf("%s|%s|%g|%s|%d", a.flow.Path.Name(), sched, shift, s.Name, n)
			if cache.Kind == scheduler.StepCacheOff {
				a.uncached[key] = analyticCell{x: x, calls: row.Calls()}
			} else if base, ok := a.uncached[key]; ok {
				st := CacheStat{Cache: cache.String(), Cell: fmt.Sprintf("%s %d steps, %s path, seed %d", s.Name, n, a.flow.Path.Name(), a.sd.seed),
					Calls: row.Calls(), UncachedCalls: base.calls, PSNR: math.NaN()}
				if st.RMSEAdded, _, err = ErrorStats(x, base.x); err != nil {
					return err
				}
				res.Caches = append(res.Caches, st)
			}
			cells = append(cells, Scatter(widen64(x), a.sd.target, dim, a.sd.bounds, a.spec.Cell, samplerColor(si)))
		}
		if si == 0 {
			t, err := a.exact(ctx, 1, 0)
			if err != nil {
				return err
			}
			cells = append(cells, Scatter(t, a.sd.target, dim, a.sd.bounds, a.spec.Cell, color.NRGBA{0, 0, 0, 255}))
		}
		grid.Cells = append(grid.Cells, cells)
	}
	res.Blocks = append(res.Blocks, grid)
	return nil
}

func shiftLabel(s float64) string {
	if s == 0 {
		return "default"
	}
	return strconv.FormatFloat(s, 'g', -1, 64)
}

// cell runs one sampler for n steps from the seed's start points and measures it.
func (a *analyticRun) cell(ctx context.Context, s scheduler.SamplerInfo, sched string, shift float64, n int, cache scheduler.StepCacheConfig) (Row, []float32, error) {
	sch, err := AnalyticSigmas(sched, shift, n)
	if err != nil {
		return Row{}, nil, err
	}
	sig := sch.Sigmas
	x := append([]float32(nil), a.sd.start...)
	meter := NewStraightness(a.flow.Path)
	nfe := 0
	o := scheduler.DefaultOptions()
	o.Path = a.flow.Path
	o.Noise = seededNoise(scheduler.StepNoiseSeed(a.sd.seed))
	o.Callback = func(st scheduler.Step) error { nfe = st.NFE; return meter.Observe(st) }
	model := scheduler.NewCachedModel(a.flow, cache)
	start := time.Now()
	if err := s.Func(ctx, model, x, sig, o); err != nil {
		return Row{}, nil, fmt.Errorf("%s, %d steps: %w", s.Name, n, err)
	}
	row := Row{Sampler: s.Name, Scheduler: sch.Scheduler, Shift: effectiveShift(shift), Steps: n, NFE: nfe,
		Seconds: time.Since(start).Seconds(), PSNR: math.NaN(), SSIM: math.NaN(), Path: a.flow.Path.Name(), Seed: a.sd.seed,
		CFGScale: math.NaN(), StepCache: cache.String(), ModelCalls: model.Calls()}
	truth, err := a.exact(ctx, sig[0], sig[len(sig)-1])
	if err != nil {
		return row, nil, err
	}
	if row.RMSE, row.MaxAbs, err = ErrorStats(x, truth); err != nil {
		return row, nil, err
	}
	if row.Straightness, err = meter.Value(a.sd.start); err != nil {
		row.Straightness = math.NaN()
	}
	row.Wasserstein, err = SlicedWasserstein(widen64(x), a.sd.target, a.flow.Target.Dim(), a.spec.Projections, 1)
	if err != nil {
		row.Wasserstein = math.NaN() // a diverged sampler (Inf/NaN): the RMSE already says so
	}
	return row, x, nil
}

func effectiveShift(s float64) float64 {
	if s == 0 {
		return 1 // DefaultFlowMatchConfig's shift
	}
	return s
}

// seededNoise is the step noise of stochastic samplers on analytic runs (PCG, standard normal).
func seededNoise(seed uint64) scheduler.NoiseSource {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	return scheduler.NoiseFunc(func(dst []float32, _, _ float64) error {
		for j := range dst {
			dst[j] = float32(r.NormFloat64())
		}
		return nil
	})
}

func widen64(x []float32) []float64 {
	out := make([]float64, len(x))
	for j, v := range x {
		out[j] = float64(v)
	}
	return out
}

// samplerColor is row si's dot colour in the scatter grid.
func samplerColor(si int) color.NRGBA {
	palette := []color.NRGBA{{31, 119, 180, 255}, {214, 39, 40, 255}, {44, 160, 44, 255}, {148, 103, 189, 255},
		{255, 127, 14, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {23, 190, 207, 255}}
	return palette[si%len(palette)]
}
