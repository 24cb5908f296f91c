package scheduler

// Presets: the public SD3/SD3.5/FLUX.1 models' scheduler configs and pipeline defaults (spec §3.1, §3.5,
// §4.1, §4.4; configs in shared/model-configs). Every default lives here and only here.

// Pipeline defaults shared by the presets.
const (
	presetImageSize  = 1024 // default_sample_size 128 × vae_scale_factor 8 (SD3 and FLUX pipelines)
	sd3MaxSequence   = 256  // StableDiffusion3Pipeline max_sequence_length
	fluxMaxSequence  = 512  // FluxPipeline max_sequence_length, for every FLUX model (schnell too)
	sd3Shift         = 3.0  // SD3 / SD3.5 scheduler_config.json "shift"
	fluxDevShift     = 3.0  // FLUX.1-dev "shift" (unused: dynamic shifting)
	fluxSchnellShift = 1.0
	noCFG            = 1.0 // a CFG scale ≤ 1 runs no unconditional pass
)

// Preset is a model's defaults: everything a run needs besides the prompt and the seed.
type Preset struct {
	Name   string
	Family Family
	// Config is the model's scheduler/scheduler_config.json as ParseFlowMatchConfig reads it.
	Config FlowMatchConfig
	// Steps is the default number of steps.
	Steps int
	// CFGScale is the classifier-free guidance scale (SD3 guidance_scale, FLUX true_cfg_scale); CFG runs
	// only when it is > 1.
	CFGScale float64
	// Guidance is the value for the transformer's guidance input (FLUX.1-dev distilled guidance); 0 when
	// HasGuidanceInput is false.
	Guidance float64
	// HasGuidanceInput reports whether the transformer takes a guidance input (guidance_embeds).
	HasGuidanceInput bool
	// Width and Height are the default image size in pixels.
	Width, Height int
	// MaxSequenceLength is the T5 token count the prompt is padded or cut to.
	MaxSequenceLength int
}

// presetTable builds the presets in display order.
func presetTable() []Preset {
	sd3 := DefaultFlowMatchConfig()
	sd3.Shift = sd3Shift
	dev := DefaultFlowMatchConfig()
	dev.Shift, dev.UseDynamicShifting = fluxDevShift, true
	schnell := DefaultFlowMatchConfig()
	schnell.Shift = fluxSchnellShift
	mk := func(name string, f Family, cfg FlowMatchConfig, steps int, cfgScale float64, maxSeq int) Preset {
		return Preset{Name: name, Family: f, Config: cfg, Steps: steps, CFGScale: cfgScale,
			Width: presetImageSize, Height: presetImageSize, MaxSequenceLength: maxSeq}
	}
	fluxDev := mk("flux-dev", FamilyFLUX, dev, 28, noCFG, fluxMaxSequence)
	fluxDev.Guidance, fluxDev.HasGuidanceInput = 3.5, true
	return []Preset{
		mk("sd3", FamilySD3, sd3, 28, 7.0, sd3MaxSequence),
		mk("sd3.5-large", FamilySD3, sd3, 28, 3.5, sd3MaxSequence),
		mk("sd3.5-medium", FamilySD3, sd3, 40, 4.5, sd3MaxSequence),
		mk("sd3.5-large-turbo", FamilySD3, sd3, 4, noCFG, sd3MaxSequence),
		fluxDev,
		mk("flux-schnell", FamilyFLUX, schnell, 4, noCFG, fluxMaxSequence),
	}
}

// PresetNames lists the preset names in display order.
func PresetNames() []string {
	t := presetTable()
	names := make([]string, len(t))
	for i, p := range t {
		names[i] = p.Name
	}
	return names
}

// LookupPreset returns the named preset, or an error listing the valid names.
func LookupPreset(name string) (Preset, error) {
	for _, p := range presetTable() {
		if p.Name == name {
			return p, nil
		}
	}
	return Preset{}, &ScheduleNameError{Kind: "preset", Name: name, Valid: PresetNames()}
}

// Request is the preset's schedule request for steps at width×height; a value ≤ 0 takes the preset's
// default.
func (p Preset) Request(steps, width, height int) ScheduleRequest {
	if steps <= 0 {
		steps = p.Steps
	}
	if width <= 0 {
		width = p.Width
	}
	if height <= 0 {
		height = p.Height
	}
	return ScheduleRequest{Family: p.Family, Config: p.Config, Steps: steps, ImageSeqLen: ImageSeqLen(width, height)}
}
