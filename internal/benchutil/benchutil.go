// Package benchutil holds the measuring helpers that benchmarks and measurement children share:
// process CPU time, /proc/self/status sizes, medians. It is imported by tests and scripts only.
package benchutil

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

// CPUMillis is CPUTime in milliseconds, the unit the benchmarks report.
func CPUMillis() float64 { return float64(CPUTime().Nanoseconds()) / 1e6 }

// Median is the median of v (the mean of the two middle values for an even count); NaN when v is
// empty. v is not changed.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// StatusKB is a size field of /proc/self/status in KiB ("VmRSS", "VmHWM"); Linux only.
func StatusKB(field string) (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	return statusField(string(b), field)
}

// statusField reads "field:   1234 kB" from the text of a status file.
func statusField(status, field string) (int64, error) {
	for line := range strings.Lines(status) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/self/status %s: %w", field, err)
			}
			return kb, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/self/status", field)
}

// StatusMiB is StatusKB in MiB.
func StatusMiB(field string) (float64, error) {
	kb, err := StatusKB(field)
	return float64(kb) / 1024, err
}

// SNRdB is the signal-to-noise ratio of got against ref in dB: 10·log10(Σref² / Σ(got−ref)²),
// +Inf when they are equal. got must be at least as long as ref.
func SNRdB(got, ref []float32) float64 {
	var p, e float64
	for i := range ref {
		p += float64(ref[i]) * float64(ref[i])
		d := float64(got[i]) - float64(ref[i])
		e += d * d
	}
	return 10 * math.Log10(p/e)
}
