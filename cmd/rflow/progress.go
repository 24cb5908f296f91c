package main

import (
	"fmt"
	"io"
	"os"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/rflowrt/rflow/pipeline"
)

// reporter prints progress: a bar on a terminal, plain lines otherwise, nothing with --quiet.
type reporter struct {
	w     io.Writer
	quiet bool
	tty   bool
	bar   *progressbar.ProgressBar
}

func newReporter(w io.Writer, quiet bool) *reporter {
	r := &reporter{w: w, quiet: quiet}
	if f, ok := w.(*os.File); ok {
		r.tty = term.IsTerminal(int(f.Fd()))
	}
	return r
}

func (r *reporter) linef(format string, a ...any) {
	if !r.quiet {
		fmt.Fprintf(r.w, format+"\n", a...)
	}
}

// progress returns the event handler of one run.
func (r *reporter) progress(run, runs int) func(pipeline.Event) {
	if r.quiet {
		return nil
	}
	label := "denoise"
	if runs > 1 {
		label = fmt.Sprintf("run %d/%d", run+1, runs)
	}
	return func(ev pipeline.Event) {
		switch {
		case ev.Stage == pipeline.StageDenoise && r.tty:
			if r.bar == nil {
				r.bar = progressbar.NewOptions(ev.Total, progressbar.OptionSetWriter(r.w), progressbar.OptionSetDescription(label),
					progressbar.OptionShowIts(), progressbar.OptionSetItsString("step"), progressbar.OptionShowCount(),
					progressbar.OptionSetPredictTime(true), progressbar.OptionClearOnFinish())
			}
			_ = r.bar.Set(ev.Step)
		case ev.Stage == pipeline.StageDenoise:
			fmt.Fprintf(r.w, "%s: step %d/%d (σ=%.4f)\n", label, ev.Step, ev.Total, ev.Sigma)
		case ev.Stage == pipeline.StageLoad && ev.Component != "":
			fmt.Fprintf(r.w, "loading %s\n", ev.Component)
		case ev.Stage == pipeline.StageDecode && ev.Step == 0:
			r.done()
			fmt.Fprintln(r.w, "decoding")
		}
	}
}

// done finishes a bar in progress.
func (r *reporter) done() {
	if r.bar != nil {
		_ = r.bar.Finish()
		r.bar = nil
	}
}
