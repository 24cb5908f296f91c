package scheduler

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Step caching skips model calls whose output is predicted to change little since the last computed
// one, and fills them from what was computed: no graph change, fewer transformer runs.
//
// The criterion is EasyCache's (Zhou et al. 2025, "EasyCache: Training-Free Video Diffusion
// Acceleration via Runtime-Adaptive Caching", arXiv:2507.02860): the transformation rate
// k = ‖v_a − v_b‖/‖x_a − x_b‖ of the last two computed calls says how much the output moves per unit of
// input motion, so the relative output change of a new call at x is predicted as
// ε = k·‖x − x_last‖/‖v_last‖; the call is skipped while ε < threshold. What fills a skipped call:
//   - easycache: the last computed velocity, reused;
//   - taylor: a first-order forecast in σ from the last two computed calls,
//     v(σ) ≈ v_last + (σ − σ_last)·(v_last − v_prev)/(σ_last − σ_prev) (TaylorSeer, Liu et al. 2025,
//     arXiv:2503.06923, at order 1; Spectrum-style forecasting of features from their trajectory).
// The first Warmup steps and the last step are always computed, and so is every call after MaxSkip
// skips in a row.

// StepCacheKind names a cache.
type StepCacheKind string

// The caches.
const (
	StepCacheOff       StepCacheKind = ""
	StepCacheEasyCache StepCacheKind = "easycache"
	StepCacheTaylor    StepCacheKind = "taylor"
)

// StepCacheConfig is a parsed --step-cache.
type StepCacheConfig struct {
	Kind StepCacheKind
	// Threshold is the predicted relative output change below which a call is skipped.
	Threshold float64
	// Warmup is the number of first steps always computed (≥ 2: the rate needs two computed calls).
	Warmup int
	// MaxSkip bounds the skips in a row.
	MaxSkip int
}

// DefaultStepCache returns the kind with rflow's defaults (threshold 0.1, warmup 2, at most 3 skips in a
// row).
func DefaultStepCache(k StepCacheKind) StepCacheConfig {
	if k == StepCacheOff {
		return StepCacheConfig{}
	}
	return StepCacheConfig{Kind: k, Threshold: 0.1, Warmup: 2, MaxSkip: 3}
}

// ParseStepCache reads "off", "easycache[:threshold]" or "taylor[:threshold]", or with keys:
// "easycache:threshold=0.1,warmup=2,max-skip=3".
func ParseStepCache(s string) (StepCacheConfig, error) {
	name, params, _ := strings.Cut(strings.TrimSpace(s), ":")
	k := StepCacheKind(strings.ToLower(strings.TrimSpace(name)))
	switch k {
	case "", "off", "none":
		if params != "" {
			return StepCacheConfig{}, fmt.Errorf("scheduler: step cache %q: off takes no parameters", s)
		}
		return StepCacheConfig{}, nil
	case StepCacheEasyCache, StepCacheTaylor:
	default:
		return StepCacheConfig{}, fmt.Errorf("scheduler: step cache %q: want off, easycache or taylor", name)
	}
	c := DefaultStepCache(k)
	if strings.TrimSpace(params) == "" {
		return c, nil
	}
	for _, kv := range strings.Split(params, ",") {
		key, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			key, val = "threshold", key
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return c, fmt.Errorf("scheduler: step cache %q: %q: want key=number ≥ 0", s, kv)
		}
		switch strings.ToLower(strings.TrimSpace(key)) {
		case "threshold", "t":
			c.Threshold = v
		case "warmup":
			if v < 2 || v != math.Trunc(v) {
				return c, fmt.Errorf("scheduler: step cache %q: warmup must be a whole number ≥ 2", s)
			}
			c.Warmup = int(v)
		case "max-skip", "max_skip":
			if v < 1 || v != math.Trunc(v) {
				return c, fmt.Errorf("scheduler: step cache %q: max-skip must be a whole number ≥ 1", s)
			}
			c.MaxSkip = int(v)
		default:
			return c, fmt.Errorf("scheduler: step cache %q: unknown key %q (threshold, warmup, max-skip)", s, key)
		}
	}
	return c, nil
}

// String is the canonical spelling ParseStepCache reads back ("off" for none).
func (c StepCacheConfig) String() string {
	if c.Kind == StepCacheOff {
		return "off"
	}
	return fmt.Sprintf("%s:threshold=%s,warmup=%d,max-skip=%d", c.Kind, strconv.FormatFloat(c.Threshold, 'g', -1, 64), c.Warmup, c.MaxSkip)
}

// CachedModel is a Model with a step cache in front; make one per generation.
type CachedModel struct {
	m   Model
	cfg StepCacheConfig
	// the last two computed calls: inputs, outputs and σ (a = newest)
	xa, xb, va, vb []float32
	sa, sb         float64
	have           int // computed calls held (0, 1, 2)
	rate           float64
	run            int // skips in a row
	calls, skipped int
}

// NewCachedModel puts cfg's cache in front of m (cfg.Kind off: every call goes through).
func NewCachedModel(m Model, cfg StepCacheConfig) *CachedModel {
	return &CachedModel{m: m, cfg: cfg}
}

// Calls is the number of calls that reached the wrapped model, Skipped the number filled by the cache.
func (c *CachedModel) Calls() int   { return c.calls }
func (c *CachedModel) Skipped() int { return c.skipped }

// Velocity implements Model.
func (c *CachedModel) Velocity(ctx context.Context, dst, x []float32, e Eval) error {
	if c.cfg.Kind != StepCacheOff && c.canSkip(x, e) {
		c.fill(dst, e.T)
		c.skipped++
		c.run++
		return nil
	}
	if err := c.m.Velocity(ctx, dst, x, e); err != nil {
		return err
	}
	c.calls++
	c.run = 0
	if c.cfg.Kind != StepCacheOff {
		c.remember(dst, x, e.T)
	}
	return nil
}

// canSkip applies the warmup, last-step and run-length rules, then EasyCache's criterion.
func (c *CachedModel) canSkip(x []float32, e Eval) bool {
	if c.have < 2 || e.Index < c.cfg.Warmup || (e.Total > 0 && e.Index == e.Total-1) || c.run >= c.cfg.MaxSkip || len(x) != len(c.xa) {
		return false
	}
	vn := norm(c.va)
	if !(vn > 0) {
		return false
	}
	return c.rate*distance(x, c.xa)/vn < c.cfg.Threshold
}

// fill writes the cached or forecast velocity at σ.
func (c *CachedModel) fill(dst []float32, sigma float64) {
	if c.cfg.Kind == StepCacheTaylor && c.sa != c.sb {
		w := (sigma - c.sa) / (c.sa - c.sb)
		for i := range dst {
			a := float64(c.va[i])
			dst[i] = float32(a + w*(a-float64(c.vb[i])))
		}
		return
	}
	copy(dst, c.va)
}

// remember shifts a computed call into the history and updates the transformation rate.
func (c *CachedModel) remember(v, x []float32, sigma float64) {
	if len(c.xa) != len(x) {
		c.xa, c.xb = make([]float32, len(x)), make([]float32, len(x))
		c.va, c.vb = make([]float32, len(x)), make([]float32, len(x))
		c.have = 0
	}
	c.xa, c.xb, c.va, c.vb, c.sb = c.xb, c.xa, c.vb, c.va, c.sa
	copy(c.xa, x)
	copy(c.va, v)
	c.sa = sigma
	c.have = min(c.have+1, 2)
	if c.have == 2 {
		dx, dv := distance(c.xa, c.xb), distance(c.va, c.vb)
		switch {
		case dx > 0:
			c.rate = dv / dx
		case dv > 0:
			c.rate = math.Inf(1) // the output moved while the input did not (CFG-Zero*'s zeroed first step): no prediction
		default:
			c.rate = 0
		}
	}
}

func norm(a []float32) float64 {
	s := 0.0
	for _, v := range a {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s)
}

func distance(a, b []float32) float64 {
	s := 0.0
	for i, v := range a {
		d := float64(v) - float64(b[i])
		s += d * d
	}
	return math.Sqrt(s)
}
