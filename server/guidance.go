package server

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/rflowrt/rflow/pipeline"
	"github.com/rflowrt/rflow/scheduler"
)

// The guidance rule, the step cache and skip-layer guidance are rflow's extension fields on every
// generation API (A1111 and OpenAI have none of them), spelled as rflow txt2img's flags.
var guidanceFields = []string{"guidance_rule", "step_cache", "skip_layers", "slg_scale", "skip_layer_start", "skip_layer_end"}

// What the fields accept, for the 400 answers (the forms of the CLI's --guidance-rule and --step-cache).
const (
	acceptedRules  = "cfg, cfg-zero-star[:zero-steps=K], apg[:eta=E,norm-threshold=R,momentum=B], cfg++ (euler only)"
	acceptedCaches = "off, easycache[:THRESHOLD], taylor[:THRESHOLD] (keys threshold=, warmup=N ≥ 2, max-skip=N ≥ 1)"
)

// guidanceRequest are the extension fields as JSON carries them; each API's request embeds it. A
// field left out takes the server's default (rflow serve --guidance-rule, --step-cache).
type guidanceRequest struct {
	GuidanceRule   *string  `json:"guidance_rule"`
	StepCache      *string  `json:"step_cache"`
	SkipLayers     []int    `json:"skip_layers"`
	SLGScale       *float64 `json:"slg_scale"`
	SkipLayerStart *float64 `json:"skip_layer_start"`
	SkipLayerEnd   *float64 `json:"skip_layer_end"`
}

// guidanceParams are a request's guidance settings, resolved: the rule and the cache in their
// canonical spellings ("" for plain CFG and no cache, as pipeline.Resolved records them).
type guidanceParams struct {
	Rule, Cache string
	// ruleDefault: Rule is the server's default, not the request's, so a request that runs no CFG
	// runs without it (with a note) instead of failing.
	ruleDefault bool
	// SLGLayers, when not empty, turn on skip-layer guidance (pipeline.Request.SLGLayers).
	SLGLayers                   []int
	SLGScale, SLGStart, SLGStop float64
}

// canonicalRule is a guidance rule's canonical spelling ("" for plain CFG).
func canonicalRule(s string) (string, error) {
	r, err := scheduler.ParseGuidanceRule(s)
	if err != nil {
		return "", err
	}
	if r.IsCFG() {
		return "", nil
	}
	return r.String(), nil
}

// canonicalCache is a step cache's canonical spelling ("" for none).
func canonicalCache(s string) (string, error) {
	c, err := scheduler.ParseStepCache(s)
	if err != nil {
		return "", err
	}
	if c.Kind == scheduler.StepCacheOff {
		return "", nil
	}
	return c.String(), nil
}

// checkDefaults resolves Options.GuidanceRule and Options.StepCache to their canonical spellings.
func (o *Options) checkDefaults() error {
	var err error
	if o.GuidanceRule, err = canonicalRule(o.GuidanceRule); err != nil {
		return fmt.Errorf("server: default guidance rule: %w", err)
	}
	if o.StepCache, err = canonicalCache(o.StepCache); err != nil {
		return fmt.Errorf("server: default step cache: %w", err)
	}
	return nil
}

// guidance reads the extension fields, the server's defaults filling what is left out. Skip-layer
// guidance takes the CLI's defaults (scale 2.8, steps 0.01 to 0.2 of the schedule).
func (s *Server) guidance(g guidanceRequest) (guidanceParams, error) {
	out := guidanceParams{Rule: s.o.GuidanceRule, Cache: s.o.StepCache, ruleDefault: s.o.GuidanceRule != ""}
	var err error
	if g.GuidanceRule != nil {
		out.ruleDefault = false
		if out.Rule, err = canonicalRule(*g.GuidanceRule); err != nil {
			return out, badRequest("guidance_rule %q: %s; accepted: %s", *g.GuidanceRule, schedulerMessage(err), acceptedRules)
		}
	}
	if g.StepCache != nil {
		if out.Cache, err = canonicalCache(*g.StepCache); err != nil {
			return out, badRequest("step_cache %q: %s; accepted: %s", *g.StepCache, schedulerMessage(err), acceptedCaches)
		}
	}
	if len(g.SkipLayers) == 0 {
		if g.SLGScale != nil || g.SkipLayerStart != nil || g.SkipLayerEnd != nil {
			return out, badRequest("slg_scale, skip_layer_start and skip_layer_end need skip_layers (the transformer blocks " +
				"skip-layer guidance skips, e.g. [7, 8, 9] for SD3.5-medium)")
		}
		return out, nil
	}
	if len(g.SkipLayers) > 64 {
		return out, badRequest("skip_layers: %d blocks; at most 64", len(g.SkipLayers))
	}
	out.SLGLayers, out.SLGScale, out.SLGStart, out.SLGStop = g.SkipLayers, 2.8, 0.01, 0.2
	for _, f := range []struct {
		v   *float64
		dst *float64
	}{{g.SLGScale, &out.SLGScale}, {g.SkipLayerStart, &out.SLGStart}, {g.SkipLayerEnd, &out.SLGStop}} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
	switch {
	case out.SLGScale <= 0 || out.SLGScale > 100:
		return out, badRequest("slg_scale %g: want a scale in (0, 100]", out.SLGScale)
	case out.SLGStart < 0 || out.SLGStop > 1 || out.SLGStart >= out.SLGStop:
		return out, badRequest("skip_layer_start %g and skip_layer_end %g: want 0 ≤ start < end ≤ 1 (fractions of the steps)",
			out.SLGStart, out.SLGStop)
	}
	return out, nil
}

// schedulerMessage is a parse error without its package prefix.
func schedulerMessage(err error) string { return strings.TrimPrefix(err.Error(), "scheduler: ") }

// apply sets r's guidance fields.
func (g *guidanceParams) apply(r *pipeline.Request) {
	r.GuidanceRule, r.StepCache = g.Rule, g.Cache
	if len(g.SLGLayers) > 0 {
		r.SLGLayers, r.SLGScale, r.SLGStart, r.SLGStop = g.SLGLayers, g.SLGScale, g.SLGStart, g.SLGStop
	}
}

// guidanceError names the field behind an engine check's error, or returns nil when the error is
// another field's.
func guidanceError(err error, p *params) error {
	if rerr := ruleNeedsTrueCFG(err, p); rerr != nil {
		return rerr
	}
	switch {
	case errors.Is(err, pipeline.ErrGuidanceRule):
		return badRequest("guidance_rule %q: %s", p.Guide.Rule, p.names.replace(strings.TrimPrefix(err.Error(), "pipeline: ")))
	case errors.Is(err, pipeline.ErrSLGUnsupported):
		return badRequest("skip_layers: %s", strings.TrimPrefix(err.Error(), "pipeline: "))
	}
	return nil
}

// dropDefaultRule takes the server's default rule off a request that cannot run it (no CFG, or
// cfg++ with another sampler than euler), noting it; it reports whether it did.
func dropDefaultRule(err error, p *params) bool {
	g := &p.Guide
	if !g.ruleDefault || g.Rule == "" || !errors.Is(err, pipeline.ErrGuidanceRule) {
		return false
	}
	p.Notes = append(p.Notes, fmt.Sprintf("the server's default guidance rule %s is not applied: %s", g.Rule,
		p.names.replace(strings.TrimPrefix(err.Error(), "pipeline: guidance rule unsupported: "))))
	g.Rule, g.ruleDefault = "", false
	return true
}

// guidanceOut adds the guidance settings to the echoed parameters (nothing for the defaults).
func guidanceOut(g *guidanceParams, out map[string]any) {
	if g.Rule != "" {
		out["guidance_rule"] = g.Rule
	}
	if g.Cache != "" {
		out["step_cache"] = g.Cache
	}
	if len(g.SLGLayers) > 0 {
		out["skip_layers"], out["slg_scale"] = g.SLGLayers, g.SLGScale
		out["skip_layer_start"], out["skip_layer_end"] = g.SLGStart, g.SLGStop
	}
}

// slgInfo are A1111-style infotext entries for skip-layer guidance (the CLI's PNG text does not
// record it; these are rflow's keys, spelled as the fields), values unquoted.
func slgInfo(g *guidanceParams) [][2]string {
	if len(g.SLGLayers) == 0 {
		return nil
	}
	layers := make([]string, len(g.SLGLayers))
	for i, l := range g.SLGLayers {
		layers[i] = strconv.Itoa(l)
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	return [][2]string{{"Skip layers", strings.Join(layers, ",")}, {"SLG scale", f(g.SLGScale)},
		{"Skip layer start", f(g.SLGStart)}, {"Skip layer end", f(g.SLGStop)}}
}

// formGuidance reads the extension fields of a multipart form (images/edits); skip_layers is a
// comma-separated list there.
func formGuidance(get func(string) string, has func(string) bool) (guidanceRequest, error) {
	var g guidanceRequest
	if has("guidance_rule") {
		v := get("guidance_rule")
		g.GuidanceRule = &v
	}
	if has("step_cache") {
		v := get("step_cache")
		g.StepCache = &v
	}
	if v := strings.TrimSpace(get("skip_layers")); v != "" {
		for _, part := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(part))
			if err != nil {
				return g, badRequest("skip_layers %q: want comma-separated block numbers, e.g. 7,8,9", v)
			}
			g.SkipLayers = append(g.SkipLayers, n)
		}
	}
	for _, num := range []struct {
		k   string
		dst **float64
	}{{"slg_scale", &g.SLGScale}, {"skip_layer_start", &g.SkipLayerStart}, {"skip_layer_end", &g.SkipLayerEnd}} {
		if err := formNumber(get(num.k), num.dst); err != nil {
			return g, badRequest("%s: %v", num.k, err)
		}
	}
	return g, nil
}
