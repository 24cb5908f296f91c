package compare

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// CSVHeader is metrics.csv's header: the fixed columns first, then rflow's additions.
var CSVHeader = []string{"sampler", "scheduler", "shift", "steps", "nfe", "seconds", "rmse", "max_abs", "psnr", "ssim",
	"straightness", "path", "prompt", "seed", "wasserstein", "guidance_rule", "cfg_scale", "step_cache", "model_calls"}

// Row is one comparison cell's measurements. NaN marks a value that was not measured (PSNR and
// SSIM of analytic runs, the distribution distance of model runs): an empty CSV field, "–" in
// Markdown. PSNR is +Inf for an image identical to the reference.
type Row struct {
	Sampler, Scheduler string
	Shift              float64
	Steps, NFE         int
	// Seconds is the sampling loop's wall time (model calls included; text encoding and decoding not).
	Seconds      float64
	RMSE, MaxAbs float64 // end-point latent error against the reference
	PSNR, SSIM   float64 // decoded image against the reference image
	Straightness float64
	Path, Prompt string
	Seed         uint64
	Wasserstein  float64 // sliced W₂ of the samples to exact target draws
	// GuidanceRule and CFGScale are the guidance axis ("cfg" and the scale used; analytic runs: "" and
	// NaN); StepCache the step cache ("off" for none).
	GuidanceRule string
	CFGScale     float64
	StepCache    string
	// ModelCalls is the calls that ran the model; below NFE when a step cache filled some.
	ModelCalls int
}

// Calls is the cell's cost: the model calls that ran (NFE when nothing was cached).
func (r Row) Calls() int {
	if r.ModelCalls > 0 {
		return r.ModelCalls
	}
	return r.NFE
}

// Config names the cell's configuration without its step count, seed or prompt: what a budget table
// compares.
func (r Row) Config() string {
	s := r.Sampler
	if r.Scheduler != "" {
		s += " / " + r.Scheduler
	}
	s += " / shift " + strconv.FormatFloat(r.Shift, 'g', -1, 64)
	if r.Path != "" && r.Path != "linear" {
		s += " / " + r.Path
	}
	if r.GuidanceRule != "" {
		s += " / " + r.GuidanceRule
		if !math.IsNaN(r.CFGScale) {
			s += " " + strconv.FormatFloat(r.CFGScale, 'g', -1, 64)
		}
	}
	if r.StepCache != "" && r.StepCache != "off" {
		s += " / " + r.StepCache
	}
	return s
}

// fields formats r in CSVHeader order.
func (r Row) fields() []string {
	return []string{r.Sampler, r.Scheduler, num(r.Shift), strconv.Itoa(r.Steps), strconv.Itoa(r.NFE), num(r.Seconds),
		num(r.RMSE), num(r.MaxAbs), num(r.PSNR), num(r.SSIM), num(r.Straightness), r.Path, r.Prompt,
		strconv.FormatUint(r.Seed, 10), num(r.Wasserstein), r.GuidanceRule, num(r.CFGScale), r.StepCache, strconv.Itoa(r.Calls())}
}

// num formats v with 6 significant digits; NaN is "", ±Inf "inf"/"-inf".
func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return ""
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

// WriteCSV writes the header and one line per row.
func WriteCSV(w io.Writer, rows []Row) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return fmt.Errorf("compare: metrics.csv: %w", err)
	}
	for _, r := range rows {
		if err := cw.Write(r.fields()); err != nil {
			return fmt.Errorf("compare: metrics.csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("compare: metrics.csv: %w", err)
	}
	return nil
}

// OrderFit is the fitted convergence order of one sampler in one block (path, scheduler, shift).
type OrderFit struct {
	Path, Scheduler, Sampler string
	Shift                    float64
	MinSteps, MaxSteps       int
	MinNFE, MaxNFE           int
	Fit                      LogLogFit
	Err                      error // why no fit (e.g. a single step count)
}

// FitOrders fits log(metric) against log(NFE) per (path, scheduler, shift, sampler), over every
// row of the group (all step counts, seeds and prompts), by least squares. Groups keep the order of
// their first row.
func FitOrders(rows []Row, metric func(Row) float64) []OrderFit {
	type key struct {
		path, sched, sampler string
		shift                float64
	}
	var keys []key
	groups := map[key][]Row{}
	for _, r := range rows {
		k := key{r.Path, r.Scheduler, r.Sampler, r.Shift}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], r)
	}
	fits := make([]OrderFit, 0, len(keys))
	for _, k := range keys {
		g := groups[k]
		f := OrderFit{Path: k.path, Scheduler: k.sched, Sampler: k.sampler, Shift: k.shift,
			MinSteps: math.MaxInt, MinNFE: math.MaxInt}
		var nfe, errs []float64
		for _, r := range g {
			f.MinSteps, f.MaxSteps = min(f.MinSteps, r.Steps), max(f.MaxSteps, r.Steps)
			f.MinNFE, f.MaxNFE = min(f.MinNFE, r.NFE), max(f.MaxNFE, r.NFE)
			nfe, errs = append(nfe, float64(r.NFE)), append(errs, metric(r))
		}
		f.Fit, f.Err = FitLogLog(nfe, errs)
		fits = append(fits, f)
	}
	return fits
}

// StepsList returns the distinct step counts of rows, ascending.
func StepsList(rows []Row) []int {
	var s []int
	for _, r := range rows {
		if !slices.Contains(s, r.Steps) {
			s = append(s, r.Steps)
		}
	}
	slices.Sort(s)
	return s
}

// BudgetWinner is the best configuration within one budget of model calls.
type BudgetWinner struct {
	Budget            int     // model calls allowed
	Winner            string  // configuration and steps of the best cell
	Calls             int     // the winner's calls
	Error             float64 // its error (geometric mean over seeds and prompts)
	RunnerUp          string  // the best cell of another configuration ("" if none)
	RunnerUpError     float64
	DefaultError      float64 // the first configuration's best cell within the budget (NaN if none)
	DefaultConfigName string
}

// BudgetWinners finds, for every distinct call count in rows, the cell (configuration and steps) with
// the least metric among cells that cost at most that many model calls, the best cell of any other
// configuration, and the first configuration's best (the baseline a user starts from). Cells average
// their seeds and prompts geometrically.
func BudgetWinners(rows []Row, metric func(Row) float64) []BudgetWinner {
	type cell struct {
		config string
		steps  int
		calls  int
		vals   []float64
	}
	var cells []*cell
	index := map[string]*cell{}
	var configs []string
	for _, r := range rows {
		k := r.Config() + "\x00" + strconv.Itoa(r.Steps)
		c := index[k]
		if c == nil {
			c = &cell{config: r.Config(), steps: r.Steps}
			index[k] = c
			cells = append(cells, c)
			if !slices.Contains(configs, c.config) {
				configs = append(configs, c.config)
			}
		}
		c.calls = max(c.calls, r.Calls())
		c.vals = append(c.vals, metric(r))
	}
	var budgets []int
	for _, c := range cells {
		if !slices.Contains(budgets, c.calls) {
			budgets = append(budgets, c.calls)
		}
	}
	slices.Sort(budgets)
	var out []BudgetWinner
	for _, b := range budgets {
		best := map[string]*cell{}
		bestErr := map[string]float64{}
		for _, c := range cells {
			e := GeoMean(c.vals)
			if c.calls > b || math.IsNaN(e) {
				continue
			}
			if cur, ok := bestErr[c.config]; !ok || e < cur {
				best[c.config], bestErr[c.config] = c, e
			}
		}
		if len(best) == 0 {
			continue
		}
		var order []string
		for _, cfg := range configs {
			if best[cfg] != nil {
				order = append(order, cfg)
			}
		}
		slices.SortStableFunc(order, func(a, b string) int {
			switch {
			case bestErr[a] < bestErr[b]:
				return -1
			case bestErr[a] > bestErr[b]:
				return 1
			}
			return 0
		})
		w := best[order[0]]
		bw := BudgetWinner{Budget: b, Winner: fmt.Sprintf("%s, %d steps", w.config, w.steps), Calls: w.calls,
			Error: bestErr[order[0]], RunnerUpError: math.NaN(), DefaultError: math.NaN(), DefaultConfigName: configs[0]}
		if len(order) > 1 {
			r := best[order[1]]
			bw.RunnerUp, bw.RunnerUpError = fmt.Sprintf("%s, %d steps", r.config, r.steps), bestErr[order[1]]
		}
		if d, ok := bestErr[configs[0]]; ok {
			bw.DefaultError = d
		}
		out = append(out, bw)
	}
	return out
}

// BudgetTable renders BudgetWinners as Markdown: winner, runner-up and the first configuration, with
// how much lower the winner's error is.
func BudgetTable(ws []BudgetWinner, what string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "For each budget of model calls, the cell with the lowest %s among the cells that cost at most that many calls (seeds and prompts averaged geometrically); \"vs runner-up\" compares it with the best cell of any other configuration, \"vs baseline\" with the best cell of the first configuration (%s).\n\n",
		what, cellText(firstOr(ws)))
	b.WriteString("| budget (calls) | winner | its calls | error | runner-up | error | winner vs runner-up | baseline error | winner vs baseline |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, w := range ws {
		fmt.Fprintf(&b, "| %d | %s | %d | %s | %s | %s | %s | %s | %s |\n", w.Budget, cellText(w.Winner), w.Calls, fmtNum(w.Error, 3),
			cellText(orDash(w.RunnerUp)), fmtNum(w.RunnerUpError, 3), lower(w.Error, w.RunnerUpError), fmtNum(w.DefaultError, 3), lower(w.Error, w.DefaultError))
	}
	return b.String()
}

func firstOr(ws []BudgetWinner) string {
	if len(ws) == 0 {
		return "none"
	}
	return ws[0].DefaultConfigName
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// lower says how much lower a is than b, in per cent ("–" when undefined, "same" when equal).
func lower(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || !(b > 0) {
		return "–"
	}
	if a == b {
		return "same"
	}
	return fmt.Sprintf("%.0f %% lower", 100*(1-a/b))
}
