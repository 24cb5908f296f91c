package compare

import (
	"errors"
	"fmt"
	"math"
)

// The metrics below are what sampler comparisons report: distance of a sampler's end point to a
// reference (RMSE, max abs), how straight the walked trajectory was, distribution distances and
// convergence-order fits. Everything is float64 arithmetic on float32 or float64 inputs.

// Float is the element type the metrics accept.
type Float interface{ ~float32 | ~float64 }

// ErrorStats returns the root-mean-square and the largest absolute difference between x and ref.
func ErrorStats[A, B Float](x []A, ref []B) (rmse, maxAbs float64, err error) {
	if len(x) != len(ref) {
		return 0, 0, fmt.Errorf("compare: error stats: %d values against a reference of %d", len(x), len(ref))
	}
	if len(x) == 0 {
		return 0, 0, errors.New("compare: error stats: no values")
	}
	sum := 0.0
	for i, v := range x {
		d := float64(v) - float64(ref[i])
		sum += d * d
		maxAbs = max(maxAbs, math.Abs(d))
	}
	return math.Sqrt(sum / float64(len(x))), maxAbs, nil
}

// LogLogFit is the least-squares line log(err) = Intercept + Slope·log(nfe); Order = −Slope is the
// empirical convergence order in model calls.
type LogLogFit struct {
	Slope, Intercept float64
	Order            float64
	Points           int
}

// FitLogLog fits log(err) against log(nfe). Points with a non-positive or non-finite value are
// skipped (an error of exactly 0 has no logarithm); at least two distinct nfe values must remain.
func FitLogLog(nfe, errs []float64) (LogLogFit, error) {
	if len(nfe) != len(errs) {
		return LogLogFit{}, fmt.Errorf("compare: log-log fit: %d NFE values and %d errors", len(nfe), len(errs))
	}
	var sx, sy, sxx, sxy float64
	n, distinct := 0, map[float64]bool{}
	for i := range nfe {
		if !(nfe[i] > 0) || !(errs[i] > 0) || math.IsInf(nfe[i], 0) || math.IsInf(errs[i], 0) {
			continue
		}
		x, y := math.Log(nfe[i]), math.Log(errs[i])
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
		n++
		distinct[nfe[i]] = true
	}
	if len(distinct) < 2 {
		return LogLogFit{}, fmt.Errorf("compare: log-log fit: need positive errors at two or more NFE values, have %d", len(distinct))
	}
	m := float64(n)
	slope := (m*sxy - sx*sy) / (m*sxx - sx*sx)
	return LogLogFit{Slope: slope, Intercept: (sy - slope*sx) / m, Order: -slope, Points: n}, nil
}
