package scheduler

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Guidance rules combine a model's conditional and unconditional velocity predictions (v_c, v_u) of
// one call into the velocity the sampler integrates. They are pure arithmetic on the two predictions,
// the latents x and the call's Eval; APG keeps a momentum buffer across the calls of one generation,
// which is why a rule is instantiated per generation (GuidanceRule.NewGuider).

// GuidanceKind names a rule.
type GuidanceKind string

// The guidance rules.
const (
	// GuidanceCFG is classifier-free guidance (Ho & Salimans 2022), v = v_u + w·(v_c − v_u): SD3's
	// guidance_scale and FLUX's true_cfg_scale, float32 with diffusers' rounding order.
	GuidanceCFG GuidanceKind = "cfg"
	// GuidanceCFGZeroStar is CFG-Zero* (Fan et al. 2025, arXiv:2503.18886, eq. 8 and §4.2): per image
	// the optimised scale s* = ⟨v_c, v_u⟩/‖v_u‖², v = s*·v_u + w·(v_c − s*·v_u), and v = 0 on the
	// first ZeroSteps steps ("zero-init"; the authors' code zeroes step 0, zero_init_steps = 0).
	GuidanceCFGZeroStar GuidanceKind = "cfg-zero-star"
	// GuidanceAPG is adaptive projected guidance (Sadat et al. 2024, arXiv:2410.02416, Alg. 1) on the
	// data predictions D = x0: Δ = D_c − D_u, with momentum Δ ← Δ + β·Δ_prev (running sum of every
	// call), rescaled to norm ≤ r per image, split into Δ∥ (along D_c) and Δ⊥, and
	// D = D_c + (w − 1)·(Δ⊥ + η·Δ∥). η = 1, r = ∞, β = 0 is CFG. Defaults are ComfyUI's APG node
	// (η = 1, norm_threshold = 5, momentum = 0); that node returns D_c + w·(Δ⊥ + η·Δ∥), the paper's
	// formula at w + 1, so ComfyUI's APG at cfg w matches this rule at w + 1.
	GuidanceAPG GuidanceKind = "apg"
	// GuidanceCFGPP is CFG++ for the Euler sampler (Chung et al. 2024, arXiv:2406.08070, Alg. 1 in the
	// flow form): the step re-noises the guided x0 with the unconditional noise prediction,
	// x_next = (1 − σn)·x0_g + σn·ε_u, x0_g = x0_u + λ·(x0_c − x0_u). As a velocity for Euler's
	// x_next = x + (σn − σ)·v this is v = v_u + λ·σ(1 − σn)/(σ − σn)·(v_c − v_u) (Linear path); λ is
	// the guidance scale, meant in [0, 1] (ComfyUI's *_cfg_pp samplers take their cfg the same way).
	GuidanceCFGPP GuidanceKind = "cfg++"
)

// GuidanceRule is a parsed --guidance-rule: the kind and its parameters. The zero value is CFG.
type GuidanceRule struct {
	Kind GuidanceKind
	// ZeroSteps is CFG-Zero*'s number of zero-initialised steps (default 1).
	ZeroSteps int
	// Eta, NormThreshold and Momentum are APG's η, r (0 = no rescaling) and β.
	Eta, NormThreshold, Momentum float64
}

// ErrUnknownGuidance is wrapped by ParseGuidanceRule for a name that is no rule.
var ErrUnknownGuidance = errors.New("unknown guidance rule")

// GuidanceRuleNames lists the rule names (for --help).
func GuidanceRuleNames() []string {
	return []string{string(GuidanceCFG), string(GuidanceCFGZeroStar), string(GuidanceAPG), string(GuidanceCFGPP)}
}

// guidanceAliases are the other spellings in use (ComfyUI node names, paper names).
var guidanceAliases = map[string]GuidanceKind{
	"": GuidanceCFG, "cfg-zero*": GuidanceCFGZeroStar, "cfgzerostar": GuidanceCFGZeroStar, "cfg_zero_star": GuidanceCFGZeroStar,
	"cfg-zero": GuidanceCFGZeroStar, "cfgpp": GuidanceCFGPP, "cfg_pp": GuidanceCFGPP,
}

// DefaultGuidanceRule returns the rule kind with its defaults.
func DefaultGuidanceRule(k GuidanceKind) GuidanceRule {
	switch k {
	case GuidanceCFGZeroStar:
		return GuidanceRule{Kind: k, ZeroSteps: 1}
	case GuidanceAPG:
		return GuidanceRule{Kind: k, Eta: 1, NormThreshold: 5}
	}
	return GuidanceRule{Kind: k}
}

// ParseGuidanceRule reads "name[:key=value,…]": cfg; cfg-zero-star (cfg-zero*) with zero-steps=K;
// apg with eta=, norm-threshold= (norm=), momentum=; cfg++ (cfgpp). Names ignore case. Unknown names
// or keys and out-of-range values are errors that say what is allowed.
func ParseGuidanceRule(s string) (GuidanceRule, error) {
	name, params, _ := strings.Cut(strings.TrimSpace(s), ":")
	key := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(name)), " ", "-")
	k := GuidanceKind(key)
	if a, ok := guidanceAliases[key]; ok {
		k = a
	}
	valid := false
	for _, n := range GuidanceRuleNames() {
		valid = valid || string(k) == n
	}
	if !valid {
		return GuidanceRule{}, fmt.Errorf("scheduler: %w %q (valid: %s)", ErrUnknownGuidance, name, strings.Join(GuidanceRuleNames(), ", "))
	}
	r := DefaultGuidanceRule(k)
	if strings.TrimSpace(params) == "" {
		return r, nil
	}
	for _, kv := range strings.Split(params, ",") {
		pk, pv, ok := strings.Cut(strings.TrimSpace(kv), "=")
		pk = strings.ToLower(strings.TrimSpace(pk))
		v, err := strconv.ParseFloat(strings.TrimSpace(pv), 64)
		if !ok || err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return r, fmt.Errorf("scheduler: guidance rule %q: %q: want key=number", s, kv)
		}
		switch {
		case k == GuidanceCFGZeroStar && (pk == "zero-steps" || pk == "zero_steps" || pk == "k"):
			if v < 0 || v != math.Trunc(v) || v > MaxSteps {
				return r, fmt.Errorf("scheduler: guidance rule %q: zero-steps must be a whole number ≥ 0", s)
			}
			r.ZeroSteps = int(v)
		case k == GuidanceAPG && pk == "eta":
			r.Eta = v
		case k == GuidanceAPG && (pk == "norm-threshold" || pk == "norm_threshold" || pk == "norm" || pk == "r"):
			if v < 0 {
				return r, fmt.Errorf("scheduler: guidance rule %q: norm-threshold must be ≥ 0 (0 turns it off)", s)
			}
			r.NormThreshold = v
		case k == GuidanceAPG && (pk == "momentum" || pk == "beta"):
			if v <= -1 || v >= 1 {
				return r, fmt.Errorf("scheduler: guidance rule %q: momentum must be in (−1, 1)", s)
			}
			r.Momentum = v
		default:
			return r, fmt.Errorf("scheduler: guidance rule %q: %s takes no parameter %q (%s)", s, k, pk, guidanceParams(k))
		}
	}
	return r, nil
}

func guidanceParams(k GuidanceKind) string {
	switch k {
	case GuidanceCFGZeroStar:
		return "it takes zero-steps"
	case GuidanceAPG:
		return "it takes eta, norm-threshold, momentum"
	}
	return "it takes none"
}

// String is the canonical spelling ParseGuidanceRule reads back: the kind with every parameter.
func (r GuidanceRule) String() string {
	k := r.Kind
	if k == "" {
		k = GuidanceCFG
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	switch k {
	case GuidanceCFGZeroStar:
		return fmt.Sprintf("%s:zero-steps=%d", k, r.ZeroSteps)
	case GuidanceAPG:
		return fmt.Sprintf("%s:eta=%s,norm-threshold=%s,momentum=%s", k, f(r.Eta), f(r.NormThreshold), f(r.Momentum))
	}
	return string(k)
}

// IsCFG reports whether the rule is plain CFG (the zero value included).
func (r GuidanceRule) IsCFG() bool { return r.Kind == "" || r.Kind == GuidanceCFG }

// EulerOnly reports whether the rule is defined for the Euler sampler alone (CFG++ folds the step's
// re-noising into the velocity, which only an Euler step integrates as intended).
func (r GuidanceRule) EulerOnly() bool { return r.Kind == GuidanceCFGPP }

// NeedsX reports whether Combine reads the latents x (APG works on the x0 predictions).
func (r GuidanceRule) NeedsX() bool { return r.Kind == GuidanceAPG }

// Guider is a rule's per-generation state.
type Guider struct {
	rule GuidanceRule
	rows int
	path Path
	avg  []float64 // APG's momentum buffer (Δ of the data predictions)
}

// NewGuider returns the rule's state for one generation of rows images (each a contiguous block of
// the batch; the per-image inner products and norms run over a block) on path p (nil: Linear).
func (r GuidanceRule) NewGuider(rows int, p Path) (*Guider, error) {
	if rows < 1 {
		return nil, fmt.Errorf("scheduler: guidance: %d rows, want ≥ 1", rows)
	}
	if r.Kind == "" {
		r.Kind = GuidanceCFG
	}
	if _, err := ParseGuidanceRule(r.String()); err != nil {
		return nil, err
	}
	return &Guider{rule: r, rows: rows, path: pathOrLinear(p)}, nil
}

// Rule returns the guider's rule.
func (g *Guider) Rule() GuidanceRule { return g.rule }

// Combine writes the guided velocity of call e into dst from the conditional and unconditional
// predictions at the latents x (x may be nil unless the rule NeedsX), with guidance scale w. dst may
// alias cond or uncond. All slices hold the same number of values, a multiple of the rows.
func (g *Guider) Combine(dst, cond, uncond, x []float32, w float64, e Eval) error {
	n := len(dst)
	if len(cond) != n || len(uncond) != n || n%g.rows != 0 || (g.rule.NeedsX() && len(x) != n) {
		return fmt.Errorf("scheduler: guidance %s: lengths dst %d, cond %d, uncond %d, x %d for %d rows",
			g.rule.Kind, n, len(cond), len(uncond), len(x), g.rows)
	}
	switch g.rule.Kind {
	case GuidanceCFGZeroStar:
		g.cfgZeroStar(dst, cond, uncond, w, e)
	case GuidanceAPG:
		if !(e.T > 0) {
			CFG(dst, uncond, cond, float32(w)) // x0 = x − σ·v carries no guidance at σ = 0
			return nil
		}
		g.apg(dst, cond, uncond, x, w, e)
	case GuidanceCFGPP:
		return cfgPP(dst, cond, uncond, w, e)
	default:
		CFG(dst, uncond, cond, float32(w))
	}
	return nil
}

// CFG is classifier-free guidance, dst = u + g·(c − u) with every operation rounded to float32 (SD3's
// v = vu + guidance_scale·(vc − vu) and FLUX true CFG's v = v_neg + s·(v − v_neg), torch's order).
// dst may alias u or c.
func CFG(dst, u, c []float32, g float32) {
	c = c[:len(u)]
	dst = dst[:len(u)]
	for i, ui := range u {
		d := c[i] - ui
		s := float32(g * d) // the conversions round each operation and forbid fused multiply-adds
		dst[i] = ui + s
	}
}

// SkipLayerAdd is skip-layer guidance's term (SD3.5, diffusers' skip_guidance_layers):
// v += (vc − vskip)·scale in float32; it adds to whatever rule made v.
func SkipLayerAdd(v, vc, vskip []float32, scale float32) {
	vc = vc[:len(v)]
	vskip = vskip[:len(v)]
	for i := range v {
		d := vc[i] - vskip[i]
		s := float32(d * scale) // no fused multiply-add
		v[i] += s
	}
}

func (g *Guider) cfgZeroStar(dst, cond, uncond []float32, w float64, e Eval) {
	if e.Index < g.rule.ZeroSteps {
		clear(dst)
		return
	}
	m := len(dst) / g.rows
	for r := range g.rows {
		c, u, d := cond[r*m:(r+1)*m], uncond[r*m:(r+1)*m], dst[r*m:(r+1)*m]
		var cu, uu float64
		for i := range u {
			cu += float64(c[i]) * float64(u[i])
			uu += float64(u[i]) * float64(u[i])
		}
		s := cu / (uu + 1e-8) // the authors' 1e-8 keeps a zero v_u finite
		for i := range d {
			us := s * float64(u[i])
			d[i] = float32(us + w*(float64(c[i])-us))
		}
	}
}

// apg works on x0 = a·x + b·v (the path's velocity→x0 conversion) and converts the guided x0 back.
func (g *Guider) apg(dst, cond, uncond, x []float32, w float64, e Eval) {
	n, m := len(dst), len(dst)/g.rows
	a, b := x0FromVelocityCoefs(g.path, e.T)
	if g.avg == nil || e.NFE == 1 {
		g.avg = make([]float64, n) // a new run starts with an empty momentum buffer
	}
	r := g.rule
	for row := range g.rows {
		lo, hi := row*m, (row+1)*m
		var dd float64
		for i := lo; i < hi; i++ {
			delta := b * (float64(cond[i]) - float64(uncond[i])) // Δx0: the a·x terms cancel
			g.avg[i] = delta + r.Momentum*g.avg[i]
			dd += g.avg[i] * g.avg[i]
		}
		scale := 1.0
		if norm := math.Sqrt(dd); r.NormThreshold > 0 && norm > r.NormThreshold {
			scale = r.NormThreshold / norm
		}
		var dc, cc float64 // ⟨Δ, D_c⟩ and ‖D_c‖²
		for i := lo; i < hi; i++ {
			dc0 := a*float64(x[i]) + b*float64(cond[i])
			dc += scale * g.avg[i] * dc0
			cc += dc0 * dc0
		}
		par := 0.0
		if cc > 0 {
			par = dc / cc
		}
		for i := lo; i < hi; i++ {
			dc0 := a*float64(x[i]) + b*float64(cond[i])
			delta := scale * g.avg[i]
			p := par * dc0
			upd := (delta - p) + r.Eta*p
			x0 := dc0 + (w-1)*upd
			dst[i] = float32((x0 - a*float64(x[i])) / b) // v = (x0 − a·x)/b
		}
	}
}

func cfgPP(dst, cond, uncond []float32, w float64, e Eval) error {
	if !(e.Sigma > e.SigmaNext) {
		return fmt.Errorf("scheduler: guidance cfg++: step σ %v → %v is not a decreasing step", e.Sigma, e.SigmaNext)
	}
	k := w * e.T * (1 - e.SigmaNext) / (e.T - e.SigmaNext)
	for i := range dst {
		u := float64(uncond[i])
		dst[i] = float32(u + k*(float64(cond[i])-u))
	}
	return nil
}
