package pipeline

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/rflowrt/rflow/assets"
	"github.com/rflowrt/rflow/internal/rng"
	"github.com/rflowrt/rflow/scheduler"
)

// Limits on request values that would otherwise exhaust memory before any model complains.
const (
	maxSide      = 16384 // pixels per side
	maxBatch     = 1024  // images per run
	maxT5Tokens  = 512   // diffusers' max_sequence_length limit
	demoCFGScale = 1.0   // the demos' transformer already computes the prompt's exact velocity
)

// diffusers' skip-layer guidance defaults (flow-sampling.md §3.4).
const (
	slgDefaultScale = 2.8
	slgDefaultStart = 0.01
	slgDefaultStop  = 0.2
)

// plan is a validated request with every default resolved.
type plan struct {
	req  Request // defaults filled in
	flux bool
	// width×height pixels; latents [batch, c, h, w].
	width, height, h, w, c, batch int
	maxSeq                        int
	sampler                       scheduler.SamplerInfo
	schedule                      scheduler.Schedule
	// sigmas and modelTS are the part of the schedule the sampler walks (img2img starts later).
	sigmas, modelTS []float64
	startStep       int
	cfg, guidance   float64
	rule            scheduler.GuidanceRule    // Request.GuidanceRule, parsed (guidance.go)
	cache           scheduler.StepCacheConfig // Request.StepCache, parsed (guidance.go)
	trueCFG         float64
	doCFG           bool
	doTrueCFG       bool
	shift           float64
	settings        Resolved
	// warnings collects the run's warnings as they are reported.
	warnings []Warning
	// edit is an inpaint, Fill or Kontext run's state (nil otherwise).
	edit *editPlan
}

// steps is the number of steps the sampler runs.
func (pl *plan) steps() int { return len(pl.sigmas) - 1 }

// preset returns the scheduler preset whose pipeline defaults the model follows.
func (p *Pipeline) preset() scheduler.Preset {
	name := "sd3"
	if p.m.Family == scheduler.FamilyFLUX {
		name = "flux-schnell"
		if p.m.GuidanceEmbeds {
			name = "flux-dev"
		}
	}
	pr, _ := scheduler.LookupPreset(name) // the names above are the package's own
	return pr
}

// isDemo reports whether the model is one of the embedded demos.
func (p *Pipeline) isDemo() bool { return slices.Contains(assets.Names(), p.m.Name) }

// resolve validates r against the model and fills in every default. It loads nothing.
func (p *Pipeline) resolve(r Request) (*plan, error) {
	pr := p.preset()
	pl := &plan{req: r, flux: p.m.Family == scheduler.FamilyFLUX, c: p.m.VAE.LatentChannels}
	if err := resolveItems(&pl.req); err != nil {
		return nil, err
	}
	if err := p.resolveSize(pl); err != nil {
		return nil, err
	}
	if err := p.resolveSchedule(pl, pr); err != nil {
		return nil, err
	}
	if err := p.resolveGuidance(pl, pr); err != nil {
		return nil, err
	}
	if err := p.resolveText(pl, pr); err != nil {
		return nil, err
	}
	if err := p.resolveNoise(pl); err != nil {
		return nil, err
	}
	if err := p.resolveInit(pl); err != nil {
		return nil, err
	}
	if err := p.resolveEdit(pl); err != nil {
		return nil, err
	}
	pl.settings = pl.resolved()
	return pl, nil
}

// defaultSize is the transformer config's sample_size × the VAE factor, else the VAE config's
// sample_size, else the family preset's (1024).
func (p *Pipeline) defaultSize(pr scheduler.Preset) int {
	if c := p.m.Components[compTransformer]; c != nil {
		if s := configInt(c.Config, "sample_size"); s > 0 {
			return s * p.m.VAE.ScaleFactor
		}
	}
	for _, name := range []string{compVAEDecoder, compVAEEncoder} {
		if c := p.m.Components[name]; c != nil {
			if s := configInt(c.Config, "sample_size"); s > 0 && s%16 == 0 {
				return s
			}
		}
	}
	return pr.Width
}

// resolveSize checks the image size and batch and derives the latent shape.
func (p *Pipeline) resolveSize(pl *plan) error {
	r := &pl.req
	def := p.defaultSize(p.preset())
	if r.Width == 0 {
		r.Width = def
	}
	if r.Height == 0 {
		r.Height = def
	}
	s := p.m.VAE.ScaleFactor
	for _, side := range []struct {
		name string
		v    int
	}{{"width", r.Width}, {"height", r.Height}} {
		if err := checkMultiple16(side.name, side.v); err != nil {
			return err
		}
		if side.v > maxSide {
			return &SizeError{Field: side.name, Value: side.v, Reason: fmt.Sprintf("is larger than %d", maxSide)}
		}
		if s <= 0 || side.v%(2*s) != 0 {
			return &SizeError{Field: side.name, Value: side.v, Reason: fmt.Sprintf("is not a multiple of %d (2 × the VAE factor %d)", 2*s, s)}
		}
	}
	pl.width, pl.height, pl.w, pl.h = r.Width, r.Height, r.Width/s, r.Height/s
	if fh, fw := p.m.Transformer.FixedHeight, p.m.Transformer.FixedWidth; (fh > 0 && fh != pl.h) || (fw > 0 && fw != pl.w) {
		return &SizeError{Field: "width", Value: r.Width, Reason: fmt.Sprintf("(height %d): the transformer export is fixed to %d×%d pixels "+
			"(latent %d×%d); use that size or re-export with dynamic axes", r.Height, fw*s, fh*s, fh, fw)}
	}
	switch {
	case r.BatchSize == 0:
		r.BatchSize = 1
	case r.BatchSize < 0 || r.BatchSize > maxBatch:
		return fmt.Errorf("pipeline: batch size %d is outside [1, %d]", r.BatchSize, maxBatch)
	}
	pl.batch = r.BatchSize
	if values := int64(pl.batch) * int64(pl.c) * int64(pl.h) * int64(pl.w); values > rng.MaxValues {
		return fmt.Errorf("pipeline: %d images of %d×%d need %d latent values, more than %d", pl.batch, r.Width, r.Height,
			values, int64(rng.MaxValues))
	}
	return nil
}

// resolveSchedule builds the σ schedule and picks the sampler: by default the step of the diffusers
// scheduler class (scheduler.DefaultSampler), as diffusers runs the class the model's config names.
func (p *Pipeline) resolveSchedule(pl *plan, pr scheduler.Preset) error {
	r := &pl.req
	var err error
	if r.Sampler != "" {
		if pl.sampler, err = scheduler.LookupSampler(r.Sampler); err != nil {
			return fmt.Errorf("pipeline: %w", err)
		}
	}
	if r.Steps == 0 && len(r.Sigmas) == 0 {
		r.Steps = pr.Steps
	}
	pl.schedule, err = scheduler.BuildSchedule(scheduler.ScheduleRequest{Family: p.m.Family, Config: p.m.Scheduler,
		Steps: r.Steps, Scheduler: r.Scheduler, Shift: r.FlowShift, Sigmas: r.Sigmas, SigmasRaw: r.SigmasRaw,
		ImageSeqLen: scheduler.ImageSeqLen(pl.width, pl.height)})
	if err != nil {
		return fmt.Errorf("pipeline: schedule: %w", err)
	}
	r.Scheduler = pl.schedule.Scheduler
	r.Steps = len(pl.schedule.Sigmas) - 1
	if r.Sampler == "" {
		r.Sampler = scheduler.DefaultSampler(p.m.Scheduler, r.Scheduler)
		if pl.sampler, err = scheduler.LookupSampler(r.Sampler); err != nil {
			return fmt.Errorf("pipeline: %w", err)
		}
	}
	switch {
	case pl.schedule.DynamicShift:
		pl.shift = math.Exp(pl.schedule.Mu)
	case len(r.Sigmas) > 0 && r.SigmasRaw:
		pl.shift = 0 // a raw σ list has no shift
	case r.FlowShift > 0:
		pl.shift = r.FlowShift
	default:
		pl.shift = p.m.Scheduler.Shift
	}
	pl.sigmas, pl.modelTS = pl.schedule.Sigmas, pl.schedule.ModelTimesteps
	return nil
}

// resolveGuidance sets CFG, distilled guidance, true CFG and skip-layer guidance.
func (p *Pipeline) resolveGuidance(pl *plan, pr scheduler.Preset) error {
	r := &pl.req
	for _, v := range []float64{r.CFGScale, r.Guidance, r.TrueCFGScale, r.SLGScale, r.SLGStart, r.SLGStop} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return fmt.Errorf("pipeline: guidance value %v: want a finite number ≥ 0", v)
		}
	}
	pl.cfg, pl.trueCFG = 1, 1
	if pl.flux {
		if p.m.GuidanceEmbeds {
			pl.guidance = r.Guidance
			if pl.guidance == 0 {
				pl.guidance = pr.Guidance
			}
		}
		neg := r.NegativePrompt != "" || r.NegativePrompt2 != ""
		if r.TrueCFGScale > 1 && neg { // diffusers: true_cfg_scale > 1 and a negative prompt
			pl.trueCFG, pl.doTrueCFG = r.TrueCFGScale, true
		}
	} else {
		pl.cfg = r.CFGScale
		if pl.cfg == 0 {
			pl.cfg = pr.CFGScale
			if p.isDemo() {
				pl.cfg = demoCFGScale
			}
		}
		pl.doCFG = pl.cfg > 1
	}
	if err := p.resolveSLG(pl); err != nil {
		return err
	}
	if err := p.resolveGuidanceRule(pl); err != nil {
		return err
	}
	return p.resolveStepCache(pl)
}

// resolveSLG validates skip-layer guidance: SD3 only, with CFG, on an export with a skip_layers input.
func (p *Pipeline) resolveSLG(pl *plan) error {
	r := &pl.req
	if len(r.SLGLayers) == 0 {
		return nil
	}
	switch {
	case pl.flux:
		return fmt.Errorf("pipeline: %w: FLUX pipelines have no skip-layer guidance", ErrSLGUnsupported)
	case p.m.Transformer.SkipLayers == "":
		return fmt.Errorf("pipeline: %w: the transformer export has no skip_layers input (Optimum's exports have none); "+
			"SD3.5 skip-layer guidance needs an export that can skip blocks", ErrSLGUnsupported)
	case !pl.doCFG:
		return fmt.Errorf("pipeline: %w: skip-layer guidance runs with CFG (CFGScale > 1), as in diffusers", ErrSLGUnsupported)
	}
	for _, l := range r.SLGLayers {
		if l < 0 {
			return fmt.Errorf("pipeline: skip-layer guidance layer %d: layers are block indices ≥ 0", l)
		}
	}
	if r.SLGScale == 0 {
		r.SLGScale = slgDefaultScale
	}
	if r.SLGStart == 0 {
		r.SLGStart = slgDefaultStart
	}
	if r.SLGStop == 0 {
		r.SLGStop = slgDefaultStop
	}
	return nil
}

// resolveText checks the T5 length and clip skip.
func (p *Pipeline) resolveText(pl *plan, pr scheduler.Preset) error {
	r := &pl.req
	pl.maxSeq = r.MaxSequenceLength
	if pl.maxSeq == 0 {
		pl.maxSeq = pr.MaxSequenceLength
	}
	if pl.maxSeq < 1 || pl.maxSeq > maxT5Tokens {
		return fmt.Errorf("pipeline: max sequence length %d is outside [1, %d]", pl.maxSeq, maxT5Tokens)
	}
	if r.ClipSkip < 0 {
		return fmt.Errorf("pipeline: clip skip %d is negative", r.ClipSkip)
	}
	return nil
}

// resolveNoise validates the generator and batch mode.
func (p *Pipeline) resolveNoise(pl *plan) error {
	r := &pl.req
	kind, err := rng.ParseKind(string(r.RNG))
	if err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	r.RNG = kind
	if !slices.Contains(rng.BatchModes(), r.BatchMode) {
		return fmt.Errorf("pipeline: %w: %d", rng.ErrUnknownBatchMode, int(r.BatchMode))
	}
	return nil
}

// resolveInit validates img2img and cuts the schedule at the strength (diffusers get_timesteps):
// init_timestep = min(N·strength, N), t_start = int(max(N − init_timestep, 0)), σ = sigmas[t_start:].
func (p *Pipeline) resolveInit(pl *plan) error {
	r := &pl.req
	if r.InitImage == nil {
		r.Strength, r.InitLatent, r.ResizeMode = 0, "", 0
		return nil
	}
	if err := resolveInitModes(r); err != nil {
		return err
	}
	if !(r.Strength >= 0 && r.Strength <= 1) {
		return fmt.Errorf("pipeline: strength %v is outside [0, 1]", r.Strength)
	}
	if !p.m.Has(compVAEEncoder) {
		return errors.New("pipeline: img2img needs a vae_encoder, and the model folder has none")
	}
	if b := r.InitImage.Bounds(); b.Empty() {
		return errors.New("pipeline: the init image is empty")
	}
	n := float64(len(pl.sigmas) - 1)
	initT := math.Min(n*r.Strength, n)
	pl.startStep = int(math.Max(n-initT, 0))
	pl.sigmas, pl.modelTS = pl.sigmas[pl.startStep:], pl.modelTS[pl.startStep:]
	return nil
}

// resolved reports the settings the run uses.
func (pl *plan) resolved() Resolved {
	r := pl.req
	return Resolved{Width: pl.width, Height: pl.height, Steps: r.Steps, BatchSize: pl.batch, Sampler: r.Sampler,
		Scheduler: r.Scheduler, CFGScale: pl.cfg, Guidance: pl.guidance, TrueCFGScale: pl.trueCFG, Shift: pl.shift,
		Mu: pl.schedule.Mu, Sigmas: pl.sigmas, ModelTimesteps: pl.modelTS, SigmasRaw: r.SigmasRaw && len(r.Sigmas) > 0,
		Seed: r.Seed, RNG: string(r.RNG),
		GuidanceRule: pl.guidanceRuleName(), StepCache: pl.stepCacheName(), BatchMode: r.BatchMode.String(), MaxSequenceLength: pl.maxSeq, ClipSkip: r.ClipSkip, Strength: r.Strength, InitLatent: string(r.InitLatent), ResizeMode: initResizeName(r),
		StartStep: pl.startStep, Task: pl.edit.taskName(), MaskBlur: r.MaskBlur, RefImages: len(r.RefImages)}
}
