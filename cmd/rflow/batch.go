package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/rflowrt/rflow/batch"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/rflowrt/rflow/internal/imagefile"
	"github.com/rflowrt/rflow/pipeline"
)

// batchFlags are rflow batch's own flags; the generation flags are txt2img's.
type batchFlags struct {
	*txt2imgFlags
	manifest, outDir, shard  string
	shards                   int
	saveLatents, redoChanged bool
}

// txt2imgOnly are txt2img flags that make no sense for a manifest: hidden and refused.
var txt2imgOnly = []string{"prompt", "prompt-2", "prompt-3", "output", "batch-count", "batch-mode", "init-image", "init-sample", "init-latent", "resize-mode",
	"strength", "mask", "mask-blur", "no-mask-overlay", "inpaint-full-res", "inpaint-full-res-padding", "ref-image", "ref-resize", "preview-every", "preview-path", "overwrite", "timings", "keep-models", "sigmas"}

func addBatchFlags(fs *pflag.FlagSet) *batchFlags {
	f := &batchFlags{txt2imgFlags: addTxt2imgFlags(fs)}
	for _, name := range txt2imgOnly {
		_ = fs.MarkHidden(name)
	}
	fs.Lookup("batch-size").Usage = "most items drawn together in one transformer batch (items of equal size and settings)"
	fs.Lookup("seed").Usage = "seed base: an item without a seed gets seed + its index in the manifest (default 0)"
	fs.StringVar(&f.manifest, "manifest", "", "JSONL (one object per image or per prompt with count; init_image, strength, mask, mask_blur, ref_images edit pictures, paths relative to the manifest) or text (one prompt per line) (required)")
	fs.StringVar(&f.outDir, "out", "", "output folder: <id>.png, <id>.safetensors, results-<I>-of-<N>.jsonl (required)")
	fs.StringVar(&f.shard, "shard", "", "run shard I of N (I/N): items k with k mod N = I (default: 0/1, or I from the environment with --shards)")
	fs.IntVar(&f.shards, "shards", 0, "shard count N; the index I is $JOB_COMPLETION_INDEX (Kubernetes) or $SLURM_ARRAY_TASK_ID (Slurm) as it is")
	fs.BoolVar(&f.saveLatents, "save-latents", false, "also write each item's initial noise and final latent as <id>.safetensors")
	fs.BoolVar(&f.redoChanged, "redo-changed", false, "the manifest or settings changed since the batch started in --out: regenerate the finished items they change (and repin)")
	return f
}

func runBatch(ctx context.Context, args []string, out, errOut io.Writer) error {
	if len(args) > 0 && args[0] == "status" {
		return runBatchStatus(args[1:], out, errOut)
	}
	fs := pflag.NewFlagSet("batch", pflag.ContinueOnError)
	f := addBatchFlags(fs)
	if err := parseFlags(fs, args, out); err != nil {
		return err
	}
	job, err := f.setup(fs)
	if err != nil {
		var p *outputProblem
		if errorsAs(err, &p) {
			return runLevel(p.err)
		}
		if errors.Is(err, batch.ErrObjectStorage) { // a usage error that needs advice, not --help
			return &codedError{err, 2}
		}
		return &usageError{fs: fs, err: err}
	}
	so, err := f.sessionOptions()
	if err != nil {
		return &usageError{fs: fs, err: err}
	}
	if err := f.ckpt.itemPromptLoRAs(job.items); err != nil {
		return &usageError{fs: fs, err: err}
	}
	mine := job.shard.Select(job.items)
	groups, err := groupByLoRAs(mine) // items with their own LoRAs run on their own compiled model
	if err != nil {
		return &usageError{fs: fs, err: err}
	}
	if err := f.ort.init(); err != nil {
		return runLevel(err)
	}
	m, err := openAnyModel(ctx, f.model, f.ckpt.with(groups[0].loras), errOut, f.quiet)
	if err != nil {
		return runLevel(err)
	}
	settings := f.pinnedSettings(m, job.base)
	if err := os.MkdirAll(f.outDir, 0o777); err != nil {
		return runLevel(fmt.Errorf("--out: %w", err))
	}
	pin := batch.NewPin(f.manifest, job.manifestSHA256, len(job.items), job.shard.Count, settings, job.defaults)
	pin.LoRADir = f.ckpt.loraDir
	if err := batch.PinBatch(f.outDir, pin, job.items, f.redoChanged); err != nil {
		return pinError(err)
	}
	log, err := batch.OpenResultsLog(filepath.Join(f.outDir, job.shard.ResultsName()))
	if err != nil {
		return runLevel(err)
	}
	defer log.Close()
	if !f.redoChanged { // before any LoRA group runs
		if err := batch.CheckChanged(mine, log, settings); err != nil {
			return pinError(err)
		}
	}
	rep := newReporter(errOut, f.quiet)
	for _, w := range unusedFlagWarnings(fs, m) {
		rep.linef("rflow batch: warning: %s", w)
	}
	rep.linef("rflow batch: model %s (%s), shard %s%s: %d of %d items, results in %s", m.Name, m.Family, job.shard,
		job.shardFrom, len(mine), len(job.items), log.Path())
	p := pipeline.New(m, pipeline.Options{Session: so, KeepModels: true})
	defer func() { p.Close() }()
	w := &batchWriter{dir: f.outDir, model: m, saveLatents: f.saveLatents}
	progress := newItemProgress(rep, len(mine))
	var sum batch.Summary
	for i, g := range groups {
		if i > 0 {
			p.Close()
			if m, err = openAnyModel(ctx, f.model, f.ckpt.with(g.loras), errOut, f.quiet); err != nil {
				return runLevel(err)
			}
			p, w.model = pipeline.New(m, pipeline.Options{Session: so, KeepModels: true}), m
		}
		var s batch.Summary
		s, err = batch.Run(ctx, p, g.items, log, batch.Options{Base: job.base, BatchSize: f.batchSize, Model: m,
			Settings: settings, RedoChanged: f.redoChanged, Present: w.present, Write: w.write, OnItem: progress.item})
		sum = batch.Summary{Items: sum.Items + s.Items, Skipped: sum.Skipped + s.Skipped, Succeeded: sum.Succeeded + s.Succeeded,
			Failed: sum.Failed + s.Failed}
		if err != nil {
			break
		}
	}
	progress.finish()
	summary := fmt.Sprintf("shard %s: %d items: %d done now, %d already done, %d failed", job.shard, sum.Items, sum.Succeeded,
		sum.Skipped, sum.Failed)
	var runErr *batch.RunError
	var mismatch *batch.PinMismatchError
	switch {
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("interrupted (%s); rerun the same command to finish: %w", summary, err)
	case errorsAs(err, &mismatch):
		return pinError(err)
	case errorsAs(err, &runErr):
		return runLevel(fmt.Errorf("stopped (%s): %w", summary, err))
	case err != nil:
		return fmt.Errorf("%s: %w", summary, err)
	case sum.Failed > 0:
		return fmt.Errorf("%s (errors in %s)", summary, log.Path())
	}
	rep.linef("rflow batch: %s", summary)
	return nil
}

// exitRunLevel is rflow batch's exit status when the run as a whole cannot go on (ONNX Runtime or the
// model cannot load, a missing execution provider, an output folder that cannot be written, the
// shard already running elsewhere): distinct from 1, some items failed, and from 2, a usage error.
const exitRunLevel = 3

// codedError carries its exit status to main.
type codedError struct {
	err  error
	code int
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }
func (e *codedError) exitCode() int { return e.code }

// runLevel marks err as stopping the whole run (exit status 3).
func runLevel(err error) error { return &codedError{err, exitRunLevel} }

// pinError is a run refused because --out holds another batch: exit status 2, as a usage error (every
// shard would refuse the same way, so a scheduler should not retry it).
func pinError(err error) error {
	var mismatch *batch.PinMismatchError
	if errorsAs(err, &mismatch) {
		return &codedError{err, 2}
	}
	return runLevel(err)
}

// pinnedSettings are the run-wide settings that decide the images: the request's, and for a compiled
// checkpoint the run's --lora files (base names: paths differ between nodes) and weight kinds.
func (f *batchFlags) pinnedSettings(m *pipeline.Model, base pipeline.Request) batch.Settings {
	s := batch.SettingsOf(m, base)
	if m.Compiled {
		for _, l := range f.ckpt.loras {
			s.LoRAs = append(s.LoRAs, fmt.Sprintf("%s:%g", filepath.Base(l.Path), l.Weight))
		}
		s.Weights, s.TextEncoderWeights = string(f.ckpt.weights), string(f.ckpt.teWeights)
	}
	return s
}

// batchJob is what the flags and the manifest describe.
type batchJob struct {
	shard          batch.Shard
	shardFrom      string // " (from $VAR)" when the index came from the environment
	items          []batch.Item
	defaults       batch.Item
	manifestSHA256 string
	base           pipeline.Request
}

// setup validates the flags, reads the manifest and finds the shard.
func (f *batchFlags) setup(fs *pflag.FlagSet) (batchJob, error) {
	var job batchJob
	for _, name := range txt2imgOnly {
		if fs.Changed(name) {
			return job, fmt.Errorf("--%s is a txt2img flag; rflow batch takes prompts from --manifest", name)
		}
	}
	if f.manifest == "" || f.outDir == "" {
		return job, errors.New("--manifest and --out are required")
	}
	if err := batch.CheckOutDir(f.outDir); err != nil {
		return job, fmt.Errorf("--out: %w", err)
	}
	if f.batchSize < 1 {
		return job, errors.New("--batch-size must be at least 1")
	}
	if err := checkGenerationNumbers(fs, f.txt2imgFlags); err != nil {
		return job, err
	}
	if f.randomSeed {
		return job, errors.New("--seed -1 (random) does not apply to batch: every shard must draw the same images, so give a base seed")
	}
	var err error
	var from string
	if job.shard, from, err = f.findShard(); err != nil {
		return job, err
	}
	if from != "" && from != "--shard" {
		job.shardFrom = " (index from $" + from + ")"
	}
	if job.base, err = f.baseRequest(); err != nil {
		return job, err
	}
	if job.items, job.defaults, job.manifestSHA256, err = f.readManifest(); err != nil {
		return job, err
	}
	if err := imagefile.CheckDirWritable(f.outDir); err != nil { // before anything loads
		return job, &outputProblem{fmt.Errorf("--out: %w", err), false}
	}
	return job, nil
}

// findShard takes --shard I/N, else the index from the environment with --shards N. Both together
// must agree on N. The index is never derived from a job array's size or minimum, so a resubmitted
// subset of an array runs exactly the shards its task ids name.
func (f *batchFlags) findShard() (batch.Shard, string, error) {
	if f.shards < 0 {
		return batch.Shard{}, "", fmt.Errorf("--shards %d: want a count ≥ 1", f.shards)
	}
	if f.shard != "" {
		s, err := batch.ParseShard(f.shard)
		if err != nil {
			return s, "", fmt.Errorf("--shard: %w", err)
		}
		if f.shards != 0 && f.shards != s.Count {
			return s, "", fmt.Errorf("--shard %s and --shards %d disagree on the shard count", f.shard, f.shards)
		}
		return s, "--shard", nil
	}
	return batch.ShardFromEnv(f.shards, os.Getenv)
}

// readManifest parses --manifest with the flags' defaults and hashes its bytes.
func (f *batchFlags) readManifest() (items []batch.Item, defaults batch.Item, sha string, err error) {
	sampler, err := samplerName("--sampler", f.sampler)
	if err != nil {
		return nil, defaults, "", err
	}
	defaults = batch.Item{NegativePrompt: f.negative, Seed: f.seed, Steps: f.steps, Width: f.width, Height: f.height,
		CFGScale: f.cfg, Guidance: f.guidance, FlowShift: f.shift, Sampler: sampler, Scheduler: schedulerName(f.sched)}
	items, sha, err = readManifestFile(f.manifest, defaults)
	return items, defaults, sha, err
}

// readManifestFile parses a manifest file and returns its items (their pictures found and hashed) and
// its bytes' SHA-256.
func readManifestFile(path string, defaults batch.Item) ([]batch.Item, string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("--manifest: %w", err)
	}
	defer fh.Close()
	var items []batch.Item
	sha, err := batch.HashReader(fh, func(r io.Reader) error {
		var err error
		items, err = batch.ParseManifest(r, defaults)
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	if err := batch.ResolveInputs(items, filepath.Dir(path)); err != nil { // relative to the manifest's folder
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	return items, sha, nil
}

// baseRequest holds the settings every item shares.
func (f *batchFlags) baseRequest() (pipeline.Request, error) {
	kind, err := rngKind(f.rngKind)
	if err != nil {
		return pipeline.Request{}, err
	}
	return pipeline.Request{RNG: kind, TrueCFGScale: f.trueCFG, MaxSequenceLength: f.maxSeq, ClipSkip: f.clipSkip,
		VAETiling: f.vaeTiling}, nil
}
