package main

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/rflowrt/rflow/pipeline"
	"github.com/rflowrt/rflow/scheduler"
)

// slgFlags are the guidance rule, the step cache and skip-layer guidance (SD3.5, spelled as stable-diffusion.cpp
// spells it).
type slgFlags struct {
	rule, cache        string
	layers             string
	scale, start, stop float64
}

func (s *slgFlags) register(fs *pflag.FlagSet) {
	s.registerGuidance(fs)
	fs.StringVar(&s.layers, "skip-layers", "", "SD3.5 skip-layer guidance: comma-separated transformer blocks to skip, e.g. 7,8,9 for SD3.5-medium (diffusers skip_guidance_layers; needs CFG and a compiled checkpoint or an export with a skip_layers input); off when empty")
	fs.Float64Var(&s.scale, "slg-scale", 2.8, "skip-layer guidance scale (diffusers skip_layer_guidance_scale)")
	fs.Float64Var(&s.start, "skip-layer-start", 0.01, "skip-layer guidance starts at this fraction of the steps")
	fs.Float64Var(&s.stop, "skip-layer-end", 0.2, "skip-layer guidance stops at this fraction of the steps")
}

// registerGuidance registers --guidance-rule and --step-cache alone (serve takes them as its defaults).
func (s *slgFlags) registerGuidance(fs *pflag.FlagSet) {
	fs.StringVar(&s.cache, "step-cache", "off", "skip transformer calls whose output is predicted to change little (EasyCache's criterion): off, easycache[:THRESHOLD] (reuse the last velocity) or taylor[:THRESHOLD] (first-order forecast); default threshold 0.1, also warmup=N,max-skip=N")
	fs.StringVar(&s.rule, "guidance-rule", "cfg", "how CFG combines the two predictions: cfg, cfg-zero-star[:zero-steps=K], apg[:eta=E,norm-threshold=R,momentum=B] (ComfyUI defaults 1, 5, 0), cfg++ (euler only; the CFG scale is its λ, meant in (0, 1]). Rules other than cfg need CFG on (SD3 --cfg-scale > 1, cfg++ any --cfg-scale > 0; FLUX --true-cfg-scale > 1 with -n)")
}

// apply sets the request's guidance rule and skip-layer guidance; the skip-layer options without
// --skip-layers are an error.
func (s *slgFlags) apply(fs *pflag.FlagSet, r *pipeline.Request) error {
	var err error
	if r.GuidanceRule, r.StepCache, err = s.guidance(); err != nil {
		return err
	}
	if s.layers == "" {
		for _, name := range []string{"slg-scale", "skip-layer-start", "skip-layer-end"} {
			if fs.Changed(name) {
				return fmt.Errorf("--%s needs --skip-layers", name)
			}
		}
		return nil
	}
	layers, err := parseInts(s.layers)
	if err != nil {
		return fmt.Errorf("--skip-layers: %v", err)
	}
	switch {
	case s.scale <= 0:
		return errors.New("--slg-scale must be positive")
	case s.start < 0 || s.stop > 1 || s.start >= s.stop:
		return fmt.Errorf("--skip-layer-start %g and --skip-layer-end %g: want 0 ≤ start < end ≤ 1", s.start, s.stop)
	}
	r.SLGLayers, r.SLGScale, r.SLGStart, r.SLGStop = layers, s.scale, s.start, s.stop
	return nil
}

// guidance is --guidance-rule and --step-cache in their canonical spellings ("" for plain CFG and no
// cache, as pipeline.Resolved records them).
func (s *slgFlags) guidance() (rule, cache string, err error) {
	gr, err := scheduler.ParseGuidanceRule(s.rule)
	if err != nil {
		return "", "", fmt.Errorf("--guidance-rule: %w", err)
	}
	if !gr.IsCFG() {
		rule = gr.String()
	}
	sc, err := scheduler.ParseStepCache(s.cache)
	if err != nil {
		return "", "", fmt.Errorf("--step-cache: %w", err)
	}
	if sc.Kind != scheduler.StepCacheOff {
		cache = sc.String()
	}
	return rule, cache, nil
}
