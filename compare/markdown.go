package compare

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// Document is report.md: settings, free-form sections, the fitted orders, the plots and the table.
type Document struct {
	Title    string
	Command  string      // the command line that produced it
	Settings [][2]string // name, value
	Sections []Section   // after the settings (findings, notes)
	Fits     []OrderFit
	FitWhat  string   // what the fits are of, e.g. "latent RMSE against the reference"
	Plots    []string // PNG file names, relative to the report
	Rows     []Row
	Analytic bool // analytic runs: show W₂ instead of PSNR/SSIM
	// Budgets, if set, is the "which cell wins at each budget" table, placed before the fits.
	Budgets []BudgetWinner
	// BudgetWhat names the error the budgets compare.
	BudgetWhat string
}

// Section is a heading and Markdown body.
type Section struct{ Heading, Body string }

// WriteMarkdown renders d.
func (d Document) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", d.Title)
	if d.Command != "" {
		fmt.Fprintf(&b, "```\n%s\n```\n\n", d.Command)
	}
	b.WriteString("## Settings\n\n| setting | value |\n|---|---|\n")
	for _, s := range d.Settings {
		fmt.Fprintf(&b, "| %s | %s |\n", s[0], cellText(s[1]))
	}
	for _, s := range d.Sections {
		fmt.Fprintf(&b, "\n## %s\n\n%s\n", s.Heading, strings.TrimSpace(s.Body))
	}
	if len(d.Budgets) > 0 {
		fmt.Fprintf(&b, "\n## Which cell wins at each budget\n\n%s", BudgetTable(d.Budgets, d.BudgetWhat))
	}
	if len(d.Fits) > 0 {
		fmt.Fprintf(&b, "\n## Fitted orders\n\nLeast-squares slope of log(%s) against log(NFE), per sampler; order = −slope.\n\n", d.FitWhat)
		b.WriteString(FitTable(d.Fits))
	}
	for _, p := range d.Plots {
		fmt.Fprintf(&b, "\n![%s](%s)\n", strings.TrimSuffix(p, ".png"), p)
	}
	if len(d.Rows) > 0 {
		b.WriteString("\n## Measurements\n\n")
		b.WriteString(d.rowTable())
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("compare: report.md: %w", err)
	}
	return nil
}

// FitTable renders fits as a Markdown table.
func FitTable(fits []OrderFit) string {
	var b strings.Builder
	b.WriteString("| path | scheduler | shift | sampler | steps | NFE | order | points |\n|---|---|---|---|---|---|---|---|\n")
	for _, f := range fits {
		order := fmt.Sprintf("%.2f", f.Fit.Order)
		if f.Err != nil {
			order = "– (" + cellText(f.Err.Error()) + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %d–%d | %d–%d | %s | %d |\n", f.Path, f.Scheduler, fmtNum(f.Shift, 3),
			f.Sampler, f.MinSteps, f.MaxSteps, f.MinNFE, f.MaxNFE, order, f.Fit.Points)
	}
	return b.String()
}

func (d Document) rowTable() string {
	var b strings.Builder
	head := []string{"path", "scheduler", "shift", "prompt", "seed", "sampler", "steps", "NFE", "seconds", "RMSE", "max abs", "straightness"}
	if d.Analytic {
		head = append(head, "sliced W₂")
	} else {
		head = append(head, "PSNR", "SSIM")
	}
	head = append(head, "guidance", "step cache", "model calls")
	b.WriteString("| " + strings.Join(head, " | ") + " |\n")
	b.WriteString(strings.Repeat("|---", len(head)) + "|\n")
	for _, r := range d.Rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %d | %s | %d | %d | %s | %s | %s | %s |", r.Path, r.Scheduler, fmtNum(r.Shift, 3),
			cellText(r.Prompt), r.Seed, r.Sampler, r.Steps, r.NFE, fmtNum(r.Seconds, 3), fmtNum(r.RMSE, 3), fmtNum(r.MaxAbs, 3),
			fmtNum(r.Straightness, 3))
		if d.Analytic {
			fmt.Fprintf(&b, " %s |", fmtNum(r.Wasserstein, 3))
		} else {
			fmt.Fprintf(&b, " %s | %s |", fmtNum(r.PSNR, 4), fmtNum(r.SSIM, 4))
		}
		g := r.GuidanceRule
		if g != "" && !math.IsNaN(r.CFGScale) {
			g += " " + fmtNum(r.CFGScale, 3)
		}
		fmt.Fprintf(&b, " %s | %s | %d |\n", cellText(orDash(g)), cellText(orDash(r.StepCache)), r.Calls())
	}
	return b.String()
}

// fmtNum formats v with prec significant digits; NaN is "–", +Inf "∞".
func fmtNum(v float64, prec int) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case math.IsInf(v, 1):
		return "∞"
	case math.IsInf(v, -1):
		return "−∞"
	}
	return fmt.Sprintf("%.*g", prec, v)
}

// cellText keeps a value inside one Markdown table cell.
func cellText(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}
