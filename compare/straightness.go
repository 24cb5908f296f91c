package compare

import (
	"errors"
	"fmt"
	"math"

	"github.com/rflowrt/rflow/scheduler"
)

// Straightness measures how straight a sampler's trajectory was (Liu et al. 2022, "Flow Straight and
// Fast", straightness S(Z) = ∫ E‖(Z₁ − Z₀) − Żₜ‖² dt), normalised so the number does not depend on
// the data's scale:
//
//	S = Σᵢ Δσᵢ·‖ū − vᵢ‖² / (L·‖ū‖²),  ū = (x_start − x_end)/L,  L = σ_first − σ_last = Σᵢ Δσᵢ
//
// with vᵢ the velocity at the start of step i and the norms taken over the whole batch (a ratio of
// batch sums, so a sample with a short displacement cannot dominate). On the full range σ = 1 → 0
// (L = 1) this is Σᵢ Δσᵢ·‖(x_start − x_end) − vᵢ‖² / ‖x_start − x_end‖². It is 0 exactly when every
// vᵢ equals the mean velocity (a straight flow walked at constant speed) and grows with curvature;
// the sum is a left Riemann sum over the sampler's own steps, so it estimates the integral better as
// the steps get finer.
//
// vᵢ comes from the sampler's Step reports, not from extra model calls: the x0 prediction at σᵢ
// (Step.Denoised) and x before the step give v = VelocityFromX0(path, σᵢ, x, x0), which on the Linear
// path is (x − x0)/σᵢ. For two-stage samplers (heun) only the first stage's velocity enters. The
// accumulators are streaming: memory is three copies of x whatever the number of steps.
type Straightness struct {
	path   scheduler.Path
	prev   []float32 // x after the previous step
	first  []float32 // x0 of step 0, waiting for x_start
	s0, s1 float64   // step 0's interval
	w      []float64 // Σ Δσ·v
	q      float64   // Σ Δσ·‖v‖²
	span   float64   // Σ Δσ
	steps  int
}

// NewStraightness returns an empty meter for a sampler run on path p (nil: Linear).
func NewStraightness(p scheduler.Path) *Straightness {
	if p == nil {
		p = scheduler.Linear
	}
	return &Straightness{path: p}
}

// Steps is the number of steps observed.
func (s *Straightness) Steps() int { return s.steps }

// Observe takes one Step report; call it from the sampler's callback, in step order. The slices are
// copied.
func (s *Straightness) Observe(st scheduler.Step) error {
	if st.Denoised == nil {
		return errors.New("compare: straightness: the sampler reports no x0 prediction")
	}
	if len(st.Denoised) != len(st.X) {
		return fmt.Errorf("compare: straightness: x0 has %d values, x %d", len(st.Denoised), len(st.X))
	}
	if !(st.Sigma > 0) || !(st.SigmaNext < st.Sigma) {
		return fmt.Errorf("compare: straightness: step σ %v → %v is not a decreasing step from σ > 0", st.Sigma, st.SigmaNext)
	}
	if s.steps == 0 {
		s.first = append([]float32(nil), st.Denoised...)
		s.s0, s.s1 = st.Sigma, st.SigmaNext
		s.w = make([]float64, len(st.X))
	} else {
		if len(st.X) != len(s.prev) {
			return fmt.Errorf("compare: straightness: step %d has %d values, earlier steps %d", s.steps, len(st.X), len(s.prev))
		}
		s.add(s.prev, st.Denoised, st.Sigma, st.SigmaNext)
	}
	s.prev = append(s.prev[:0], st.X...)
	s.steps++
	return nil
}

// add accumulates the velocity at σ from x (before the step) and its x0 prediction.
func (s *Straightness) add(x, x0 []float32, sigma, sigmaNext float64) {
	a, b := velocityCoefs(s.path, sigma)
	dt := sigma - sigmaNext
	for j := range x {
		v := a*float64(x[j]) + b*float64(x0[j])
		s.w[j] += dt * v
		s.q += dt * v * v
	}
	s.span += dt
}

// Value returns S for the run that started at start (the x the sampler was given) and ended at the
// last observed step's x. A run that did not move (x_start = x_end) has no defined straightness and is
// an error.
func (s *Straightness) Value(start []float32) (float64, error) {
	if s.steps == 0 {
		return 0, errors.New("compare: straightness: no steps observed")
	}
	if len(start) != len(s.prev) {
		return 0, fmt.Errorf("compare: straightness: start has %d values, the steps %d", len(start), len(s.prev))
	}
	w, q, span := append([]float64(nil), s.w...), s.q, s.span
	a, b := velocityCoefs(s.path, s.s0)
	dt := s.s0 - s.s1
	for j := range start {
		v := a*float64(start[j]) + b*float64(s.first[j])
		w[j] += dt * v
		q += dt * v * v
	}
	span += dt
	// Σ Δσ‖ū − v‖² = L‖ū‖² − 2ū·W + Q with W = Σ Δσ v and Q = Σ Δσ‖v‖².
	var uu, uw float64
	for j := range start {
		u := (float64(start[j]) - float64(s.prev[j])) / span
		uu += u * u
		uw += u * w[j]
	}
	if !(uu > 0) {
		return 0, errors.New("compare: straightness: the trajectory did not move (x_start = x_end)")
	}
	v := (span*uu - 2*uw + q) / (span * uu)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("compare: straightness: non-finite value %v", v)
	}
	return max(v, 0), nil // rounding of the expanded square can dip a hair below 0
}

// velocityCoefs returns (a, b) with v = a·x + b·x0 on path p at t, read off the path's exported
// conversion (it is linear in x and x0).
func velocityCoefs(p scheduler.Path, t float64) (a, b float64) {
	b = scheduler.VelocityFromX0(p, t, 0, 1)
	a = scheduler.VelocityFromX0(p, t, 1, 0)
	return a, b
}
