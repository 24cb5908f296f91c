package scheduler

import (
	"fmt"
	"math"
)

// Path is a probability path x_t = α(t)·x0 + σ(t)·ε between data x0 (t = 0) and noise ε ~ N(0, I) (t = 1).
// The model's velocity is v = dx_t/dt = α'(t)·x0 + σ'(t)·ε. Every sampler takes its (α, σ) from a Path,
// so the same code samples rectified flows (Linear) and variance-preserving paths (Cosine).
//
// The σ list a sampler receives holds path times t; on the Linear path t is also the noise level σ(t),
// which is why the schedules and the model inputs call it σ.
type Path interface {
	Name() string
	Alpha(t float64) float64  // signal scale α(t); α(0) = 1
	Sigma(t float64) float64  // noise scale σ(t); σ(0) = 0
	DAlpha(t float64) float64 // dα/dt
	DSigma(t float64) float64 // dσ/dt
}

type linearPath struct{}

// Linear is the rectified-flow path of SD3 and FLUX: x_t = (1−t)·x0 + t·ε, so α = 1−t, σ = t and the
// velocity is v = ε − x0 (flow-sampling.md §1).
var Linear Path = linearPath{}

func (linearPath) Name() string               { return "linear" }
func (linearPath) Alpha(t float64) float64    { return 1 - t }
func (linearPath) Sigma(t float64) float64    { return t }
func (linearPath) DAlpha(float64) float64     { return -1 }
func (linearPath) DSigma(float64) float64     { return 1 }
func (linearPath) timeAt(lam float64) float64 { return 1 / (math.Exp(lam) + 1) } // ComfyUI sigma_fn

type cosinePath struct{}

// Cosine is the variance-preserving cosine path x_t = cos(πt/2)·x0 + sin(πt/2)·ε (α² + σ² = 1). Its
// endpoints are exact: α(1) = 0 and σ(0) = 0.
var Cosine Path = cosinePath{}

func (cosinePath) Name() string { return "cosine" }

func (cosinePath) Alpha(t float64) float64 {
	if t == 1 {
		return 0
	}
	return math.Cos(math.Pi / 2 * t)
}

func (cosinePath) Sigma(t float64) float64 {
	if t == 0 {
		return 0
	}
	return math.Sin(math.Pi / 2 * t)
}

func (p cosinePath) DAlpha(t float64) float64 { return -math.Pi / 2 * p.Sigma(t) }
func (p cosinePath) DSigma(t float64) float64 { return math.Pi / 2 * p.Alpha(t) }
func (cosinePath) timeAt(lam float64) float64 { return 2 / math.Pi * math.Atan(math.Exp(-lam)) }

// pathOrLinear maps the nil Path of Options to Linear.
func pathOrLinear(p Path) Path {
	if p == nil {
		return Linear
	}
	return p
}

// The conversions below are all of the form out = a·x + b·y, with (a, b) from one coefficient
// function each. x0FromVelocityCoefs is the only velocity→x0 formula in the package: on Linear it is
// c_skip = 1, c_out = −t, so x0 = x − t·v exactly (flow-sampling.md §1, ComfyUI CONST.calculate_denoised).
// For a general path, from x = α·x0 + σ·ε and v = α'·x0 + σ'·ε with W = σ·α' − σ'·α:
//
//	x0 = (σ·v − σ'·x)/W     ε = (α'·x − α·v)/W
func x0FromVelocityCoefs(p Path, t float64) (a, b float64) {
	if _, ok := p.(linearPath); ok {
		return 1, -t
	}
	al, s, da, ds := p.Alpha(t), p.Sigma(t), p.DAlpha(t), p.DSigma(t)
	w := s*da - ds*al
	return -ds / w, s / w
}

func epsFromVelocityCoefs(p Path, t float64) (a, b float64) {
	if _, ok := p.(linearPath); ok {
		return 1, 1 - t // ε = x + (1−t)·v
	}
	al, s, da, ds := p.Alpha(t), p.Sigma(t), p.DAlpha(t), p.DSigma(t)
	w := s*da - ds*al
	return da / w, -al / w
}

// v = (σ'/σ)·x + (α' − σ'·α/σ)·x0; undefined at σ = 0.
func velocityFromX0Coefs(p Path, t float64) (a, b float64) {
	al, s, da, ds := p.Alpha(t), p.Sigma(t), p.DAlpha(t), p.DSigma(t)
	return ds / s, da - ds*al/s
}

// v = (α'/α)·x + (σ' − α'·σ/α)·ε; undefined at α = 0.
func velocityFromEpsCoefs(p Path, t float64) (a, b float64) {
	al, s, da, ds := p.Alpha(t), p.Sigma(t), p.DAlpha(t), p.DSigma(t)
	return da / al, ds - da*s/al
}

func x0FromEpsCoefs(p Path, t float64) (a, b float64) {
	al, s := p.Alpha(t), p.Sigma(t)
	return 1 / al, -s / al
}

func epsFromX0Coefs(p Path, t float64) (a, b float64) {
	al, s := p.Alpha(t), p.Sigma(t)
	return 1 / s, -al / s
}

// pathCombine is a·x + b·y with both products rounded (an explicit conversion forbids FMA fusion), so
// a = 1, b = −t gives exactly x − t·y.
func pathCombine(a, b, x, y float64) float64 { return float64(a*x) + float64(b*y) }

// pathCombineSlice is dst = f32(f32(a·x) + f32(b·y)) in float32 arithmetic with float32 coefficients, which
// is torch's float32 `sample − sigma·model_output` bit for bit on the Linear path (a = 1, b = −σ).
func pathCombineSlice(name string, a, b float64, dst, x, y []float32) error {
	if len(x) != len(dst) || len(y) != len(dst) {
		return fmt.Errorf("scheduler: %s: slice lengths differ (dst %d, x %d, other %d)", name, len(dst), len(x), len(y))
	}
	a32, b32 := float32(a), float32(b)
	for i := range dst {
		dst[i] = float32(a32*x[i]) + float32(b32*y[i])
	}
	return nil
}

// X0FromVelocity returns the data prediction x0 at time t from x_t and the velocity v (x − t·v on Linear).
func X0FromVelocity(p Path, t float64, x, v float64) float64 {
	a, b := x0FromVelocityCoefs(pathOrLinear(p), t)
	return pathCombine(a, b, x, v)
}

// EpsFromVelocity returns the noise prediction ε at time t from x_t and v (x + (1−t)·v on Linear).
func EpsFromVelocity(p Path, t float64, x, v float64) float64 {
	a, b := epsFromVelocityCoefs(pathOrLinear(p), t)
	return pathCombine(a, b, x, v)
}

// VelocityFromX0 returns v at time t from x_t and a data prediction x0 ((x − x0)/t on Linear); t must be > 0.
func VelocityFromX0(p Path, t float64, x, x0 float64) float64 {
	a, b := velocityFromX0Coefs(pathOrLinear(p), t)
	return pathCombine(a, b, x, x0)
}

// VelocityFromEps returns v at time t from x_t and a noise prediction ε; α(t) must be > 0 (t < 1).
func VelocityFromEps(p Path, t float64, x, eps float64) float64 {
	a, b := velocityFromEpsCoefs(pathOrLinear(p), t)
	return pathCombine(a, b, x, eps)
}

// X0FromEps returns x0 = (x − σ·ε)/α; α(t) must be > 0 (t < 1).
func X0FromEps(p Path, t float64, x, eps float64) float64 {
	a, b := x0FromEpsCoefs(pathOrLinear(p), t)
	return pathCombine(a, b, x, eps)
}

// EpsFromX0 returns ε = (x − α·x0)/σ; σ(t) must be > 0 (t > 0).
func EpsFromX0(p Path, t float64, x, x0 float64) float64 {
	a, b := epsFromX0Coefs(pathOrLinear(p), t)
	return pathCombine(a, b, x, x0)
}

// X0FromVelocitySlice is X0FromVelocity over float32 slices in float32 arithmetic: on Linear,
// dst = f32(x − f32(t·v)), torch's float32 result bit for bit when t is a float32 value.
func X0FromVelocitySlice(p Path, t float64, dst, x, v []float32) error {
	a, b := x0FromVelocityCoefs(pathOrLinear(p), t)
	return pathCombineSlice("X0FromVelocity", a, b, dst, x, v)
}

// EpsFromVelocitySlice is EpsFromVelocity over float32 slices.
func EpsFromVelocitySlice(p Path, t float64, dst, x, v []float32) error {
	a, b := epsFromVelocityCoefs(pathOrLinear(p), t)
	return pathCombineSlice("EpsFromVelocity", a, b, dst, x, v)
}

// VelocityFromX0Slice is VelocityFromX0 over float32 slices.
func VelocityFromX0Slice(p Path, t float64, dst, x, x0 []float32) error {
	a, b := velocityFromX0Coefs(pathOrLinear(p), t)
	return pathCombineSlice("VelocityFromX0", a, b, dst, x, x0)
}

// VelocityFromEpsSlice is VelocityFromEps over float32 slices.
func VelocityFromEpsSlice(p Path, t float64, dst, x, eps []float32) error {
	a, b := velocityFromEpsCoefs(pathOrLinear(p), t)
	return pathCombineSlice("VelocityFromEps", a, b, dst, x, eps)
}

// X0FromEpsSlice is X0FromEps over float32 slices.
func X0FromEpsSlice(p Path, t float64, dst, x, eps []float32) error {
	a, b := x0FromEpsCoefs(pathOrLinear(p), t)
	return pathCombineSlice("X0FromEps", a, b, dst, x, eps)
}

// EpsFromX0Slice is EpsFromX0 over float32 slices.
func EpsFromX0Slice(p Path, t float64, dst, x, x0 []float32) error {
	a, b := epsFromX0Coefs(pathOrLinear(p), t)
	return pathCombineSlice("EpsFromX0", a, b, dst, x, x0)
}

// LogSNR returns the half log-SNR λ(t) = log α(t) − log σ(t) (−∞ at α = 0, +∞ at σ = 0), the time
// variable of DPM-Solver and UniPC (diffusers computes it the same way; ComfyUI's CONST
// sigma_to_half_log_snr is −logit(σ) = log((1−σ)/σ), the same function on Linear).
func LogSNR(p Path, t float64) float64 {
	p = pathOrLinear(p)
	return math.Log(p.Alpha(t)) - math.Log(p.Sigma(t))
}

// TimeAtLogSNR inverts LogSNR: the t in [0, 1] with λ(t) = lam (lam = −∞ → 1, +∞ → 0). Linear uses
// ComfyUI's 1/(e^λ + 1), Cosine (2/π)·atan(e^−λ); any other path is bisected, which assumes λ decreases in t.
func TimeAtLogSNR(p Path, lam float64) float64 {
	p = pathOrLinear(p)
	if inv, ok := p.(interface{ timeAt(float64) float64 }); ok {
		return inv.timeAt(lam)
	}
	switch {
	case math.IsInf(lam, -1):
		return 1
	case math.IsInf(lam, 1):
		return 0
	}
	lo, hi := 0.0, 1.0
	for range 200 {
		mid := (lo + hi) / 2
		if mid == lo || mid == hi {
			break
		}
		if LogSNR(p, mid) > lam {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// ddimCoefs gives the deterministic (DDIM, η = 0) move from time t to time s for a known x0:
// x_s = (σ_s/σ_t)·x + (α_s − α_t·σ_s/σ_t)·x0. On Linear it is ComfyUI's RF form c·x + (1−c)·x0 with
// c = s/t (sample_euler_ancestral_RF). σ(t) must be > 0.
func ddimCoefs(p Path, t, s float64) (cx, cx0 float64) {
	if _, ok := p.(linearPath); ok {
		c := s / t
		return c, 1 - c
	}
	c := p.Sigma(s) / p.Sigma(t)
	return c, p.Alpha(s) - c*p.Alpha(t)
}
