// Package scheduler holds rflow's flow-matching numerics: σ schedules (pure functions returning every
// σ with the terminal 0), samplers (functions of a velocity model, x and the σ list), probability paths
// with velocity/x0/ε conversions, and analytic flows with exact velocities. Standard library only: no
// ONNX Runtime, no I/O.
package scheduler

import "context"

// Model is a velocity model v(x, σ): the flow's dx/dσ at "time" σ for a whole batch. x and dst hold the
// batch back to back (B·D values); dst must not alias x. σ is the schedule value (σ = 1 is pure noise,
// σ = 0 is data). Implementations map σ to whatever the network takes (σ·1000 for SD3, σ for FLUX's
// t/1000 input) themselves.
type Model interface {
	Velocity(ctx context.Context, dst, x []float32, sigma float64) error
}

// ModelFunc adapts a function to Model.
type ModelFunc func(ctx context.Context, dst, x []float32, sigma float64) error

// Velocity calls f.
func (f ModelFunc) Velocity(ctx context.Context, dst, x []float32, sigma float64) error {
	return f(ctx, dst, x, sigma)
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
