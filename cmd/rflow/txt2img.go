package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // --init-image formats
	_ "image/png"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/rflowrt/rflow/assets"
	"github.com/rflowrt/rflow/internal/imagefile"
	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/internal/rng"
	"github.com/rflowrt/rflow/pipeline"
	"github.com/rflowrt/rflow/scheduler"
	"github.com/rflowrt/rflow/vae"
)

// txt2imgFlags are rflow txt2img's flags; names follow stable-diffusion.cpp and diffusers.
type txt2imgFlags struct {
	model, prompt, negative, prompt2, prompt3     string
	width, height, steps                          int
	cfg, guidance, trueCFG, shift, strength       float64
	sampler, sched, sigmas, rngKind, batchMode    string
	seed                                          uint64
	randomSeed                                    bool // -s -1
	batchCount, batchSize                         int
	initImage, provider                           string
	deviceID, threads, maxSeq, clipSkip           int
	previewEvery                                  int
	previewPath, timings, out                     string
	vaeTiling, keep, overwrite, quiet, initSample bool
	ort                                           *ortFlags
	sess                                          *sessionFlags
	ckpt                                          checkpointFlags
	slg                                           slgFlags
	edit                                          *editFlags

	sigmasRaw   bool   // --sigmas-raw
	initLatent  string // --init-latent
	resizeMode  string // --resize-mode
	saveLatents bool   // --save-latents (txt2img's own flag; batch has its own)
}

func addTxt2imgFlags(fs *pflag.FlagSet) *txt2imgFlags {
	f := &txt2imgFlags{}
	fs.StringVarP(&f.model, "model", "m", "", "model: an ONNX export folder (diffusers/Optimum layout), a checkpoint (.safetensors file or diffusers folder, compiled on first use) or an embedded demo: "+strings.Join(assets.Names(), ", ")+" (default "+assets.Default+")")
	f.ckpt.register(fs)
	f.slg.register(fs)
	fs.StringVarP(&f.prompt, "prompt", "p", "", "the prompt (required)")
	fs.StringVarP(&f.negative, "negative-prompt", "n", "", "negative prompt (SD3 CFG, FLUX true CFG)")
	fs.StringVar(&f.prompt2, "prompt-2", "", "prompt for CLIP-G (SD3) or T5 (FLUX); default: --prompt")
	fs.StringVar(&f.prompt3, "prompt-3", "", "prompt for T5 (SD3); default: --prompt")
	fs.IntVarP(&f.width, "width", "W", 0, "image width, a multiple of 16 (default: the model's)")
	fs.IntVarP(&f.height, "height", "H", 0, "image height, a multiple of 16 (default: the model's)")
	fs.IntVar(&f.steps, "steps", 0, "denoising steps (default: SD3 28, FLUX-dev 28, schnell 4)")
	fs.Float64Var(&f.cfg, "cfg-scale", 0, "classifier-free guidance scale; > 1 runs a negative pass (default: SD3 7.0)")
	fs.Float64Var(&f.guidance, "guidance", 0, "FLUX-dev distilled guidance (default 3.5)")
	fs.Float64Var(&f.trueCFG, "true-cfg-scale", 0, "FLUX true CFG scale; > 1 with -n runs two passes per step")
	fs.StringVar(&f.sampler, "sampler", "", "sampler: "+strings.Join(scheduler.SamplerNames(), ", ")+"; sd.cpp and A1111 names too (euler_a, dpm++2m, \"DPM++ 2M\") (default: the step of the scheduler class the model's scheduler_config.json names, as diffusers: euler, heun, dpmpp_2m or uni_pc)")
	fs.StringVar(&f.sampler, "sampling-method", "", "same as --sampler (stable-diffusion.cpp's name)")
	fs.StringVar(&f.sched, "scheduler", "", "schedule: "+strings.Join(scheduler.SchedulerNames(), ", ")+"; A1111 names too; discrete or automatic: the model's own (default: the model's)")
	fs.Float64Var(&f.shift, "flow-shift", 0, "static σ shift (replaces the model's; 0 keeps it)")
	fs.StringVar(&f.sigmas, "sigmas", "", "comma-separated custom σ list (decreasing in [0, 1]), shifted like the model's schedule, as diffusers does")
	fs.BoolVar(&f.sigmasRaw, "sigmas-raw", false, "use --sigmas exactly as given, without the model's shift")
	fs.VarP(seedValue{&f.seed, &f.randomSeed}, "seed", "s", "seed; -1 or left out: random, printed")
	fs.StringVar(&f.rngKind, "rng", string(rng.TorchCPU), rngHelp)
	fs.StringVar(&f.batchMode, "batch-mode", "seed-per-image", "noise of several images: seed-per-image (image k uses seed + k and reproduces alone with it, as in A1111 and sd.cpp) or one-generator (one generator over each run's whole batch, as diffusers; an image is then entry k of its run's seed)")
	fs.IntVarP(&f.batchCount, "batch-count", "b", 1, "number of runs; image k of all runs uses seed + k (run i starts at seed + i·batch-size)")
	fs.IntVar(&f.batchSize, "batch-size", 1, "images per run (one transformer batch)")
	fs.StringVarP(&f.initImage, "init-image", "i", "", "img2img: the starting image (PNG or JPEG), fitted to the size by --resize-mode")
	fs.Float64Var(&f.strength, "strength", 0.75, "img2img: how much of the schedule to run (0 keeps the image, 1 ignores it)")
	fs.StringVar(&f.initLatent, "init-latent", "sample", "img2img: sample (draw the init image's VAE latent with the seed's generator, then the noise, as diffusers) or mean (the latent's mean and txt2img's noise: strength 1 is then txt2img with the same seed)")
	fs.BoolVar(&f.initSample, "init-sample", false, "same as --init-latent sample (the default)")
	fs.StringVar(&f.resizeMode, "resize-mode", "just-resize", "img2img, an init image of another size: just-resize (stretch, as diffusers), crop-and-resize (cover, cut the middle) or resize-and-fill (fit, fill the bands with the stretched edges), A1111's modes; Pillow's Lanczos")
	fs.StringVar(&f.provider, "provider", "cpu", "execution provider: cpu, cuda, tensorrt, coreml, directml")
	fs.IntVar(&f.deviceID, "device-id", 0, "GPU index for cuda, tensorrt and directml")
	fs.IntVarP(&f.threads, "threads", "t", 0, "intra-op threads (default: number of cores)")
	fs.IntVar(&f.maxSeq, "max-sequence-length", 0, "T5 tokens (default: SD3 256, FLUX 512, as diffusers)")
	fs.IntVar(&f.clipSkip, "clip-skip", 0, "SD3: skip this many final CLIP layers")
	fs.IntVar(&f.previewEvery, "preview-every", 0, "write a latent→RGB preview of the first image every N steps and after the last (0: off)")
	fs.StringVar(&f.previewPath, "preview-path", "preview.png", "where --preview-every writes, replacing the last preview; {step} and -o's placeholders expand (preview-{step}.png keeps each); the image's size fitted into 512×512, no metadata")
	fs.BoolVar(&f.vaeTiling, "vae-tiling", false, "decode the VAE in tiles (large images)")
	fs.BoolVar(&f.keep, "keep-models", false, "keep every model loaded (faster repeated runs, more memory)")
	fs.StringVar(&f.timings, "timings", "", "write timings as JSON to FILE, or - for stdout")
	fs.BoolVar(&f.overwrite, "overwrite", false, "replace existing output files")
	fs.BoolVarP(&f.quiet, "quiet", "q", false, "print nothing but errors")
	fs.StringVarP(&f.out, "output", "o", "output.png", "output path; {seed}, {index}, {prompt} expand; .jpg/.jpeg writes JPEG")
	f.ort = addORTFlags(fs)
	f.sess = addSessionFlags(fs)
	f.edit = addEditFlags(fs)
	return f
}

func runTxt2img(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := pflag.NewFlagSet("txt2img", pflag.ContinueOnError)
	f := addTxt2imgFlags(fs)
	fs.BoolVar(&f.saveLatents, "save-latents", false, "also write each image's initial noise and final latents as safetensors beside it (<image name>.safetensors)")
	if err := parseFlags(fs, args, out); err != nil {
		return err
	}
	req, err := f.request(fs)
	if err != nil {
		return &usageError{fs: fs, err: err}
	}
	if req.Prompt, err = f.ckpt.promptLoRAs(req.Prompt); err != nil {
		return &usageError{fs: fs, err: err}
	}
	so, err := f.sessionOptions()
	if err != nil {
		return &usageError{fs: fs, err: err}
	}
	if !fs.Changed("seed") || f.randomSeed {
		req.Seed = randomSeed()
	}
	// Every output problem that can be found now is found before anything loads.
	if err := f.checkOutputs(req, ""); err != nil {
		return outputError(fs, err)
	}
	if err := f.ort.init(); err != nil {
		return err
	}
	m, err := openAnyModel(ctx, f.model, f.ckpt, errOut, f.quiet)
	if err != nil {
		return err
	}
	if err := f.checkOutputs(req, m.Name); err != nil { // {model} is known now
		return outputError(fs, err)
	}
	editDefaults(fs, m, &req)
	log := newReporter(errOut, f.quiet)
	for _, w := range unusedFlagWarnings(fs, m) {
		log.linef("rflow: warning: %s", w)
	}
	log.linef("rflow: model %s (%s), seed %d", m.Name, m.Family, req.Seed)
	p := pipeline.New(m, pipeline.Options{Session: so, KeepModels: f.keep})
	defer p.Close()
	return f.runBatches(ctx, p, m, req, log, out)
}

// checkOutputs checks -o for every image of the run and the --timings file, with the values known
// before generation (model "" while the model is not open yet).
func (f *txt2imgFlags) checkOutputs(req pipeline.Request, model string) error {
	vars := func(i int) imagefile.TemplateVars {
		return imagefile.TemplateVars{Seed: imageSeedAt(req.Seed, i, req.BatchSize, req.BatchMode), Index: i, Prompt: req.Prompt,
			Steps: f.steps, Sampler: f.sampler, Width: f.width, Height: f.height, Model: model}
	}
	known := func(field string) bool {
		switch field {
		case "model":
			return model != ""
		case "steps":
			return f.steps > 0
		case "sampler":
			return false // the resolved name may differ from the flag's spelling
		case "width":
			return f.width > 0
		case "height":
			return f.height > 0
		}
		return true
	}
	if err := f.outputNames().check(vars, known); err != nil {
		return err
	}
	if f.saveLatents && model != "" {
		for i := range f.batchCount * req.BatchSize {
			path, err := imagefile.ExpandTemplate(f.outputNames().tmpl, vars(i))
			if err != nil {
				continue // reported by the check above
			}
			lp := latentsPath(path)
			if st, err := os.Stat(lp); err == nil && (st.IsDir() || !f.overwrite) {
				return &outputProblem{fmt.Errorf("--save-latents: %s exists (--overwrite replaces a file)", lp), false}
			}
		}
	}
	if f.previewEvery > 0 {
		if _, err := imagefile.TemplateFields(f.previewPath, true); err != nil {
			return &outputProblem{fmt.Errorf("--preview-path %s: %w", f.previewPath, err), true}
		}
		v := vars(0)
		v.Step = 1
		path, _ := imagefile.ExpandTemplate(f.previewPath, v)
		if _, err := imagefile.FormatForPath(path); err != nil {
			return &outputProblem{fmt.Errorf("--preview-path %s: %w", f.previewPath, err), true}
		}
		if err := imagefile.CheckOutput(path, imagefile.WriteOptions{Overwrite: true}); err != nil {
			return &outputProblem{fmt.Errorf("--preview-path %s: %w", f.previewPath, err), false}
		}
	}
	if f.timings != "" && f.timings != "-" {
		if st, err := os.Stat(f.timings); err == nil && st.IsDir() {
			return &outputProblem{fmt.Errorf("--timings %s is a directory", f.timings), true}
		}
		if err := imagefile.CheckDirWritable(filepath.Dir(f.timings)); err != nil {
			return &outputProblem{fmt.Errorf("--timings %s: %w", f.timings, err), false}
		}
	}
	return nil
}

// outputError turns an output problem into a usage error where the command line is at fault.
func outputError(fs *pflag.FlagSet, err error) error {
	var p *outputProblem
	if errorsAs(err, &p) && p.usage {
		return &usageError{fs: fs, err: p.err}
	}
	return err
}

// request turns the flags into a pipeline request (the seed is filled in by the caller).
func (f *txt2imgFlags) request(fs *pflag.FlagSet) (pipeline.Request, error) {
	if f.prompt == "" {
		return pipeline.Request{}, errors.New("-p/--prompt is required")
	}
	if f.batchCount < 1 || f.batchSize < 1 {
		return pipeline.Request{}, fmt.Errorf("--batch-count and --batch-size must be at least 1")
	}
	if err := checkGenerationNumbers(fs, f); err != nil {
		return pipeline.Request{}, err
	}
	kind, err := rngKind(f.rngKind)
	if err != nil {
		return pipeline.Request{}, err
	}
	sampler, err := samplerName("--sampler", f.sampler)
	if err != nil {
		return pipeline.Request{}, err
	}
	mode, err := rng.ParseBatchMode(f.batchMode)
	if err != nil {
		return pipeline.Request{}, err
	}
	r := pipeline.Request{Prompt: f.prompt, Prompt2: f.prompt2, Prompt3: f.prompt3, NegativePrompt: f.negative,
		Width: f.width, Height: f.height, Steps: f.steps, CFGScale: f.cfg, Guidance: f.guidance, TrueCFGScale: f.trueCFG,
		Sampler: sampler, Scheduler: schedulerName(f.sched), FlowShift: f.shift, Seed: f.seed, RNG: kind, BatchMode: mode,
		BatchSize: f.batchSize, MaxSequenceLength: f.maxSeq, ClipSkip: f.clipSkip, VAETiling: f.vaeTiling,
		PreviewEvery: f.previewEvery}
	if err := f.slg.apply(fs, &r); err != nil {
		return r, err
	}
	if f.sigmas != "" {
		if r.Sigmas, err = parseFloats(f.sigmas); err != nil {
			return r, fmt.Errorf("--sigmas: %v", err)
		}
		r.SigmasRaw = f.sigmasRaw
	} else if f.sigmasRaw {
		return r, errors.New("--sigmas-raw needs --sigmas")
	}
	if f.initImage != "" {
		if r.InitImage, err = readImage(f.initImage); err != nil {
			return r, err
		}
		r.Strength = f.strength
		if r.InitLatent, err = initLatentMode(f.initLatent, f.initSample); err != nil {
			return r, err
		}
		if r.ResizeMode, err = vae.ParseResizeMode(f.resizeMode); err != nil {
			return r, fmt.Errorf("--resize-mode: %v", err)
		}
	} else {
		for _, name := range []string{"strength", "init-latent", "init-sample", "resize-mode"} {
			if fs.Changed(name) {
				return r, fmt.Errorf("--%s needs --init-image", name)
			}
		}
	}
	return r, f.edit.apply(fs, &r)
}

// initLatentMode reads --init-latent (and the older --init-sample, which names the default).
func initLatentMode(name string, initSample bool) (pipeline.InitLatentMode, error) {
	switch m := pipeline.InitLatentMode(strings.ToLower(strings.TrimSpace(name))); m {
	case pipeline.InitLatentSample:
		return m, nil
	case pipeline.InitLatentMean:
		if initSample {
			return "", errors.New("--init-sample and --init-latent mean contradict each other")
		}
		return m, nil
	}
	return "", fmt.Errorf("--init-latent %q: want sample or mean", name)
}

func readImage(path string) (image.Image, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--init-image: %w", err)
	}
	defer fh.Close()
	img, _, err := image.Decode(fh)
	if err != nil {
		return nil, fmt.Errorf("--init-image %s: not a PNG or JPEG image: %w", path, err)
	}
	return img, nil
}

func (f *txt2imgFlags) sessionOptions() (ort.SessionOptions, error) {
	p, err := ort.ParseProvider(f.provider)
	if err != nil {
		return ort.SessionOptions{}, err
	}
	so := ort.SessionOptions{Provider: p, DeviceID: f.deviceID, IntraOpThreads: f.threads}
	return so, f.sess.apply(&so, os.Getenv)
}

func randomSeed() uint64 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return uint64(binary.LittleEndian.Uint32(b[:])) // torch keeps 32 bits of a seed
}
