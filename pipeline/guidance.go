package pipeline

import (
	"errors"
	"fmt"
	"math"

	"github.com/rflowrt/rflow/scheduler"
)

// Guidance arithmetic, in float32 with torch's rounding order (flow-sampling.md §3.3, §3.4, §4.4, §9.3):
// the rules themselves are scheduler's pure functions; this file picks and checks them for a request.

// ErrGuidanceRule is wrapped when a request's guidance rule is unknown or cannot run as asked.
var ErrGuidanceRule = errors.New("guidance rule unsupported")

// cfgCombine is classifier-free guidance, dst = u + g·(c − u) in float32 (scheduler.CFG). dst may
// alias u or c.
func cfgCombine(dst, u, c []float32, g float32) { scheduler.CFG(dst, u, c, g) }

// slgAdd is skip-layer guidance, v += (vc − vskip)·scale in float32 (scheduler.SkipLayerAdd).
func slgAdd(v, vc, vskip []float32, scale float32) { scheduler.SkipLayerAdd(v, vc, vskip, scale) }

// slgActive reports whether SLG applies at 0-based step i of n (diffusers: i > n·start and i < n·stop).
func slgActive(i, n int, start, stop float64) bool {
	return float64(i) > float64(n)*start && float64(i) < float64(n)*stop
}

// resolveGuidanceRule parses Request.GuidanceRule: any rule but CFG needs CFG to be on (SD3
// CFGScale > 1, FLUX true CFG with a negative prompt), and CFG++ runs with the Euler sampler only. For
// SD3, CFG++ turns CFG on for any CFGScale > 0: its scale λ is meant in (0, 1].
func (p *Pipeline) resolveGuidanceRule(pl *plan) error {
	rule, err := scheduler.ParseGuidanceRule(pl.req.GuidanceRule)
	if err != nil {
		return fmt.Errorf("pipeline: %w: %w", ErrGuidanceRule, err)
	}
	pl.rule = rule
	if rule.IsCFG() {
		return nil
	}
	if rule.EulerOnly() && !pl.flux && pl.req.CFGScale > 0 {
		pl.doCFG = true // CFG++'s λ lives in (0, 1]: the unconditional pass runs whatever the scale
	}
	if !pl.doCFG && !pl.doTrueCFG {
		what := "CFGScale > 1"
		if pl.flux {
			what = "FLUX true CFG (TrueCFGScale > 1 and a negative prompt)"
		}
		return fmt.Errorf("pipeline: %w: %s combines two predictions and needs %s", ErrGuidanceRule, rule.Kind, what)
	}
	if rule.EulerOnly() && pl.sampler.Name != "euler" {
		return fmt.Errorf("pipeline: %w: %s is defined for the euler sampler, not %s", ErrGuidanceRule, rule.Kind, pl.sampler.Name)
	}
	return nil
}

// guidanceRuleName is the rule for Resolved ("" for plain CFG, so earlier metadata stays as it was).
func (pl *plan) guidanceRuleName() string {
	if pl.rule.IsCFG() {
		return ""
	}
	return pl.rule.String()
}

// newGuider makes the denoiser's rule state (nil for plain CFG, which cfgCombine runs bit for bit).
func (d *denoiser) newGuider(pl *plan) error {
	if pl.rule.IsCFG() {
		return nil
	}
	g, err := pl.rule.NewGuider(d.b, scheduler.Linear)
	if err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	d.guider = g
	if d.flux && pl.rule.NeedsX() {
		d.xPacked = make([]float32, d.n)
	}
	return nil
}

// guide combines the unconditional and conditional predictions of the call in progress (d.eval) with
// the request's rule; x is the latents in the predictions' layout (nil when the rule does not read it).
func (d *denoiser) guide(dst, u, c, x []float32, g float32) error {
	if d.guider == nil {
		cfgCombine(dst, u, c, g)
		return nil
	}
	if err := d.guider.Combine(dst, c, u, x, float64(g), d.eval); err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	return nil
}

// NonFiniteError reports a NaN or infinity that a step or a component produced: rflow stops there
// rather than return a black or noisy image.
type NonFiniteError struct {
	// What is the value checked: "transformer output", "latents after the step", "decoded pixels", …
	What string
	// Step (1-based) and Total locate a denoising step; 0 outside the loop. Sigma is the step's σ.
	Step, Total int
	Sigma       float64
	Index       int
	Value       float32
	// Hint says what usually helps.
	Hint string
}

func (e *NonFiniteError) Error() string {
	kind := "NaN"
	if math.IsInf(float64(e.Value), 0) {
		kind = fmt.Sprint(e.Value)
	}
	where := ""
	if e.Total > 0 {
		where = fmt.Sprintf(" at step %d of %d (σ=%.4g)", e.Step, e.Total, e.Sigma)
	}
	msg := fmt.Sprintf("pipeline: %s%s contains %s at index %d", e.What, where, kind, e.Index)
	if e.Hint != "" {
		msg += ": " + e.Hint
	}
	return msg
}

// hintPrecision is the usual remedy for a model whose arithmetic overflows.
const hintPrecision = "try fp32 I/O or another provider"

// resolveStepCache parses Request.StepCache.
func (p *Pipeline) resolveStepCache(pl *plan) error {
	c, err := scheduler.ParseStepCache(pl.req.StepCache)
	if err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	pl.cache = c
	return nil
}

// stepCacheName is the step cache for Resolved ("" for none).
func (pl *plan) stepCacheName() string {
	if pl.cache.Kind == scheduler.StepCacheOff {
		return ""
	}
	return pl.cache.String()
}
