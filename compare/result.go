package compare

// A comparison run's results and their rendering into the output folder.

import (
	"bytes"
	"errors"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Result is everything a comparison measured, ready to write.
type Result struct {
	Analytic bool // the analytic flow (W₂ instead of PSNR/SSIM)
	Title    string
	Command  string // the command line that produced it, for report.md
	Settings [][2]string
	Sections []Section
	Rows     []Row
	Blocks   []Grid
	Caches   []CacheStat // cached cells against the same cell uncached
}

// CacheStat is one cached cell against the same cell without a cache.
type CacheStat struct {
	Cache, Cell          string
	Calls, UncachedCalls int
	PSNR, RMSEAdded      float64 // PSNR: decoded image vs uncached (NaN on analytic runs)
}

// cacheSection tabulates the step caches: calls saved and the error they add against the uncached
// cell (PSNR of the decoded image for models, end-point RMSE for both).
func cacheSection(stats []CacheStat, analytic bool) string {
	var b strings.Builder
	b.WriteString("Each cached cell against the same cell run without a cache (same sampler, steps, schedule, guidance, prompt and seed): the share of model calls the cache saved, the RMSE of its end point from the uncached end point")
	if !analytic {
		b.WriteString(" and the PSNR of its image against the uncached image")
	}
	b.WriteString(".\n\n| step cache | cell | model calls | uncached | saved | RMSE vs uncached |")
	if !analytic {
		b.WriteString(" PSNR vs uncached |")
	}
	b.WriteString("\n|---|---|---|---|---|---|")
	if !analytic {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, c := range stats {
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %.0f %% | %.3g |", c.Cache, c.Cell, c.Calls, c.UncachedCalls,
			100*(1-float64(c.Calls)/float64(c.UncachedCalls)), c.RMSEAdded)
		if !analytic {
			fmt.Fprintf(&b, " %.1f dB |", c.PSNR)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// Output file names.
const (
	PlotErrorName = "error_vs_nfe.png"
	PlotW2Name    = "wasserstein_vs_nfe.png"
)

func (r *Result) PlotNames() []string {
	if r.Analytic {
		return []string{PlotErrorName, PlotW2Name}
	}
	return []string{PlotErrorName}
}

// File is one file of a comparison, rendered in memory.
type File struct {
	Name string
	Data []byte
}

// Write renders grid.png, metrics.csv, the plots and report.md, and only then puts them into dir, all
// or none: a failure anywhere leaves none of this run's files behind.
func (r *Result) Write(dir string, cell int) error {
	files, err := r.Render(cell)
	if err != nil {
		return err
	}
	return WriteAll(dir, files)
}

// Render builds every output file's bytes.
func (r *Result) Render(cell int) ([]File, error) {
	var files []File
	img, _ := RenderGrids(r.Blocks, cell)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("compare: grid.png: %w", err)
	}
	files = append(files, File{"grid.png", bytes.Clone(buf.Bytes())})
	buf.Reset()
	if err := WriteCSV(&buf, r.Rows); err != nil {
		return nil, err
	}
	files = append(files, File{"metrics.csv", bytes.Clone(buf.Bytes())})
	errWhat := "latent RMSE against the reference"
	if r.Analytic {
		errWhat = "RMSE against the exact solution"
	}
	plot, err := r.plot("End-point error vs model calls", errWhat, func(x Row) float64 { return x.RMSE })
	if err != nil {
		return nil, err
	}
	files = append(files, File{PlotErrorName, plot})
	if r.Analytic {
		plot, err := r.plot("Distribution distance vs model calls", "sliced W₂ to exact target draws",
			func(x Row) float64 { return x.Wasserstein })
		if err != nil {
			return nil, err
		}
		files = append(files, File{PlotW2Name, plot})
	}
	sections := r.Sections
	if len(r.Caches) > 0 {
		sections = append(sections, Section{Heading: "Step caching", Body: cacheSection(r.Caches, r.Analytic)})
	}
	doc := Document{Title: r.Title, Command: r.Command, Settings: r.Settings, Sections: sections,
		Budgets: BudgetWinners(r.Rows, func(x Row) float64 { return x.RMSE }), BudgetWhat: errWhat,
		Fits: FitOrders(r.Rows, func(x Row) float64 { return x.RMSE }), FitWhat: "RMSE",
		Plots: r.PlotNames(), Rows: r.Rows, Analytic: r.Analytic}
	buf.Reset()
	if err := doc.WriteMarkdown(&buf); err != nil {
		return nil, err
	}
	return append(files, File{"report.md", bytes.Clone(buf.Bytes())}), nil
}

// WriteAll writes every file into dir through temporary files, renamed into place only once all of
// them are written; if a rename fails, the files already renamed are removed again.
func WriteAll(dir string, files []File) (err error) {
	temps := make([]string, 0, len(files))
	var placed []string
	defer func() {
		if err == nil {
			return
		}
		for _, t := range temps {
			_ = os.Remove(t)
		}
		for _, p := range placed {
			_ = os.Remove(p)
		}
	}()
	for _, f := range files {
		tmp, err := writeTemp(dir, f.Name, f.Data)
		if err != nil {
			return err
		}
		temps = append(temps, tmp)
	}
	for i, f := range files {
		dst := filepath.Join(dir, f.Name)
		if err := os.Rename(temps[i], dst); err != nil {
			return fmt.Errorf("compare: write %s: %w", f.Name, err)
		}
		placed = append(placed, dst)
	}
	return nil
}

// writeTemp writes data to a new temporary file in dir named after name and returns its path.
func writeTemp(dir, name string, data []byte) (string, error) {
	tmp, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return "", fmt.Errorf("compare: write %s: %w", name, err)
	}
	_, werr := tmp.Write(data)
	merr := tmp.Chmod(0o644) // CreateTemp makes 0600; these are ordinary results
	cerr := tmp.Close()
	if werr != nil || merr != nil || cerr != nil {
		_ = os.Remove(tmp.Name())
		return "", fmt.Errorf("compare: write %s: %w", name, errors.Join(werr, merr, cerr))
	}
	return tmp.Name(), nil
}

// plot draws metric against NFE, one line per sampler and block (geometric mean over seeds and
// prompts), solid for the linear path and dashed for cosine.
func (r *Result) plot(title, yLabel string, metric func(Row) float64) ([]byte, error) {
	return LogLogPlot(title, "model calls (NFE)", yLabel, plotSeries(r.Rows, metric), 7, 4.5)
}

// plotSeries groups rows into plot lines.
func plotSeries(rows []Row, metric func(Row) float64) []Series {
	type key struct {
		path, sched, sampler, variant string
		shift                         float64
	}
	var keys []key
	var samplers, paths, blocks, variants []string
	acc := map[key]map[int][]float64{}
	for _, r := range rows {
		v := strings.TrimPrefix(variantName(r), " ")
		k := key{r.Path, r.Scheduler, r.Sampler, v, r.Shift}
		if acc[k] == nil {
			acc[k] = map[int][]float64{}
			keys = append(keys, k)
		}
		acc[k][r.Calls()] = append(acc[k][r.Calls()], metric(r))
		samplers = appendNew(samplers, r.Sampler)
		paths = appendNew(paths, r.Path)
		blocks = appendNew(blocks, fmt.Sprintf("%s shift %g", r.Scheduler, r.Shift))
		variants = appendNew(variants, v)
	}
	var out []Series
	for i, k := range keys {
		name := k.sampler
		if len(paths) > 1 {
			name += " (" + k.path + ")"
		}
		if len(blocks) > 1 {
			name += fmt.Sprintf(" %s shift %g", k.sched, k.shift)
		}
		if len(variants) > 1 && k.variant != "" {
			name += " " + k.variant
		}
		color := slices.Index(samplers, k.sampler) // one colour per sampler, unless blocks or variants split it
		if len(blocks) > 1 || len(variants) > 1 {
			color = i
		}
		s := Series{Name: name, Color: color, Dashed: k.path == "cosine"}
		var nfes []int
		for n := range acc[k] {
			nfes = append(nfes, n)
		}
		slices.Sort(nfes)
		for _, n := range nfes {
			s.X, s.Y = append(s.X, float64(n)), append(s.Y, GeoMean(acc[k][n]))
		}
		out = append(out, s)
	}
	return out
}

// variantName is a row's guidance and cache setting for legends ("" for plain CFG without a cache).
func variantName(r Row) string {
	var parts []string
	if r.GuidanceRule != "" && r.GuidanceRule != "cfg" {
		parts = append(parts, r.GuidanceRule)
	}
	if r.GuidanceRule != "" && !math.IsNaN(r.CFGScale) {
		parts = append(parts, "cfg "+strconv.FormatFloat(r.CFGScale, 'g', -1, 64))
	}
	if r.StepCache != "" && r.StepCache != "off" {
		parts = append(parts, strings.SplitN(r.StepCache, ",", 2)[0])
	}
	return strings.Join(parts, " ")
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// GeoMean is the geometric mean of the positive finite values (NaN if none).
func GeoMean(v []float64) float64 {
	sum, n := 0.0, 0
	for _, x := range v {
		if x > 0 && !math.IsInf(x, 0) {
			sum += math.Log(x)
			n++
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return math.Exp(sum / float64(n))
}
