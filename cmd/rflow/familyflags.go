package main

import (
	"github.com/spf13/pflag"

	"github.com/rflowrt/rflow/pipeline"
	"github.com/rflowrt/rflow/scheduler"
)

// unusedFlagWarnings lists the flags given that do nothing for this model's family, each with what to
// use instead. The pipeline ignores them; the images' metadata does not record them.
func unusedFlagWarnings(fs *pflag.FlagSet, m *pipeline.Model) []string {
	set := func(name string) bool { f := fs.Lookup(name); return f != nil && f.Changed }
	float := func(name string) float64 { v, _ := fs.GetFloat64(name); return v }
	str := func(name string) string { v, _ := fs.GetString(name); return v }
	var w []string
	if m.Family == scheduler.FamilyFLUX {
		neg, trueCFG := str("negative-prompt") != "", float("true-cfg-scale") > 1
		if set("cfg-scale") {
			w = append(w, "--cfg-scale does nothing for FLUX: use --guidance (FLUX-dev's distilled guidance) or --true-cfg-scale with -n")
		}
		if neg && !trueCFG {
			w = append(w, "-n does nothing for FLUX without --true-cfg-scale > 1 (true CFG, two passes per step)")
		}
		if trueCFG && !neg {
			w = append(w, "--true-cfg-scale does nothing without -n: FLUX true CFG needs a negative prompt")
		}
		if set("guidance") && !m.GuidanceEmbeds {
			w = append(w, "--guidance does nothing: this FLUX model has no guidance input (like FLUX.1-schnell)")
		}
		if set("clip-skip") {
			w = append(w, "--clip-skip does nothing for FLUX (SD3 only)")
		}
		if set("prompt-3") {
			w = append(w, "--prompt-3 does nothing for FLUX: its T5 prompt is --prompt-2")
		}
		return w
	}
	if set("guidance") {
		w = append(w, "--guidance does nothing for SD3 (it is FLUX-dev's distilled guidance): use --cfg-scale")
	}
	if set("true-cfg-scale") {
		w = append(w, "--true-cfg-scale does nothing for SD3 (it is FLUX's true CFG): use --cfg-scale with -n")
	}
	if str("negative-prompt") != "" && set("cfg-scale") && float("cfg-scale") <= 1 {
		w = append(w, "-n does nothing with --cfg-scale ≤ 1 (no classifier-free guidance)")
	}
	return w
}

// negativeUsed reports whether a run's settings ran a negative pass: SD3 CFG or FLUX true CFG.
func negativeUsed(m *pipeline.Model, s pipeline.Resolved) bool {
	if m.Family == scheduler.FamilyFLUX {
		return s.TrueCFGScale > 1
	}
	return s.CFGScale > 1
}
