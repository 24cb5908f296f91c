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
		want := 14
		if analytic {
			want = 13
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
