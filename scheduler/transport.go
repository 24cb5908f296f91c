package scheduler

import (
	"context"
	"fmt"
)

// Transport writes into dst the exact end point of the flow's ODE dx/dt = v(x, t) from x at time
// from to time to, solved in float64 with adaptive Dormand–Prince 5(4) at relative and absolute
// tolerance tol (0 selects 1e-10): the ground truth a sampler's end point is compared with.
func (f *AnalyticFlow) Transport(ctx context.Context, dst []float64, x []float32, from, to, tol float64) error {
	if len(dst) != len(x) {
		return fmt.Errorf("scheduler: analytic transport: dst has %d values, x %d", len(dst), len(x))
	}
	if err := f.check(len(x), from); err != nil {
		return err
	}
	if err := f.check(len(x), to); err != nil {
		return err
	}
	if tol == 0 {
		tol = 1e-10
	}
	if !(tol > 0) {
		return fmt.Errorf("scheduler: analytic transport: tolerance %v, want > 0", tol)
	}
	for j, v := range x {
		dst[j] = float64(v)
	}
	if from == to {
		return nil
	}
	rhs := func(t float64, y, dy []float64) error { return f.VelocityAt(dy, y, t) }
	if err := dopri5Solve(ctx, rhs, dst, from, to, tol, tol, nil); err != nil {
		return fmt.Errorf("scheduler: analytic transport: %w", err)
	}
	return nil
}
