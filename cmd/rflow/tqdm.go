package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// tqdmBar draws a progress line on a terminal in tqdm's format, which diffusers and ComfyUI users read
// every day: "denoise:  43%|████████▌          | 12/28 [00:05<00:06,  2.31it/s]", the rate turning into
// s/it below one step a second. It redraws at most every 100 ms, and always at the end.
//
// Progress is reported after each step, so the bar's clock starts at the first report: the rate is
// measured over the steps after it (which also leaves out the first, slower step), and the elapsed
// time counts the steps before it at that rate.
type tqdmBar struct {
	w              io.Writer
	desc, unit     string
	total, n       int
	startN         int // done at the first report
	start          time.Time
	lastSet        time.Time // of the last report: finish draws the state as of then
	lastDraw       time.Time
	now            func() time.Time
	started, drawn bool
}

const (
	tqdmWidth    = 20 // bar cells
	tqdmInterval = 100 * time.Millisecond
)

func newTqdmBar(w io.Writer, desc, unit string, total int, now func() time.Time) *tqdmBar {
	return &tqdmBar{w: w, desc: desc, unit: unit, total: total, now: now}
}

// set moves the bar to n done.
func (b *tqdmBar) set(n int) {
	t := b.now()
	if !b.started {
		b.started, b.startN, b.start = true, n, t
	}
	b.n, b.lastSet = n, t
	if n >= b.total || !b.drawn || t.Sub(b.lastDraw) >= tqdmInterval {
		b.draw(t)
	}
}

func (b *tqdmBar) draw(t time.Time) {
	rate, elapsed := 0.0, t.Sub(b.start).Seconds()
	if elapsed > 0 && b.n > b.startN {
		rate = float64(b.n-b.startN) / elapsed
		elapsed += float64(b.startN) / rate
	}
	fmt.Fprintf(b.w, "\r%s\x1b[K", tqdmLine(b.desc, b.n, b.total, elapsed, rate, b.unit))
	b.lastDraw, b.drawn = t, true
}

// clear erases the line so that a message can be printed; the next set draws the bar again.
func (b *tqdmBar) clear() {
	if b.drawn {
		fmt.Fprint(b.w, "\r\x1b[K")
		b.drawn = false
	}
}

// finish draws the final state and ends the line, leaving the bar on screen as tqdm does.
func (b *tqdmBar) finish() {
	if !b.started {
		b.start, b.lastSet = b.now(), b.now()
	}
	b.draw(b.lastSet)
	fmt.Fprintln(b.w)
}

// tqdmLine is tqdm's default meter: "desc: pct%|bar| n/total [elapsed<remaining, rate]"; rate is in
// units a second (0: not known yet), elapsed in seconds.
func tqdmLine(desc string, n, total int, elapsed, rate float64, unit string) string {
	frac := 0.0
	if total > 0 {
		frac = min(1, max(0, float64(n)/float64(total)))
	}
	rateText, remaining := "?"+unit+"/s", "?"
	switch {
	case rate >= 1:
		rateText = fmt.Sprintf("%5.2f%s/s", rate, unit)
	case rate > 0:
		rateText = fmt.Sprintf("%5.2fs/%s", 1/rate, unit)
	}
	if rate > 0 {
		remaining = tqdmClock(float64(total-n) / rate)
	}
	return fmt.Sprintf("%s: %3.0f%%|%s| %d/%d [%s<%s, %s]", desc, 100*frac, tqdmCells(frac), n, total,
		tqdmClock(elapsed), remaining, rateText)
}

// tqdmCells is the bar itself: full blocks, one partial block in eighths, spaces.
func tqdmCells(frac float64) string {
	const partial = " ▏▎▍▌▋▊▉"
	eighths := int(frac * tqdmWidth * 8)
	full, rem := eighths/8, eighths%8
	var b strings.Builder
	b.WriteString(strings.Repeat("█", full))
	if full < tqdmWidth {
		b.WriteRune([]rune(partial)[rem])
		b.WriteString(strings.Repeat(" ", tqdmWidth-full-1))
	}
	return b.String()
}

// tqdmClock formats seconds as tqdm's format_interval: mm:ss, or h:mm:ss from an hour on.
func tqdmClock(sec float64) string {
	if math.IsInf(sec, 0) || math.IsNaN(sec) || sec < 0 {
		return "?"
	}
	s := int(sec)
	h, m := s/3600, s/60%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s%60)
	}
	return fmt.Sprintf("%02d:%02d", m, s%60)
}
