package main

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

	"github.com/rflowrt/rflow/compare"
)

// compareResult is everything a comparison measured, ready to write.
type compareResult struct {
	analytic bool
	title    string
	command  string
	settings [][2]string
	sections []compare.Section
	rows     []compare.Row
	blocks   []compare.Grid
	caches   []cacheStat // cached cells against the same cell uncached
}

// cacheStat is one cached cell against the same cell without a cache.
type cacheStat struct {
	cache, cell           string
	calls, uncachedCalls  int
	psnr, rmseAdded, rmse float64 // psnr: decoded image vs uncached (NaN on analytic runs)
}

// cacheSection tabulates the step caches: calls saved and the error they add against the uncached
// cell (PSNR of the decoded image for models, end-point RMSE for both).
func cacheSection(stats []cacheStat, analytic bool) string {
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
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %.0f %% | %.3g |", c.cache, c.cell, c.calls, c.uncachedCalls,
			100*(1-float64(c.calls)/float64(c.uncachedCalls)), c.rmseAdded)
		if !analytic {
			fmt.Fprintf(&b, " %.1f dB |", c.psnr)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// Output file names.
const (
	plotErrorName = "error_vs_nfe.png"
	plotW2Name    = "wasserstein_vs_nfe.png"
)

func (r *compareResult) plotNames() []string {
	if r.analytic {
		return []string{plotErrorName, plotW2Name}
	}
	return []string{plotErrorName}
}

// outputFile is one file of a comparison, rendered in memory.
type outputFile struct {
	name string
	data []byte
}

// write renders grid.png, metrics.csv, the plots and report.md, and only then puts them into dir, all
// or none: a failure anywhere leaves none of this run's files behind.
func (r *compareResult) write(dir string, cell int) error {
	files, err := r.render(cell)
	if err != nil {
		return err
	}
	return writeAll(dir, files)
}

// render builds every output file's bytes.
func (r *compareResult) render(cell int) ([]outputFile, error) {
	var files []outputFile
	img, _ := compare.RenderGrids(r.blocks, cell)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("grid.png: %w", err)
	}
	files = append(files, outputFile{"grid.png", bytes.Clone(buf.Bytes())})
	buf.Reset()
	if err := compare.WriteCSV(&buf, r.rows); err != nil {
		return nil, err
	}
	files = append(files, outputFile{"metrics.csv", bytes.Clone(buf.Bytes())})
	errWhat := "latent RMSE against the reference"
	if r.analytic {
		errWhat = "RMSE against the exact solution"
	}
	plot, err := r.plot("End-point error vs model calls", errWhat, func(x compare.Row) float64 { return x.RMSE })
	if err != nil {
		return nil, err
	}
	files = append(files, outputFile{plotErrorName, plot})
	if r.analytic {
		plot, err := r.plot("Distribution distance vs model calls", "sliced W₂ to exact target draws",
			func(x compare.Row) float64 { return x.Wasserstein })
		if err != nil {
			return nil, err
		}
		files = append(files, outputFile{plotW2Name, plot})
	}
	sections := r.sections
	if len(r.caches) > 0 {
		sections = append(sections, compare.Section{Heading: "Step caching", Body: cacheSection(r.caches, r.analytic)})
	}
	doc := compare.Document{Title: r.title, Command: r.command, Settings: r.settings, Sections: sections,
		Budgets: compare.BudgetWinners(r.rows, func(x compare.Row) float64 { return x.RMSE }), BudgetWhat: errWhat,
		Fits: compare.FitOrders(r.rows, func(x compare.Row) float64 { return x.RMSE }), FitWhat: "RMSE",
		Plots: r.plotNames(), Rows: r.rows, Analytic: r.analytic}
	buf.Reset()
	if err := doc.WriteMarkdown(&buf); err != nil {
		return nil, err
	}
	return append(files, outputFile{"report.md", bytes.Clone(buf.Bytes())}), nil
}

// writeAll writes every file into dir through temporary files, renamed into place only once all of
// them are written; if a rename fails, the files already renamed are removed again.
func writeAll(dir string, files []outputFile) (err error) {
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
		tmp, err := writeTemp(dir, f.name, f.data)
		if err != nil {
			return err
		}
		temps = append(temps, tmp)
	}
	for i, f := range files {
		dst := filepath.Join(dir, f.name)
		if err := os.Rename(temps[i], dst); err != nil {
			return fmt.Errorf("write %s: %w", f.name, err)
		}
		placed = append(placed, dst)
	}
	return nil
}

// writeTemp writes data to a new temporary file in dir named after name and returns its path.
func writeTemp(dir, name string, data []byte) (string, error) {
	tmp, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", name, err)
	}
	_, werr := tmp.Write(data)
	merr := tmp.Chmod(0o644) // CreateTemp makes 0600; these are ordinary results
	cerr := tmp.Close()
	if werr != nil || merr != nil || cerr != nil {
		_ = os.Remove(tmp.Name())
		return "", fmt.Errorf("write %s: %w", name, errors.Join(werr, merr, cerr))
	}
	return tmp.Name(), nil
}

// plot draws metric against NFE, one line per sampler and block (geometric mean over seeds and
// prompts), solid for the linear path and dashed for cosine.
func (r *compareResult) plot(title, yLabel string, metric func(compare.Row) float64) ([]byte, error) {
	return compare.LogLogPlot(title, "model calls (NFE)", yLabel, compareSeries(r.rows, metric), 7, 4.5)
}

// compareSeries groups rows into plot lines.
func compareSeries(rows []compare.Row, metric func(compare.Row) float64) []compare.Series {
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
	var out []compare.Series
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
		s := compare.Series{Name: name, Color: color, Dashed: k.path == "cosine"}
		var nfes []int
		for n := range acc[k] {
			nfes = append(nfes, n)
		}
		slices.Sort(nfes)
		for _, n := range nfes {
			s.X, s.Y = append(s.X, float64(n)), append(s.Y, geoMean(acc[k][n]))
		}
		out = append(out, s)
	}
	return out
}

// variantName is a row's guidance and cache setting for legends ("" for plain CFG without a cache).
func variantName(r compare.Row) string {
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

// geoMean is the geometric mean of the positive values (NaN if none).
func geoMean(v []float64) float64 {
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

// commandLine renders the invocation for report.md, quoting what needs it.
func commandLine(args []string) string {
	parts := []string{"rflow", "compare"}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'$\\|&;<>()*?") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}
