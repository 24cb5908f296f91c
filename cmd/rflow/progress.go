package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"

	"github.com/rflowrt/rflow/pipeline"
)

// reporter prints progress: a tqdm-style bar on a terminal, plain lines otherwise, nothing with --quiet.
type reporter struct {
	w     io.Writer
	quiet bool
	tty   bool
	bar   *tqdmBar
	now   func() time.Time
}

func newReporter(w io.Writer, quiet bool) *reporter {
	r := &reporter{w: w, quiet: quiet, now: time.Now}
	if f, ok := w.(*os.File); ok {
		r.tty = term.IsTerminal(int(f.Fd()))
	}
	return r
}

func (r *reporter) linef(format string, a ...any) {
	if !r.quiet {
		if r.bar != nil {
			r.bar.clear()
		}
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
				// The first event comes after the first step: the clock starts one step back.
				r.bar = newTqdmBar(r.w, label, "it", ev.Total, r.now)
			}
			r.bar.set(ev.Step)
		case ev.Stage == pipeline.StageDenoise:
			fmt.Fprintf(r.w, "%s: step %d/%d (σ=%.4f)\n", label, ev.Step, ev.Total, ev.Sigma)
		case ev.Stage == pipeline.StageLoad && ev.Component != "":
			r.done()
			fmt.Fprintf(r.w, "loading %s\n", ev.Component)
		case ev.Stage == pipeline.StageDecode && ev.Step == 0:
			r.done()
			fmt.Fprintln(r.w, "decoding")
		case ev.Stage == pipeline.StageWarning:
			r.done()
			fmt.Fprintf(r.w, "warning: %s\n", ev.Message)
		}
	}
}

// done ends a bar in progress, leaving its last state on screen.
func (r *reporter) done() {
	if r.bar != nil {
		r.bar.finish()
		r.bar = nil
	}
}
