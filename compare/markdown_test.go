package compare

import (
	"math"
	"strings"
	"testing"
)

// tableCells counts the cells of a Markdown table line ("| a | b |" has 2), ignoring escaped pipes.
func tableCells(line string) int {
	line = strings.ReplaceAll(line, `\|`, "")
	return strings.Count(line, "|") - 1
}

// Every line of the measurements table (header, separator, rows) has the same number of cells, for
// model runs (PSNR, SSIM) and analytic runs (W₂), and no header cell is empty.
func TestMarkdownMeasurementsTableShape(t *testing.T) {
	rows := []Row{{Sampler: "euler", Scheduler: "simple", Shift: 3, Steps: 8, NFE: 8, RMSE: 0.1, PSNR: 30, SSIM: 0.9,
		Path: "linear", Prompt: "a | b", Wasserstein: math.NaN()}}
	for _, analytic := range []bool{false, true} {
		var b strings.Builder
		if err := (Document{Title: "t", Rows: rows, Analytic: analytic}).WriteMarkdown(&b); err != nil {
			t.Fatal(err)
		}
		_, table, ok := strings.Cut(b.String(), "## Measurements\n\n")
		if !ok {
			t.Fatalf("no measurements table:\n%s", b.String())
		}
		lines := strings.Split(strings.TrimSpace(table), "\n")
		if len(lines) != 2+len(rows) {
			t.Fatalf("analytic=%v: %d lines, want %d:\n%s", analytic, len(lines), 2+len(rows), table)
		}
		want := 17 // 14 columns + guidance, step cache, model calls
		if analytic {
			want = 16
		}
		for _, l := range lines {
			if n := tableCells(l); n != want {
				t.Errorf("analytic=%v: %d cells, want %d: %q", analytic, n, want, l)
			}
		}
		if strings.Contains(lines[0], "||") || strings.Contains(lines[0], "|  |") {
			t.Errorf("analytic=%v: empty header cell: %q", analytic, lines[0])
		}
	}
}

// TestBudgetWinners: two configurations, euler (1 call per step) and heun (2N − 1 calls) with made-up
// errors; the winner at each budget is the least error among cells within it.
func TestBudgetWinners(t *testing.T) {
	row := func(s string, steps, nfe int, e float64, seed uint64) Row {
		return Row{Sampler: s, Scheduler: "flowmatch", Shift: 1, Steps: steps, NFE: nfe, RMSE: e, Seed: seed, Path: "linear"}
	}
	rows := []Row{
		row("euler", 4, 4, 0.4, 1), row("euler", 4, 4, 0.1, 2), // geometric mean 0.2
		row("euler", 8, 8, 0.1, 1), row("euler", 8, 8, 0.1, 2),
		row("heun", 4, 7, 0.05, 1), row("heun", 4, 7, 0.05, 2),
	}
	ws := BudgetWinners(rows, func(r Row) float64 { return r.RMSE })
	if len(ws) != 3 {
		t.Fatalf("%d budgets, want 3 (4, 7, 8): %+v", len(ws), ws)
	}
	want := []struct {
		budget int
		winner string
		err    float64
	}{{4, "euler", 0.2}, {7, "heun", 0.05}, {8, "heun", 0.05}}
	for i, w := range want {
		got := ws[i]
		if got.Budget != w.budget || !strings.HasPrefix(got.Winner, w.winner) || math.Abs(got.Error-w.err) > 1e-12 {
			t.Errorf("budget %d: %+v, want %s at %v", w.budget, got, w.winner, w.err)
		}
	}
	if math.Abs(ws[2].RunnerUpError-0.1) > 1e-12 || math.Abs(ws[1].DefaultError-0.2) > 1e-12 {
		t.Errorf("budget 8 runner-up %v (want 0.1), budget 7 baseline %v (want 0.2)", ws[2].RunnerUpError, ws[1].DefaultError)
	}
	if tab := BudgetTable(ws, "RMSE"); !strings.Contains(tab, "| 7 | heun / flowmatch / shift 1, 4 steps | 7 | 0.05 | euler / flowmatch / shift 1, 4 steps | 0.2 | 75 % lower |") {
		t.Errorf("budget table:\n%s", tab)
	}
}
