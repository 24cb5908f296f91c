package scheduler

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// OptimizeEulerSchedule searches the N-step σ list, drawn from a candidate grid, along which Euler steps
// stay closest to a reference trajectory: the dynamic programme of Optimal Stepsize Distillation (Pei
// et al. 2025, "Optimal Stepsize for Diffusion Sampling", arXiv:2503.21774, Alg. 1). Layer i holds, for
// every grid point j, the Euler state that reaches σ_j in i steps with the least squared distance to the
// reference state ref[j], and its parent; a state is carried forward as the student's own (errors
// compound as in sampling), and each state costs one model call whatever its successors, so the search
// costs about steps·len(grid) calls. x0 is the batch the trajectory starts from (ref[0]); grid is
// strictly decreasing, grid[0] the start σ and its last entry the end σ; ref[j] is the reference state
// at grid[j]. It returns the σ list (steps+1 grid values, both ends included) and the end point's RMS
// distance to ref[last]. The model sees Eval{Index: k, Total: len(grid)−1} for a state at grid[k].
func OptimizeEulerSchedule(ctx context.Context, m Model, x0 []float32, grid []float64, ref [][]float32, steps int) ([]float64, float64, error) {
	return OptimizeSchedule(ctx, m, nil, x0, grid, ref, steps)
}

// OptimizeSchedule is OptimizeEulerSchedule for any one-step sampler (heun, midpoint, rk4, …): a
// transition σ_k → σ_j runs the sampler over the single interval, which costs its calls per pair (about
// steps·len(grid)²/2 intervals), so keep the grid coarse. sampler nil is Euler, whose model call at σ_k
// serves every successor. Multistep samplers run one step at a time would lose their history: use them
// here only as what they are on one step.
func OptimizeSchedule(ctx context.Context, m Model, sampler SamplerFunc, x0 []float32, grid []float64, ref [][]float32, steps int) ([]float64, float64, error) {
	M := len(grid)
	switch {
	case m == nil || len(x0) == 0:
		return nil, 0, errors.New("scheduler: optimize schedule: nil model or empty x")
	case steps < 1 || steps > M-1:
		return nil, 0, fmt.Errorf("scheduler: optimize schedule: %d steps on a grid of %d points, want 1 … %d", steps, M, M-1)
	case len(ref) != M:
		return nil, 0, fmt.Errorf("scheduler: optimize schedule: %d reference states for %d grid points", len(ref), M)
	}
	for j := range grid {
		if j > 0 && !(grid[j] < grid[j-1]) {
			return nil, 0, fmt.Errorf("scheduler: optimize schedule: grid not strictly decreasing at %d (%v after %v)", j, grid[j], grid[j-1])
		}
		if len(ref[j]) != len(x0) {
			return nil, 0, fmt.Errorf("scheduler: optimize schedule: reference state %d has %d values, x %d", j, len(ref[j]), len(x0))
		}
	}
	n := len(x0)
	type cell struct {
		x      []float32
		cost   float64
		parent int
	}
	prev := make([]*cell, M)
	prev[0] = &cell{x: append([]float32(nil), x0...), parent: -1}
	parents := make([][]int, steps+1)
	v, y := make([]float32, n), make([]float32, n)
	nfe := 0
	for i := 1; i <= steps; i++ {
		cur := make([]*cell, M)
		parents[i] = make([]int, M)
		for k := range M {
			c := prev[k]
			if c == nil || k > M-1-(steps-i+1) {
				continue // unreachable, or too close to the end to finish in the steps left
			}
			if err := ctx.Err(); err != nil {
				return nil, 0, err
			}
			if sampler == nil {
				nfe++
				e := Eval{Index: k, Total: M - 1, Sigma: grid[k], SigmaNext: grid[k+1], T: grid[k], NFE: nfe}
				if err := m.Velocity(ctx, v, c.x, e); err != nil {
					return nil, 0, fmt.Errorf("scheduler: optimize schedule: model at σ=%v: %w", grid[k], err)
				}
			}
			lo, hi := k+1, M-1-(steps-i)
			if i == steps {
				lo = M - 1 // the last step must land on the end
			}
			for j := lo; j <= hi; j++ {
				if sampler == nil {
					h := grid[j] - grid[k]
					for q := range n {
						y[q] = float32(float64(c.x[q]) + h*float64(v[q]))
					}
				} else {
					copy(y, c.x)
					if err := sampler(ctx, m, y, []float64{grid[k], grid[j]}, Options{}); err != nil {
						return nil, 0, fmt.Errorf("scheduler: optimize schedule: step σ %v → %v: %w", grid[k], grid[j], err)
					}
				}
				cost := 0.0
				r := ref[j]
				for q := range n {
					d := float64(y[q]) - float64(r[q])
					cost += d * d
				}
				if cur[j] == nil || cost < cur[j].cost {
					if cur[j] == nil {
						cur[j] = &cell{x: make([]float32, n)}
					}
					copy(cur[j].x, y)
					cur[j].cost, cur[j].parent = cost, k
					parents[i][j] = k
				}
			}
		}
		prev = cur
	}
	end := prev[M-1]
	if end == nil {
		return nil, 0, errors.New("scheduler: optimize schedule: no path reaches the end of the grid")
	}
	sig := make([]float64, steps+1)
	j := M - 1
	for i := steps; i >= 0; i-- {
		sig[i] = grid[j]
		if i > 0 {
			j = parents[i][j]
		}
	}
	return sig, math.Sqrt(end.cost / float64(n)), nil
}

// CandidateGrid is a search grid for OptimizeEulerSchedule: points values uniform from 1 to 0 (ends
// included) together with every σ of the extra lists (so the lists themselves stay reachable), sorted
// decreasing, duplicates (as float32) removed.
func CandidateGrid(points int, extra ...[]float64) []float64 {
	all := make([]float64, 0, points)
	for i := range points {
		all = append(all, roundToFloat32(1-float64(i)/float64(max(points-1, 1))))
	}
	for _, l := range extra {
		for _, s := range l {
			all = append(all, roundToFloat32(s))
		}
	}
	// insertion sort, decreasing: grids are small
	for i := 1; i < len(all); i++ {
		for k := i; k > 0 && all[k] > all[k-1]; k-- {
			all[k], all[k-1] = all[k-1], all[k]
		}
	}
	out := all[:0]
	for i, s := range all {
		if i == 0 || s != out[len(out)-1] {
			out = append(out, s)
		}
	}
	return out
}

// RefineEulerSchedule improves a σ list by coordinate descent on the end point: each interior σ in turn
// moves within its neighbours' interval to the value (golden-section search, iters evaluations) that
// minimises the RMS distance of Euler's end point from x0 to refEnd; rounds sweeps. The dynamic
// programme optimises every intermediate state against the reference, which need not give the best end
// point (Euler's local errors partly cancel); this direct search on the objective the comparison reports
// is rflow's addition to it. Costs rounds·(steps−1)·iters·steps model calls. The ends stay fixed.
func RefineEulerSchedule(ctx context.Context, m Model, x0, refEnd []float32, sig []float64, rounds, iters int) ([]float64, float64, error) {
	return RefineSchedule(ctx, m, Euler, x0, refEnd, sig, rounds, iters)
}

// RefineSchedule is RefineEulerSchedule for any sampler (nil: Euler).
func RefineSchedule(ctx context.Context, m Model, sampler SamplerFunc, x0, refEnd []float32, sig []float64, rounds, iters int) ([]float64, float64, error) {
	if sampler == nil {
		sampler = Euler
	}
	if len(refEnd) != len(x0) || len(sig) < 2 {
		return nil, 0, errors.New("scheduler: refine schedule: reference end and x differ in length, or fewer than 2 σ")
	}
	s := append([]float64(nil), sig...)
	x := make([]float32, len(x0))
	endErr := func() (float64, error) {
		copy(x, x0)
		if err := sampler(ctx, m, x, s, Options{}); err != nil {
			return 0, err
		}
		sum := 0.0
		for q := range x {
			d := float64(x[q]) - float64(refEnd[q])
			sum += d * d
		}
		return math.Sqrt(sum / float64(len(x))), nil
	}
	best, err := endErr()
	if err != nil {
		return nil, 0, err
	}
	const phi = 0.6180339887498949
	for range rounds {
		for i := 1; i < len(s)-1; i++ {
			lo, hi := s[i+1], s[i-1]
			pad := (hi - lo) * 1e-3 // keep σ strictly decreasing after float32 rounding
			lo, hi = lo+pad, hi-pad
			at := func(v float64) (float64, error) {
				old := s[i]
				s[i] = roundToFloat32(v)
				e, err := endErr()
				s[i] = old
				return e, err
			}
			a, b := lo, hi
			c, d := b-phi*(b-a), a+phi*(b-a)
			fc, err := at(c)
			if err != nil {
				return nil, 0, err
			}
			fd, err := at(d)
			if err != nil {
				return nil, 0, err
			}
			for range max(iters-2, 0) {
				if fc < fd {
					b, d, fd = d, c, fc
					c = b - phi*(b-a)
					if fc, err = at(c); err != nil {
						return nil, 0, err
					}
				} else {
					a, c, fc = c, d, fd
					d = a + phi*(b-a)
					if fd, err = at(d); err != nil {
						return nil, 0, err
					}
				}
			}
			cand, fcand := c, fc
			if fd < fc {
				cand, fcand = d, fd
			}
			if fcand < best {
				s[i], best = roundToFloat32(cand), fcand
			}
		}
	}
	return s, best, nil
}
