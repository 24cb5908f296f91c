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
	"strings"

	"github.com/rflowrt/rflow/internal/report"
)

// compareResult is everything a comparison measured, ready to write.
type compareResult struct {
	analytic bool
	title    string
	command  string
	settings [][2]string
	sections []report.Section
	rows     []report.Row
	blocks   []report.Grid
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

// write puts grid.png, metrics.csv, report.md and the plots into dir.
func (r *compareResult) write(dir string, cell int) error {
	img, _ := report.RenderGrids(r.blocks, cell)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return fmt.Errorf("grid.png: %w", err)
	}
	if err := writeFile(dir, "grid.png", buf.Bytes()); err != nil {
		return err
	}
	buf.Reset()
	if err := report.WriteCSV(&buf, r.rows); err != nil {
		return err
	}
	if err := writeFile(dir, "metrics.csv", buf.Bytes()); err != nil {
		return err
	}
	errWhat := "latent RMSE against the reference"
	if r.analytic {
		errWhat = "RMSE against the exact solution"
	}
	if err := r.writePlot(dir, plotErrorName, "End-point error vs model calls", errWhat, func(x report.Row) float64 { return x.RMSE }); err != nil {
		return err
	}
	if r.analytic {
		if err := r.writePlot(dir, plotW2Name, "Distribution distance vs model calls", "sliced W₂ to exact target draws",
			func(x report.Row) float64 { return x.Wasserstein }); err != nil {
			return err
		}
	}
	doc := report.Document{Title: r.title, Command: r.command, Settings: r.settings, Sections: r.sections,
		Fits: report.FitOrders(r.rows, func(x report.Row) float64 { return x.RMSE }), FitWhat: "RMSE",
		Plots: r.plotNames(), Rows: r.rows, Analytic: r.analytic}
	buf.Reset()
	if err := doc.WriteMarkdown(&buf); err != nil {
		return err
	}
	return writeFile(dir, "report.md", buf.Bytes())
}

// writeFile writes data to dir/name through a temporary file and a rename.
func writeFile(dir, name string, data []byte) error {
	tmp, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	_, werr := tmp.Write(data)
	merr := tmp.Chmod(0o644) // CreateTemp makes 0600; these are ordinary results
	cerr := tmp.Close()
	if werr != nil || merr != nil || cerr != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", name, errors.Join(werr, merr, cerr))
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// writePlot draws metric against NFE, one line per sampler and block (geometric mean over seeds and
// prompts), solid for the linear path and dashed for cosine.
func (r *compareResult) writePlot(dir, name, title, yLabel string, metric func(report.Row) float64) error {
	data, err := report.LogLogPlot(title, "model calls (NFE)", yLabel, compareSeries(r.rows, metric), 7, 4.5)
	if err != nil {
		return err
	}
	return writeFile(dir, name, data)
}

// compareSeries groups rows into plot lines.
func compareSeries(rows []report.Row, metric func(report.Row) float64) []report.Series {
	type key struct {
		path, sched, sampler string
		shift                float64
	}
	var keys []key
	var samplers, paths, blocks []string
	acc := map[key]map[int][]float64{}
	for _, r := range rows {
		k := key{r.Path, r.Scheduler, r.Sampler, r.Shift}
		if acc[k] == nil {
			acc[k] = map[int][]float64{}
			keys = append(keys, k)
		}
		acc[k][r.NFE] = append(acc[k][r.NFE], metric(r))
		samplers = appendNew(samplers, r.Sampler)
		paths = appendNew(paths, r.Path)
		blocks = appendNew(blocks, fmt.Sprintf("%s shift %g", r.Scheduler, r.Shift))
	}
	var out []report.Series
	for _, k := range keys {
		name := k.sampler
		if len(paths) > 1 {
			name += " (" + k.path + ")"
		}
		if len(blocks) > 1 {
			name += fmt.Sprintf(" %s shift %g", k.sched, k.shift)
		}
		s := report.Series{Name: name, Color: slices.Index(samplers, k.sampler), Dashed: k.path == "cosine"}
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
