package pipeline

import (
	"errors"
	"fmt"
	"image"
	"time"

	"github.com/rflowrt/rflow/scheduler"
	"github.com/rflowrt/rflow/vae"
)

// Request is one generation: prompts, size, schedule, guidance, noise and optional init image. The zero
// value of every field other than Prompt selects the model's default (see each field).
type Request struct {
	// Prompt is the text to draw. SD3: Prompt2 goes to CLIP-G and Prompt3 to T5; FLUX: Prompt goes to CLIP
	// and Prompt2 to T5 (Prompt3 is unused). Empty Prompt2/Prompt3 default to Prompt, as in diffusers.
	Prompt, Prompt2, Prompt3 string
	// NegativePrompt (and its _2/_3 variants, defaulting to it) is the unconditional text of SD3 CFG and
	// FLUX true CFG; "" by default. SD3 encodes it with clip skip 0 whatever ClipSkip is (diffusers).
	NegativePrompt, NegativePrompt2, NegativePrompt3 string

	// Width and Height are the image size in pixels, multiples of 16. 0 takes the model's default: the
	// transformer config's sample_size × the VAE factor (SD3 1024, the demos 256), else the VAE
	// config's sample_size (FLUX 1024).
	Width, Height int
	// Steps is the number of denoising steps (σ intervals); 0 takes the family's default: SD3 28,
	// FLUX.1-dev 28, FLUX.1-schnell (no guidance input) 4. With Sigmas it may be 0.
	Steps int

	// CFGScale is SD3's guidance_scale: > 1 runs classifier-free guidance with [uncond, cond] batched in
	// one transformer run per step, v = vu + g·(vc − vu). 0 takes the default: 7.0 (diffusers), and 1.0
	// (off) for the embedded demos, whose transformer computes the prompt's exact velocity already.
	// Any value ≤ 1 other than 0 turns CFG off. Ignored (no error) for FLUX, which uses TrueCFGScale.
	CFGScale float64
	// Guidance is FLUX.1-dev's distilled guidance input (default 3.5). Ignored for models without a
	// guidance input (FLUX.1-schnell, SD3).
	Guidance float64
	// TrueCFGScale is FLUX's true CFG: > 1 together with a NegativePrompt runs a second (negative)
	// transformer pass per step and v = v_neg + s·(v − v_neg). Default 1 (off). Ignored for SD3.
	TrueCFGScale float64
	// GuidanceRule is how the two predictions of CFG combine (scheduler.ParseGuidanceRule): "" or "cfg",
	// "cfg-zero-star", "apg[:eta=…,norm-threshold=…,momentum=…]", "cfg++" (Euler only). Rules other
	// than CFG need CFG on (CFGScale > 1; FLUX: true CFG).
	GuidanceRule string
	// StepCache skips transformer calls a cache can fill (scheduler.ParseStepCache): "" or "off",
	// "easycache[:threshold]" (reuse the last velocity), "taylor[:threshold]" (first-order forecast).
	StepCache string
	// SamplerFunc, if set, runs instead of the named sampler on the same model, noise and σ: research
	// code (schedule searches, new samplers) gets the transformer as a scheduler.Model. Settings still
	// name Sampler.
	SamplerFunc scheduler.SamplerFunc `json:"-"`

	// SLGLayers turns on SD3.5 skip-layer guidance with these transformer blocks skipped (diffusers
	// skip_guidance_layers; e.g. 7, 8, 9 for SD3.5-medium). It needs CFG and an export with a
	// skip-layers input; asking for it otherwise is an error. Empty: off.
	SLGLayers []int
	// SLGScale is skip_layer_guidance_scale (0 → 2.8); SLGStart and SLGStop bound the steps i where
	// it applies, steps·start < i < steps·stop (0 → 0.01 and 0.2), as fractions of Steps.
	SLGScale, SLGStart, SLGStop float64

	// Sampler is a scheduler.SamplerNames entry; "" runs the step of the diffusers scheduler class, as
	// diffusers does (scheduler.DefaultSampler): the class scheduler_config.json names (FlowMatchEuler →
	// euler, FlowMatchHeun → heun, DPMSolverMultistep → dpmpp_2m, UniPCMultistep → uni_pc), or the one
	// Scheduler names. Scheduler is a scheduler.SchedulerNames entry ("" → the model's own
	// scheduler_config.json class). Unknown names are errors listing the valid ones.
	Sampler, Scheduler string
	// FlowShift > 0 replaces the model's static or dynamic shift by this static shift; 0 keeps it.
	FlowShift float64
	// Sigmas is a custom σ list (strictly decreasing in [0, 1]; a terminal 0 is appended); it overrides
	// Scheduler. As in diffusers' pipelines (sigmas=…), the list is shifted like the model's schedule:
	// the config's shift (or FlowShift), FLUX-dev's resolution shift μ, shift_terminal and re-spacing
	// (scheduler.ScheduleRequest.Sigmas).
	Sigmas []float64
	// SigmasRaw uses Sigmas exactly as given, with no shift.
	SigmasRaw bool

	// Seed seeds the initial noise (and, through scheduler.StepNoiseSeed, the noise of stochastic
	// samplers). RNG is the generator (zero: torch-cpu, as diffusers' CPU generator); BatchMode how a
	// batch gets its noise (zero: one generator for the whole batch, as diffusers).
	Seed      uint64
	RNG       NoiseGenerator
	BatchMode NoiseBatchMode
	// BatchSize is the number of images drawn in one denoising run (default 1).
	BatchSize int
	// Items, if not empty, draws one image per item in one denoising run, each with its own prompt
	// and seed (see BatchItem): Prompt, Prompt2, Prompt3, Seed and BatchMode are then unused, and
	// BatchSize must be 0 or len(Items).
	Items []BatchItem

	// InitImage turns the run into img2img: the image is fitted to Width×Height (ResizeMode), encoded
	// with the VAE encoder (InitLatent) and noised to the schedule's σ at Strength.
	InitImage image.Image
	// Strength is how much of the schedule img2img runs, in [0, 1] (diffusers get_timesteps): 1 starts
	// from pure noise, 0 runs no step and returns the encoded image. With InitLatentMean, strength 1 is
	// txt2img with the same seed. Note that the zero value is 0; callers that want diffusers' default
	// pass 0.6 (the CLI: 0.75).
	Strength float64
	// InitLatent is how the init image's latent is drawn: InitLatentSample (the zero value), as
	// diffusers' img2img pipelines, or InitLatentMean.
	InitLatent InitLatentMode
	// ResizeMode fits an init image of another size (zero: vae.ResizeJust, diffusers' stretch).
	ResizeMode vae.ResizeMode

	// Mask turns img2img into inpainting: white repaints, black keeps (grey ≥ 128 counts as white, as
	// diffusers binarizes it). It must be greyscale; one of another size than InitImage is resized to
	// it (with a warning). SD3 and FLUX run diffusers' inpaint pipelines (the latents outside the mask
	// are reset to the noised image after every step); a FLUX Fill model (384 input channels) takes
	// the mask and the masked image as inputs instead, and needs a mask. Strength applies as in
	// img2img: diffusers' defaults are 0.6 for inpainting and 1.0 for Fill.
	Mask image.Image
	// MaskBlur blurs the mask first with Pillow's GaussianBlur of this radius in pixels (A1111's
	// mask_blur, diffusers' mask_processor.blur); 0: none.
	MaskBlur float64
	// NoOverlay leaves the decoded picture as the model drew it. By default an inpainted picture is
	// pasted over the init image through the (blurred) mask, as A1111 does, so black pixels keep the
	// original exactly.
	NoOverlay bool
	// InpaintFullRes inpaints only the mask's rectangle, grown by InpaintFullResPadding pixels and to
	// the output's aspect ratio, at Width×Height, and pastes it back into the init image, whose size the
	// result then has (A1111's "only masked", diffusers' padding_mask_crop).
	InpaintFullRes        bool
	InpaintFullResPadding int
	// RefImages are FLUX Kontext's reference pictures (a model whose model_index.json class is
	// FluxKontextPipeline; others are an error): each is encoded and appended to the image tokens.
	// RefResize sizes them (zero: Kontext's preferred resolutions, as diffusers).
	RefImages []image.Image
	RefResize RefResize

	// MaxSequenceLength is the T5 token count (0 → diffusers' defaults: SD3 256, FLUX 512; ≤ 512).
	MaxSequenceLength int
	// ClipSkip (SD3) uses CLIP's hidden_states[-(ClipSkip+2)]; 0 is the penultimate layer.
	ClipSkip int

	// VAETiling decodes the latents in overlapping tiles (less memory for large images).
	VAETiling bool

	// PreviewEvery > 0 calls OnPreview with a latent→RGB preview of the first image's x0 prediction after
	// every PreviewEvery-th step (and after the last).
	PreviewEvery int
	OnPreview    func(step int, img *image.NRGBA)

	// OnStep, if set, sees every sampler step (latents after the step, the x0 prediction, σ, model
	// calls so far) — for trajectory metrics in comparison runs. Its slices are only valid during the
	// call; copy what you keep.
	OnStep func(scheduler.Step)
}

// Resolved is every setting a run used, defaults filled in: enough to reproduce it.
type Resolved struct {
	Width, Height, Steps int
	BatchSize            int
	Sampler, Scheduler   string
	// CFGScale is SD3's guidance scale (1: no CFG), Guidance FLUX.1-dev's guidance input (0 when the
	// model has none), TrueCFGScale FLUX's true CFG scale (1: off).
	CFGScale, Guidance, TrueCFGScale float64
	// GuidanceRule is the guidance rule's canonical spelling ("" for plain CFG).
	GuidanceRule string `json:",omitempty"`
	// StepCache is the step cache's canonical spelling ("" for none).
	StepCache string `json:",omitempty"`
	// Shift is the static shift the schedule used; under dynamic shifting it is e^Mu, the equivalent
	// static shift, and Mu the resolution shift μ (0 otherwise).
	Shift, Mu float64
	// Sigmas are the σ the sampler walked (img2img: from the start σ), terminal 0 included;
	// ModelTimesteps the values fed to the transformer's timestep input at those σ.
	Sigmas, ModelTimesteps []float64
	// SigmasRaw: the request's custom σ list was used unshifted (Request.SigmasRaw).
	SigmasRaw         bool
	Seed              uint64
	RNG, BatchMode    string
	MaxSequenceLength int
	ClipSkip          int
	// Strength is the img2img strength (0 for txt2img); StartStep the schedule index img2img started at.
	Strength  float64
	StartStep int
	// InitLatent ("sample" or "mean") and ResizeMode (vae.ResizeMode's name) are img2img's ("" for txt2img).
	InitLatent string `json:",omitempty"`
	ResizeMode string `json:",omitempty"`
	// Task is "inpaint", "fill" or "kontext" for the edit tasks ("" otherwise); MaskBlur the mask's
	// blur radius and RefImages the number of Kontext references.
	Task      string  `json:",omitempty"`
	MaskBlur  float64 `json:",omitempty"`
	RefImages int     `json:",omitempty"`
}

// Result is what Generate returns.
type Result struct {
	// Images are the decoded pictures, one per batch entry, Width×Height.
	Images []*image.NRGBA
	// Noise is the initial noise and Latents the final latents, NCHW [BatchSize, C, H/8, W/8] in model
	// space (before the VAE's unscaling), for saving and replaying.
	Noise, Latents []float32
	Settings       Resolved
	Timings        Timings
	// Warnings are the run's warnings (also reported as StageWarning events), e.g. a truncated prompt.
	Warnings []Warning
}

// Event reports progress: Stage "load" (before a session is created; Component names it), "encode"
// (text encoding; Step 0 before, 1 after), "denoise" (after step Step of Total, 1-based, Sigma the
// step's start σ), "decode" (Step 0 before, 1 after), and "warning" (Message says what; see Warning).
type Event struct {
	Stage       string
	Step, Total int
	Sigma       float64
	// Component is the model component being loaded (load events only).
	Component string
	// Message is the text of a warning (StageWarning events only).
	Message string
}

// Event stages.
const (
	StageLoad    = "load"
	StageEncode  = "encode"
	StageDenoise = "denoise"
	StageDecode  = "decode"
)

// Timings are where a run's time went.
type Timings struct {
	// Steps is the number of denoising steps run.
	Steps int
	// Load is time spent creating ONNX Runtime sessions (0 for sessions kept from an earlier run).
	Load time.Duration
	// Tokenize and Encode are the prompt tokenization and the text-encoder runs.
	Tokenize, Encode time.Duration
	// Denoise is the whole sampling loop; Transformer the time inside transformer runs and Scheduler
	// the sampler's own arithmetic and callbacks (Denoise − time in the model function). What is left
	// (Denoise − Transformer − Scheduler) is the pipeline's per-step Go work: copies, packing, guidance.
	Denoise, Transformer, Scheduler time.Duration
	// ModelCalls is the number of model calls that ran the transformer (each one or more passes) and
	// CachedCalls the number a step cache filled instead (Request.StepCache).
	ModelCalls, CachedCalls int
	// Decode is the VAE decode (img2img: plus the encode of the init image).
	Decode time.Duration
	// Total is Generate's wall time.
	Total time.Duration
	// PeakRSSBytes is the process's peak resident set size so far (getrusage maxrss; 0 where the
	// platform has no such counter).
	PeakRSSBytes int64
}

// SizeError reports a width or height the model cannot draw.
type SizeError struct {
	Field  string // "width" or "height"
	Value  int
	Reason string
}

func (e *SizeError) Error() string {
	return fmt.Sprintf("pipeline: %s %d %s", e.Field, e.Value, e.Reason)
}

// ErrSLGUnsupported is wrapped when skip-layer guidance is asked of a model or export that cannot do it.
var ErrSLGUnsupported = errors.New("skip-layer guidance unsupported")

// checkMultiple16 rejects a side that is not a positive multiple of 16 and suggests the nearest ones.
func checkMultiple16(field string, v int) error {
	if v < 16 {
		return &SizeError{Field: field, Value: v, Reason: "is too small; the smallest size is 16"}
	}
	if v%16 != 0 {
		lo := v / 16 * 16
		return &SizeError{Field: field, Value: v, Reason: fmt.Sprintf("is not a multiple of 16; try %d or %d", lo, lo+16)}
	}
	return nil
}

// InitLatentMode is how img2img draws the init image's latent from the VAE encoder's Gaussian.
type InitLatentMode string

const (
	// InitLatentSample samples the latent with the seed's generator and then draws the noise from the
	// same generator, in diffusers' order (retrieve_latents with sample_mode "sample", then
	// randn_tensor): the result matches diffusers' img2img pipelines with a CPU generator. With several
	// generators (seed per image, batch items) each image's generator samples its own latent first.
	// "" means this.
	InitLatentSample InitLatentMode = "sample"
	// InitLatentMean takes the Gaussian's mean (diffusers' sample_mode "argmax") and leaves the
	// generator to the noise, which is then txt2img's: strength 1 equals txt2img with the same seed.
	InitLatentMean InitLatentMode = "mean"
)
