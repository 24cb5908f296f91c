package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/rflowrt/rflow/pipeline"
)

// The meter reads like tqdm's: percentage, bar, count, elapsed<remaining and the rate in it/s, or s/it
// below one step a second.
func TestTqdmLine(t *testing.T) {
	for _, c := range []struct {
		n, total      int
		elapsed, rate float64
		want          string
	}{
		{12, 28, 5.2, 12 / 5.2, "denoise:  43%|████████▌           | 12/28 [00:05<00:06,  2.31it/s]"},
		{2, 10, 6, 1 / 3.0, "denoise:  20%|████                | 2/10 [00:06<00:24,  3.00s/it]"},
		{28, 28, 12.1, 28 / 12.1, "denoise: 100%|████████████████████| 28/28 [00:12<00:00,  2.31it/s]"},
		{1, 28, 0, 0, "denoise:   4%|▋                   | 1/28 [00:00<?, ?it/s]"},
		{5, 10, 3725, 5 / 3725.0, "denoise:  50%|██████████          | 5/10 [1:02:05<1:02:05, 745.00s/it]"},
	} {
		if got := tqdmLine("denoise", c.n, c.total, c.elapsed, c.rate, "it"); got != c.want {
			t.Errorf("%d/%d: got\n%q\nwant\n%q", c.n, c.total, got, c.want)
		}
	}
}

// On a terminal the denoise bar ends at 100 % and stays on screen, with the rate measured over the
// steps after the first report.
func TestReporterBarReaches100(t *testing.T) {
	var buf bytes.Buffer
	clock := time.Unix(0, 0)
	r := &reporter{w: &buf, tty: true, now: func() time.Time { return clock }}
	h := r.progress(0, 1)
	for step := 1; step <= 4; step++ {
		h(pipeline.Event{Stage: pipeline.StageDenoise, Step: step, Total: 4})
		clock = clock.Add(2 * time.Second) // 2 s a step: 0.5 it/s
	}
	h(pipeline.Event{Stage: pipeline.StageDecode})
	out := buf.String()
	lines := strings.Split(out, "\r")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "denoise: 100%|") || !strings.Contains(last, "4/4 [00:08<00:00,  2.00s/it]") {
		t.Errorf("last bar %q, want 100%% at 2.00s/it after 8 s", last)
	}
	if !strings.HasSuffix(out, "\ndecoding\n") {
		t.Errorf("the bar does not end its line before the next message: %q", out)
	}
}
