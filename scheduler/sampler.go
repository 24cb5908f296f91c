// Package scheduler holds rflow's flow-matching numerics: σ schedules (pure functions returning every
// σ with the terminal 0), samplers (functions of a velocity model, x and the σ list), guidance rules
// (pure combinations of conditional and unconditional predictions), step caches (a Model in front of a
// Model), the schedule search of Optimal Stepsize Distillation, probability paths with velocity/x0/ε
// conversions, and analytic flows with exact velocities. Standard library only: no ONNX Runtime, no I/O.
package scheduler

import "context"

// Model is a velocity model v(x, σ): the flow's dx/dσ at "time" e.T for a whole batch. x and dst hold
// the batch back to back (B·D values); dst must not alias x. e.T is the schedule value (σ = 1 is pure
// noise, σ = 0 is data). Implementations map it to whatever the network takes (σ·1000 for SD3, σ for
// FLUX's t/1000 input) themselves. e also says which step of the schedule the call belongs to, so a
// model never has to recover it from σ (guidance that depends on the step, step caches, progress).
type Model interface {
	Velocity(ctx context.Context, dst, x []float32, e Eval) error
}

// Eval locates one model call: the step in progress and the time the model is evaluated at.
type Eval struct {
	// Index is the 0-based step in progress and Total the schedule's number of steps (len(sigmas)−1);
	// the adaptive dopri5 reports Total = 0 and Index = the steps accepted so far.
	Index, Total int
	// Sigma → SigmaNext is the step's interval (sigmas[Index], sigmas[Index+1]); dopri5 gives its
	// whole integration range.
	Sigma, SigmaNext float64
	// T is where the model is evaluated: Sigma for a step's first call, an intermediate or end point
	// of the interval for the later stages of multi-stage samplers (heun, midpoint, rk4, …).
	T float64
	// NFE counts this call: 1 for the run's first model call.
	NFE int
}

// First reports whether the call is its step's evaluation at the step's own start σ.
func (e Eval) First() bool { return e.T == e.Sigma }

// At is the Eval of a single call at σ outside any schedule (tests, one-off evaluations): step 0 of 1
// over [σ, 0].
func At(sigma float64) Eval { return Eval{Total: 1, Sigma: sigma, T: sigma} }

// ModelFunc adapts a function to Model.
type ModelFunc func(ctx context.Context, dst, x []float32, e Eval) error

// Velocity calls f.
func (f ModelFunc) Velocity(ctx context.Context, dst, x []float32, e Eval) error {
	return f(ctx, dst, x, e)
}

// NoiseSource fills dst with standard normal noise for the step from sigma to sigmaNext. Samplers that
// draw noise take it from here and nowhere else, so the caller decides the generator (torch-compatible
// CPU, Philox, a test's fixed stream) and a seed means the same thing in every sampler.
type NoiseSource interface {
	Fill(dst []float32, sigma, sigmaNext float64) error
}

// NoiseFunc adapts a function to NoiseSource.
type NoiseFunc func(dst []float32, sigma, sigmaNext float64) error

// Fill calls f.
func (f NoiseFunc) Fill(dst []float32, sigma, sigmaNext float64) error {
	return f(dst, sigma, sigmaNext)
}

// Step is what a sampler reports after each step.
type Step struct {
	Index, Total     int     // 0-based step index and number of steps (len(sigmas)−1)
	Sigma, SigmaNext float64 // the step's interval
	X                []float32
	Denoised         []float32 // the x0 prediction at Sigma (nil if the sampler has none)
	NFE              int       // model calls so far
}

// StepFunc observes a step; a non-nil error stops the sampler, which returns it.
type StepFunc func(Step) error
