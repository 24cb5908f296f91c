package main

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/rflowrt/rflow/pipeline"
)

// slgFlags are skip-layer guidance (SD3.5), spelled as stable-diffusion.cpp spells it.
type slgFlags struct {
	layers             string
	scale, start, stop float64
}

func (s *slgFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&s.layers, "skip-layers", "", "SD3.5 skip-layer guidance: comma-separated transformer blocks to skip, e.g. 7,8,9 for SD3.5-medium (diffusers skip_guidance_layers; needs CFG and a compiled checkpoint or an export with a skip_layers input); off when empty")
	fs.Float64Var(&s.scale, "slg-scale", 2.8, "skip-layer guidance scale (diffusers skip_layer_guidance_scale)")
	fs.Float64Var(&s.start, "skip-layer-start", 0.01, "skip-layer guidance starts at this fraction of the steps")
	fs.Float64Var(&s.stop, "skip-layer-end", 0.2, "skip-layer guidance stops at this fraction of the steps")
}

// apply sets the request's skip-layer guidance; its options without --skip-layers are an error.
func (s *slgFlags) apply(fs *pflag.FlagSet, r *pipeline.Request) error {
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
