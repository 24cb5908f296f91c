package pipeline

import (
	"fmt"
	"math"
)

// Guidance arithmetic, in float32 with torch's rounding order (flow-sampling.md §3.3, §3.4, §4.4, §9.3).

// cfgCombine is classifier-free guidance, dst = u + g·(c − u) with every operation rounded to float32:
// SD3's v = vu + guidance_scale·(vc − vu) and FLUX true CFG's v = v_neg + s·(v − v_neg). dst may alias u
// or c.
func cfgCombine(dst, u, c []float32, g float32) {
	c = c[:len(u)]
	dst = dst[:len(u)]
	for i, ui := range u {
		d := c[i] - ui
		s := float32(g * d) // the conversions round each operation and forbid fused multiply-adds
		dst[i] = ui + s
	}
}

// slgAdd is skip-layer guidance, v += (vc − vskip)·scale (diffusers: noise_pred + (noise_pred_text −
// noise_pred_skip_layers)·scale), in float32.
func slgAdd(v, vc, vskip []float32, scale float32) {
	vc = vc[:len(v)]
	vskip = vskip[:len(v)]
	for i := range v {
		d := vc[i] - vskip[i]
		s := float32(d * scale) // no fused multiply-add
		v[i] += s
	}
}

// slgActive reports whether SLG applies at 0-based step i of n (diffusers: i > n·start and i < n·stop).
func slgActive(i, n int, start, stop float64) bool {
	return float64(i) > float64(n)*start && float64(i) < float64(n)*stop
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
