package main

import (
	"context"
	"encoding/csv"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/compare"
	"github.com/rflowrt/rflow/internal/ort/orttest"
	"github.com/rflowrt/rflow/pipeline"
	"github.com/rflowrt/rflow/scheduler"
)

// readCSV returns metrics.csv's records.
func readCSV(t *testing.T, dir string) [][]string {
	t.Helper()
	fh, err := os.Open(filepath.Join(dir, "metrics.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	recs, err := csv.NewReader(fh).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func checkPNG(t *testing.T, path string) (w, h int) {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	img, err := png.Decode(fh)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img.Bounds().Dx(), img.Bounds().Dy()
}

// fittedOrders reads "| path | scheduler | shift | sampler | … | order |" rows from report.md.
func fittedOrders(t *testing.T, md string) map[string]float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^\| (\w+) \| \w+ \| [\d.]+ \| (\w+) \| \d+–\d+ \| \d+–\d+ \| ([\d.-]+) \|`)
	out := map[string]float64{}
	for _, m := range re.FindAllStringSubmatch(md, -1) {
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatal(err)
		}
		out[m[1]+"/"+m[2]] = v
	}
	return out
}

func TestCompareAnalytic(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := runCLI("compare", "--analytic", "gmm", "--samplers", "euler,heun,dpmpp_2m", "--steps", "8,16,32", "--out", dir, "-q")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	recs := readCSV(t, dir)
	if got := strings.Join(recs[0], ","); got != strings.Join(compare.CSVHeader, ",") ||
		!strings.HasPrefix(got, "sampler,scheduler,shift,steps,nfe,seconds,rmse,max_abs,psnr,ssim,straightness") {
		t.Errorf("header %q", got)
	}
	if len(recs) != 1+9 {
		t.Errorf("%d rows, want 9", len(recs)-1)
	}
	w, h := checkPNG(t, filepath.Join(dir, "grid.png"))
	if w < 4*128 || h < 3*128 {
		t.Errorf("grid.png is %dx%d, want at least 4×3 cells of 128", w, h)
	}
	checkPNG(t, filepath.Join(dir, "error_vs_nfe.png"))
	checkPNG(t, filepath.Join(dir, "wasserstein_vs_nfe.png"))
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	orders := fittedOrders(t, string(md))
	t.Logf("fitted orders: %v", orders)
	if o := orders["linear/euler"]; o < 0.85 || o > 1.15 {
		t.Errorf("euler order %.2f, want ≈ 1", o)
	}
	if o := orders["linear/heun"]; o < 1.6 || o > 2.3 {
		t.Errorf("heun order %.2f, want ≈ 2", o)
	}
	// refuses to overwrite without --overwrite
	if code, _, errOut := runCLI("compare", "--analytic", "gmm", "--steps", "4", "--out", dir); code != 1 || !strings.Contains(errOut, "--overwrite") {
		t.Errorf("second run into the same folder: exit %d, %q", code, errOut)
	}
}

func TestCompareAnalyticBothPaths(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := runCLI("compare", "--analytic", "gmm:3", "--path", "both", "--samplers", "euler", "--steps", "4,8",
		"--samples", "300", "--out", dir, "-q")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	recs := readCSV(t, dir)
	paths := map[string]int{}
	for _, r := range recs[1:] {
		paths[r[11]]++
		if r[8] != "" || r[9] != "" || r[14] == "" {
			t.Errorf("analytic row %v: want empty psnr/ssim and a wasserstein value", r)
		}
	}
	if paths["linear"] != 2 || paths["cosine"] != 2 {
		t.Errorf("rows per path %v, want 2 each", paths)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	if !strings.Contains(string(md), "Rectified flow (linear path) vs flow matching (cosine path)") {
		t.Error("report.md lacks the path comparison")
	}
}

func TestCompareUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"compare", "--analytic", "gmm"},                                             // no --out
		{"compare", "--analytic", "gmx", "--out", t.TempDir()},                       // bad analytic name
		{"compare", "--analytic", "gmm", "--samplers", "nope", "--out", t.TempDir()}, // bad sampler
		{"compare", "--analytic", "gmm", "--steps", "0", "--out", t.TempDir()},
		{"compare", "--out", t.TempDir()}, // model run without a prompt
		{"compare", "--analytic", "gmm", "--path", "curvy", "--out", t.TempDir()},
	} {
		code, _, errOut := runCLI(args...)
		if code == 0 || errOut == "" {
			t.Errorf("%v: exit %d, stderr %q; want a usage error", args, code, errOut)
		}
	}
}

func TestCompareDemoModel(t *testing.T) {
	lib := needORT(t)
	dir := t.TempDir()
	code, _, errOut := runCLI("compare", "--ort-lib", lib, "-m", "demo-sd3", "-p", "a green star on a black background",
		"-W", "64", "-H", "64", "--samplers", "euler,heun", "--steps", "4,8", "--reference", "heun:16", "--threads", "1", "--out", dir, "-q")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	recs := readCSV(t, dir)
	if len(recs) != 5 {
		t.Fatalf("%d rows, want 4", len(recs)-1)
	}
	for _, r := range recs[1:] {
		psnr, err1 := strconv.ParseFloat(r[8], 64)
		ssim, err2 := strconv.ParseFloat(r[9], 64)
		s, err3 := strconv.ParseFloat(r[10], 64)
		if err1 != nil || err2 != nil || err3 != nil || psnr < 10 || ssim < 0.3 || ssim > 1 || s < 0 {
			t.Errorf("row %v: want finite PSNR ≥ 10, SSIM in (0.3, 1], straightness ≥ 0", r)
		}
	}
	if recs[3][4] != "7" { // heun, 4 steps: 2·4 − 1 model calls
		t.Errorf("heun 4 steps NFE %s, want 7", recs[3][4])
	}
	w, _ := checkPNG(t, filepath.Join(dir, "grid.png"))
	if w < 3*128 {
		t.Errorf("grid.png width %d, want 3 cells (2 steps + reference)", w)
	}
	checkPNG(t, filepath.Join(dir, "error_vs_nfe.png"))
}

// TestOnStepReports checks what compare relies on: Request.OnStep sees every step in order, with
// decreasing σ, the x0 prediction and a growing model-call count.
func TestOnStepReports(t *testing.T) {
	lib := needORT(t)
	if err := (&ortFlags{lib: lib}).init(); err != nil {
		t.Fatal(err)
	}
	m, err := pipeline.OpenDemo("demo-sd3")
	if err != nil {
		t.Fatal(err)
	}
	p := pipeline.New(m, pipeline.Options{Session: orttest.Options()})
	defer p.Close()
	var steps []scheduler.Step
	r := pipeline.Request{Prompt: "a red circle", Width: 32, Height: 32, Steps: 5, Sampler: "heun", Seed: 3,
		OnStep: func(s scheduler.Step) {
			s.X, s.Denoised = append([]float32(nil), s.X...), append([]float32(nil), s.Denoised...)
			steps = append(steps, s)
		}}
	res, err := p.Generate(context.Background(), r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 5 {
		t.Fatalf("%d OnStep calls, want 5", len(steps))
	}
	for i, s := range steps {
		if s.Index != i || s.Total != 5 || !(s.SigmaNext < s.Sigma) || s.Sigma != res.Settings.Sigmas[i] || len(s.Denoised) != len(s.X) {
			t.Errorf("step %d: %+v", i, s)
		}
		if i > 0 && !(s.NFE > steps[i-1].NFE) {
			t.Errorf("step %d: NFE %d did not grow", i, s.NFE)
		}
	}
	if steps[4].NFE != 9 || steps[4].SigmaNext != 0 {
		t.Errorf("last step NFE %d σ_next %v, want 9 and 0", steps[4].NFE, steps[4].SigmaNext)
	}
	if _, m, _ := compare.ErrorStats(steps[4].X, res.Latents); m != 0 {
		t.Errorf("the last step's X differs from the result latents by %v", m)
	}
}

// A one-cell grid (one sampler, one step count) plots a single point per line: it used to panic in
// gonum's log ticks after grid.png and metrics.csv were written, so the rerun refused to start.
func TestCompareSingleStepCount(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := runCLI("compare", "--analytic", "gmm", "--samplers", "euler", "--steps", "8", "--samples", "200", "--out", dir, "-q")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, name := range []string{"grid.png", "error_vs_nfe.png", "wasserstein_vs_nfe.png"} {
		checkPNG(t, filepath.Join(dir, name))
	}
	if recs := readCSV(t, dir); len(recs) != 2 {
		t.Errorf("%d rows, want 1", len(recs)-1)
	}
}

// When writing the results fails, compare leaves none of its files behind (a rerun would refuse to
// start on them without --overwrite) and no temporary files either.
func TestCompareWriteFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	// report.md is a non-empty folder: every other output can be written, that one cannot.
	if err := os.MkdirAll(filepath.Join(dir, "report.md", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI("compare", "--analytic", "gmm", "--samplers", "euler", "--steps", "4,8", "--samples", "200",
		"--out", dir, "--overwrite", "-q")
	if code != 1 || !strings.Contains(errOut, "report.md") {
		t.Fatalf("exit %d, stderr %q; want a failure naming report.md", code, errOut)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "report.md" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// An --out folder that cannot be written is refused before any run (it used to be found when the
// results were written).
func TestCompareOutCheckedFirst(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("uses /proc as a folder nobody can write in")
	}
	code, _, errOut := runCLI("compare", "--ort-lib", "/nonexistent/lib.so", "-m", "/nonexistent-model", "-p", "a cat", "--out", "/proc")
	if code != 1 || !strings.Contains(errOut, "cannot write in /proc") || strings.Contains(errOut, "nonexistent") {
		t.Errorf("exit %d, stderr %q; want exit 1 about --out before the library or model", code, errOut)
	}
}

// TestCompareOptimizeSchedule runs --optimize-schedule on the analytic flow: it prints replay flags,
// writes the preset and report.md, and refuses more than one step count.
func TestCompareOptimizeSchedule(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runCLI("compare", "--analytic", "gmm", "--optimize-schedule", "--samplers", "heun", "--steps", "8",
		"--samples", "300", "--held-out-seeds", "7,8", "--out", dir, "-q")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.HasPrefix(out, "--sampler heun --sigmas 1,") || !strings.Contains(out, "--sigmas-raw") {
		t.Errorf("stdout %q, want the replay flags", out)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil || !strings.Contains(string(md), "| 7 |") || !strings.Contains(string(md), "than the default's; it is better on") {
		t.Errorf("report.md (%v):\n%s", err, md)
	}
	if _, err := os.Stat(filepath.Join(dir, presetName)); err != nil {
		t.Error(err)
	}
	for _, args := range [][]string{
		{"compare", "--analytic", "gmm", "--optimize-schedule", "--steps", "4,8", "--out", t.TempDir()},
		{"compare", "--analytic", "gmm", "--optimize-schedule", "--steps", "8", "--seeds", "7", "--held-out-seeds", "7", "--out", t.TempDir()},
		{"compare", "--analytic", "gmm", "--optimize-schedule", "--samplers", "euler_ancestral", "--steps", "8", "--out", t.TempDir()},
	} {
		if code, _, errOut := runCLI(args...); code == 0 || errOut == "" {
			t.Errorf("%v: exit %d, want a usage error", args, code)
		}
	}
}

// TestCompareAxes: a step-cache axis on the analytic flow adds the uncached baseline, fills the new
// metrics.csv columns, and report.md says which cell wins at each budget and what the caches saved;
// guidance axes need a model.
func TestCompareAxes(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := runCLI("compare", "--analytic", "gmm", "--samplers", "euler", "--steps", "8,28", "--step-caches", "taylor:threshold=0.2,warmup=2",
		"--samples", "300", "--out", dir, "-q")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	recs := readCSV(t, dir)
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	caches := map[string]int{}
	for _, r := range recs[1:] {
		caches[r[col["step_cache"]]]++
		calls, _ := strconv.Atoi(r[col["model_calls"]])
		nfe, _ := strconv.Atoi(r[col["nfe"]])
		if calls < 1 || calls > nfe {
			t.Errorf("row %v: model_calls %d, nfe %d", r, calls, nfe)
		}
	}
	if caches["off"] != 2 || caches["taylor:threshold=0.2,warmup=2,max-skip=3"] != 2 {
		t.Errorf("rows per cache %v, want 2 uncached and 2 taylor", caches)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	for _, want := range []string{"## Which cell wins at each budget", "## Step caching", "| taylor:threshold=0.2,warmup=2,max-skip=3 | euler 28 steps"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	if code, _, _ := runCLI("compare", "--analytic", "gmm", "--guidance-rules", "apg", "--out", t.TempDir()); code == 0 {
		t.Error("--guidance-rules on the analytic flow was accepted")
	}
	if got := splitSpecs("cfg,apg:eta=0,norm-threshold=5,cfg++"); strings.Join(got, "|") != "cfg|apg:eta=0,norm-threshold=5|cfg++" {
		t.Errorf("splitSpecs: %q", got)
	}
}

// TestCompareOptimizeScheduleDemo runs the schedule search through the pipeline on the demo model
// (small grid, one held-out seed): the search walks the transformer with Request.SamplerFunc and
// scores the result against the default schedule.
func TestCompareOptimizeScheduleDemo(t *testing.T) {
	lib := needORT(t)
	dir := t.TempDir()
	code, out, errOut := runCLI("compare", "--ort-lib", lib, "-m", "demo-sd3", "-p", "a green star", "-W", "64", "-H", "64",
		"--optimize-schedule", "--steps", "4", "--grid-points", "9", "--train-batch", "2", "--held-out-seeds", "9",
		"--reference", "heun:16", "--threads", "1", "--out", dir, "-q")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.HasPrefix(out, "--sampler euler --sigmas 1,") {
		t.Errorf("stdout %q", out)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil || !strings.Contains(string(md), "| 9 |") {
		t.Errorf("report.md (%v):\n%s", err, md)
	}
}
