package server

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rflowrt/rflow/pipeline"
	"github.com/rflowrt/rflow/scheduler"
)

// guidanceNames spell the guidance fields as one API does. A1111's follow Forge: on FLUX cfg_scale is
// the true CFG scale (Forge runs the negative prompt exactly when it is > 1) and distilled_cfg_scale
// the guidance input. rflow's jobs and OpenAI's extension fields are the CLI's flags: cfg_scale is
// SD3's, guidance and true_cfg_scale FLUX's.
type guidanceNames struct{ forge bool }

func (n guidanceNames) cfg() string { return "cfg_scale" }

func (n guidanceNames) guidance() string {
	if n.forge {
		return "distilled_cfg_scale"
	}
	return "guidance"
}

func (n guidanceNames) trueCFG() string {
	if n.forge {
		return "cfg_scale"
	}
	return "true_cfg_scale"
}

// replace spells pipeline.Request's field names in an engine error as the API's fields.
func (n guidanceNames) replace(msg string) string {
	return strings.NewReplacer("TrueCFGScale", n.trueCFG(), "CFGScale", n.cfg(), "a negative prompt", "a negative_prompt").Replace(msg)
}

func (s *Server) flux() bool { return s.m.Family == scheduler.FamilyFLUX }

// checkGuidanceValues bounds the guidance values before any work.
func checkGuidanceValues(p *params) error {
	for _, f := range []struct {
		name string
		v    float64
	}{{p.names.cfg(), p.CFGScale}, {p.names.guidance(), p.Guidance}, {p.names.trueCFG(), p.TrueCFGScale}} {
		if f.v < 0 || f.v > 100 {
			return badRequest("%s %g out of range [0, 100]", f.name, f.v)
		}
	}
	return nil
}

// trueCFGOn reports whether a FLUX request runs true CFG (diffusers: true_cfg_scale > 1 and a negative
// prompt).
func trueCFGOn(p *params) bool { return p.TrueCFGScale > 1 && p.Negative != "" }

// familyNotes notes the guidance fields sent that do nothing for the model's family, as the CLI warns
// about its flags: the pipeline ignores them and the answer's settings do not record them.
func (s *Server) familyNotes(p *params) {
	n := p.names
	note := func(format string, a ...any) { p.Notes = append(p.Notes, fmt.Sprintf(format, a...)) }
	if !p.flux {
		if p.Guidance != 0 {
			note("%s ignored: it is FLUX-dev's distilled guidance; SD3 takes %s", n.guidance(), n.cfg())
		}
		if p.TrueCFGScale != 0 {
			note("%s ignored: it is FLUX's true CFG; SD3 takes %s with a negative_prompt", n.trueCFG(), n.cfg())
		}
		return
	}
	if p.CFGScale != 0 { // only from the APIs whose cfg_scale is SD3's
		note("%s ignored: FLUX takes %s (FLUX-dev's distilled guidance) or %s with a negative_prompt (true CFG)",
			n.cfg(), n.guidance(), n.trueCFG())
	}
	switch {
	case p.Negative != "" && p.TrueCFGScale <= 1:
		note("negative_prompt unused: FLUX runs it only with true CFG, %s > 1 (two transformer passes per step)", n.trueCFG())
	case p.TrueCFGScale > 1 && p.Negative == "":
		note("%s %g unused: FLUX true CFG needs a negative_prompt (as diffusers' FluxPipeline)", n.trueCFG(), p.TrueCFGScale)
	}
	if p.Guidance != 0 && !s.m.GuidanceEmbeds {
		note("%s ignored: this FLUX model has no guidance input (like FLUX.1-schnell)", n.guidance())
	}
}

// ruleNeedsTrueCFG is the 400 for a guidance rule other than CFG on FLUX without true CFG, or nil.
func ruleNeedsTrueCFG(err error, p *params) error {
	if !p.flux || trueCFGOn(p) || !errors.Is(err, pipeline.ErrGuidanceRule) {
		return nil
	}
	return badRequest("guidance_rule %q combines two predictions and needs FLUX true CFG: set %s > 1 and send a negative_prompt",
		p.Guide.Rule, p.names.trueCFG())
}

// cfgUsed is the CFG scale a run used as the APIs echo it: FLUX's true CFG scale (Forge's cfg_scale,
// 1: off) or SD3's.
func cfgUsed(p *params, st pipeline.Resolved) float64 {
	if p.flux {
		return st.TrueCFGScale
	}
	return st.CFGScale
}

// negativeUsed reports whether a run ran its negative prompt (SD3 CFG or FLUX true CFG), as the CLI's
// PNG text records it only then.
func negativeUsed(p *params, st pipeline.Resolved) bool { return cfgUsed(p, st) > 1 }

// cfgOut adds the CFG settings to the echoed parameters: on FLUX cfg_scale is the true CFG scale
// (Forge's convention), echoed as true_cfg_scale too, and distilled_cfg_scale the guidance.
func cfgOut(out map[string]any, flux bool, cfg, trueCFG, guidance float64) {
	out["cfg_scale"] = cfg
	if flux {
		out["cfg_scale"], out["true_cfg_scale"] = trueCFG, trueCFG
	}
	if guidance != 0 {
		out["distilled_cfg_scale"] = guidance
	}
}
