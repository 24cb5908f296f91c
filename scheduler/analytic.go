package scheduler

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// GaussianMixture is the data distribution Σ_k w_k·N(μ_k, s_k²·I) in D dimensions: a target whose
// flows are known exactly, for tests and sampler comparisons.
type GaussianMixture struct {
	dim     int
	means   [][]float64
	stds    []float64
	weights []float64
	logW    []float64
}

// NewGaussianMixture builds a mixture from K means (each of the same length D ≥ 1), K standard
// deviations s_k > 0 and K positive weights (normalised here).
func NewGaussianMixture(means [][]float64, stds, weights []float64) (*GaussianMixture, error) {
	k := len(means)
	if k == 0 || len(means[0]) == 0 {
		return nil, errors.New("scheduler: gaussian mixture: need at least one component of dimension ≥ 1")
	}
	if len(stds) != k || len(weights) != k {
		return nil, fmt.Errorf("scheduler: gaussian mixture: %d means but %d stds and %d weights", k, len(stds), len(weights))
	}
	g := &GaussianMixture{dim: len(means[0]), stds: append([]float64(nil), stds...)}
	total := 0.0
	for i, w := range weights {
		if !(w > 0) || math.IsInf(w, 0) || !(stds[i] > 0) || math.IsInf(stds[i], 0) || len(means[i]) != g.dim {
			return nil, fmt.Errorf("scheduler: gaussian mixture: component %d: want weight > 0, std > 0 and %d-dim mean (weight %v, std %v, dim %d)",
				i, g.dim, w, stds[i], len(means[i]))
		}
		total += w
		g.means = append(g.means, append([]float64(nil), means[i]...))
	}
	for _, w := range weights {
		g.weights = append(g.weights, w/total)
		g.logW = append(g.logW, math.Log(w/total))
	}
	return g, nil
}

// Dim is the dimension D of one draw.
func (g *GaussianMixture) Dim() int { return g.dim }

// Mean returns the exact mean Σ w_k μ_k.
func (g *GaussianMixture) Mean() []float64 {
	m := make([]float64, g.dim)
	for k, mu := range g.means {
		for d := range m {
			m[d] += g.weights[k] * mu[d]
		}
	}
	return m
}

// Covariance returns the exact D×D covariance Σ w_k (s_k² I + μ_k μ_kᵀ) − m mᵀ, row-major.
func (g *GaussianMixture) Covariance() []float64 {
	D, m := g.dim, g.Mean()
	c := make([]float64, D*D)
	for k, mu := range g.means {
		w, s2 := g.weights[k], g.stds[k]*g.stds[k]
		for a := range D {
			c[a*D+a] += w * s2
			for b := range D {
				c[a*D+b] += w * mu[a] * mu[b]
			}
		}
	}
	for a := range D {
		for b := range D {
			c[a*D+b] -= m[a] * m[b]
		}
	}
	return c
}

// Sample fills dst (a multiple of D values) with exact independent draws from the mixture.
func (g *GaussianMixture) Sample(r *rand.Rand, dst []float64) error {
	if r == nil {
		return errors.New("scheduler: gaussian mixture: nil random source")
	}
	if len(dst)%g.dim != 0 {
		return fmt.Errorf("scheduler: gaussian mixture: %d values is not a multiple of D = %d", len(dst), g.dim)
	}
	for p := 0; p < len(dst); p += g.dim {
		u, k := r.Float64(), 0
		for k < len(g.weights)-1 && u >= g.weights[k] {
			u -= g.weights[k]
			k++
		}
		for d := range g.dim {
			dst[p+d] = g.means[k][d] + g.stds[k]*r.NormFloat64()
		}
	}
	return nil
}

// AnalyticFlow is the exact flow that carries N(0, I) at t = 1 to a GaussianMixture at t = 0 along a
// Path: with x_t = α·x0 + σ·ε, p_t = Σ w_k N(α μ_k, (α² s_k² + σ²) I), and the velocity
// v(x, t) = E[α'·x0 + σ'·ε | x_t = x] = Σ_k r_k(x)·(α'·μ_k + (α'·α·s_k² + σ'·σ)/τ_k²·(x − α μ_k)),
// τ_k² = α² s_k² + σ², r_k the posterior responsibilities (log-sum-exp). Everything is float64 and
// finite at both ends (t = 0 needs s_k > 0, which NewGaussianMixture enforces).
type AnalyticFlow struct {
	Target *GaussianMixture
	Path   Path // nil = Linear
}

func (f *AnalyticFlow) check(n int, t float64) error {
	if f.Target == nil {
		return errors.New("scheduler: analytic flow: nil Target")
	}
	if n%f.Target.dim != 0 {
		return fmt.Errorf("scheduler: analytic flow: %d values is not a multiple of D = %d", n, f.Target.dim)
	}
	if !(t >= 0 && t <= 1) {
		return fmt.Errorf("scheduler: analytic flow: t = %v is outside [0, 1]", t)
	}
	return nil
}

// responsibilities writes log r_k(x) for one point into logR.
func (f *AnalyticFlow) responsibilities(logR, x []float64, al, s float64) {
	g := f.Target
	best := math.Inf(-1)
	for k, mu := range g.means {
		tau2 := al*al*g.stds[k]*g.stds[k] + s*s
		q := 0.0
		for d, xd := range x {
			e := xd - al*mu[d]
			q += e * e
		}
		logR[k] = g.logW[k] - q/(2*tau2) - float64(g.dim)/2*math.Log(tau2)
		best = max(best, logR[k])
	}
	sum := 0.0
	for _, l := range logR {
		sum += math.Exp(l - best)
	}
	logSum := math.Log(sum)
	for k := range logR { // subtract best first: exact for nearby values, however large they are
		logR[k] = (logR[k] - best) - logSum
	}
}

// Responsibilities writes the posterior component probabilities P(k | x_t = x) for a batch x (B·D values)
// into dst (B·K values).
func (f *AnalyticFlow) Responsibilities(dst, x []float64, t float64) error {
	if err := f.check(len(x), t); err != nil {
		return err
	}
	g, p := f.Target, pathOrLinear(f.Path)
	K, B := len(g.means), len(x)/g.dim
	if len(dst) != B*K {
		return fmt.Errorf("scheduler: analytic flow: dst has %d values, want B·K = %d", len(dst), B*K)
	}
	for b := range B {
		r := dst[b*K : (b+1)*K]
		f.responsibilities(r, x[b*g.dim:(b+1)*g.dim], p.Alpha(t), p.Sigma(t))
		for k := range r {
			r[k] = math.Exp(r[k])
		}
	}
	return nil
}

// PosteriorMean writes E[x0 | x_t = x] = Σ_k r_k (μ_k + α s_k²/τ_k² (x − α μ_k)) for a batch into dst.
func (f *AnalyticFlow) PosteriorMean(dst, x []float64, t float64) error {
	p := pathOrLinear(f.Path)
	al, s := p.Alpha(t), p.Sigma(t)
	return f.mix(dst, x, t, func(s2 float64) (float64, float64) {
		return 1, al * s2 / (al*al*s2 + s*s)
	})
}

// VelocityAt writes the exact velocity v(x, t) for a batch x (B·D values) into dst, in float64.
func (f *AnalyticFlow) VelocityAt(dst, x []float64, t float64) error {
	p := pathOrLinear(f.Path)
	al, s, da, ds := p.Alpha(t), p.Sigma(t), p.DAlpha(t), p.DSigma(t)
	return f.mix(dst, x, t, func(s2 float64) (float64, float64) {
		return da, (da*al*s2 + ds*s) / (al*al*s2 + s*s)
	})
}

// mix writes Σ_k r_k (cμ·μ_k + cx·(x − α μ_k)) with (cμ, cx) = coef(s_k²), per point.
func (f *AnalyticFlow) mix(dst, x []float64, t float64, coef func(s2 float64) (float64, float64)) error {
	if err := f.check(len(x), t); err != nil {
		return err
	}
	if len(dst) != len(x) {
		return fmt.Errorf("scheduler: analytic flow: dst has %d values, x %d", len(dst), len(x))
	}
	g, p := f.Target, pathOrLinear(f.Path)
	al, s := p.Alpha(t), p.Sigma(t)
	logR := make([]float64, len(g.means))
	for b := 0; b < len(x); b += g.dim {
		xb, out := x[b:b+g.dim], dst[b:b+g.dim]
		f.responsibilities(logR, xb, al, s)
		clear(out)
		for k, mu := range g.means {
			r := math.Exp(logR[k])
			cm, cx := coef(g.stds[k] * g.stds[k])
			for d := range out {
				out[d] += r * (cm*mu[d] + cx*(xb[d]-al*mu[d]))
			}
		}
	}
	return nil
}

// Velocity makes AnalyticFlow a Model over float32 batches (B·D values): dst = f32(v(x, e.T)).
func (f *AnalyticFlow) Velocity(ctx context.Context, dst, x []float32, e Eval) error {
	sigma := e.T
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(dst) != len(x) {
		return fmt.Errorf("scheduler: analytic flow: dst has %d values, x %d", len(dst), len(x))
	}
	in, out := make([]float64, len(x)), make([]float64, len(x))
	for j, v := range x {
		in[j] = float64(v)
	}
	if err := f.VelocityAt(out, in, sigma); err != nil {
		return err
	}
	for j, v := range out {
		dst[j] = float32(v)
	}
	return nil
}

// SampleAt fills dst with exact draws of x_t = α(t)·x0 + σ(t)·ε (x0 from the target, ε ~ N(0, I)).
func (f *AnalyticFlow) SampleAt(r *rand.Rand, dst []float64, t float64) error {
	if err := f.check(len(dst), t); err != nil {
		return err
	}
	if err := f.Target.Sample(r, dst); err != nil {
		return err
	}
	p := pathOrLinear(f.Path)
	al, s := p.Alpha(t), p.Sigma(t)
	for j := range dst {
		dst[j] = al*dst[j] + s*r.NormFloat64()
	}
	return nil
}
