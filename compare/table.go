package compare

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
)

// CSVHeader is metrics.csv's header: the fixed columns first, then rflow's additions.
var CSVHeader = []string{"sampler", "scheduler", "shift", "steps", "nfe", "seconds", "rmse", "max_abs", "psnr", "ssim",
	"straightness", "path", "prompt", "seed", "wasserstein"}

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
}

// fields formats r in CSVHeader order.
func (r Row) fields() []string {
	return []string{r.Sampler, r.Scheduler, num(r.Shift), strconv.Itoa(r.Steps), strconv.Itoa(r.NFE), num(r.Seconds),
		num(r.RMSE), num(r.MaxAbs), num(r.PSNR), num(r.SSIM), num(r.Straightness), r.Path, r.Prompt,
		strconv.FormatUint(r.Seed, 10), num(r.Wasserstein)}
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
		return fmt.Errorf("report: metrics.csv: %w", err)
	}
	for _, r := range rows {
		if err := cw.Write(r.fields()); err != nil {
			return fmt.Errorf("report: metrics.csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("report: metrics.csv: %w", err)
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
