package scheduler

import "testing"

// TestDefaultSampler: with no sampler named, a model runs the step of the diffusers class its
// scheduler_config.json names (diffusers 0.38 loads that class), or of the diffusers schedule asked for.
func TestDefaultSampler(t *testing.T) {
	cfg := func(class string, stochastic bool) FlowMatchConfig {
		c := DefaultFlowMatchConfig()
		c.ClassName, c.StochasticSampling = class, stochastic
		if class == ClassDPMSolver || class == ClassUniPCMultistep {
			c.UseFlowSigmas = true
		}
		return c
	}
	for _, c := range []struct {
		class      string
		stochastic bool
		schedule   string
		want       string
	}{
		{ClassFlowMatchEuler, false, "", "euler"},
		{ClassFlowMatchEuler, false, "flowmatch", "euler"},
		{ClassFlowMatchEuler, true, "flowmatch", "euler_stochastic"},
		{ClassFlowMatchHeun, false, "flowmatch_heun", "heun"},
		{ClassDPMSolver, false, "dpmpp", "dpmpp_2m"},
		{ClassUniPCMultistep, false, "unipc", "uni_pc"},
		// A ComfyUI re-spacing or custom σ keeps the class's step.
		{ClassFlowMatchHeun, false, "karras", "heun"},
		{ClassDPMSolver, false, "custom", "dpmpp_2m"},
		{ClassUniPCMultistep, false, "simple", "uni_pc"},
		// A diffusers schedule named explicitly brings its class's step.
		{ClassFlowMatchEuler, false, "flowmatch_heun", "heun"},
		{ClassFlowMatchHeun, false, "flowmatch", "euler"},
		{ClassFlowMatchEuler, true, "unipc", "uni_pc"},
	} {
		if got := DefaultSampler(cfg(c.class, c.stochastic), c.schedule); got != c.want {
			t.Errorf("%s (stochastic %t), schedule %q: default sampler %q, want %q", c.class, c.stochastic, c.schedule, got, c.want)
		}
		if _, err := LookupSampler(c.want); err != nil {
			t.Error(err)
		}
	}
	// Every diffusers schedule names a sampler that exists.
	for _, e := range scheduleEntries {
		if e.diffusers != nil {
			if _, err := LookupSampler(e.sampler); err != nil {
				t.Errorf("schedule %s: %v", e.name, err)
			}
		}
	}
}
