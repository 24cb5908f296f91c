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
	manifest, outDir, shard string
	shards                  int
	saveLatents             bool
}

// txt2imgOnly are txt2img flags that make no sense for a manifest: hidden and refused.
var txt2imgOnly = []string{"prompt", "prompt-2", "prompt-3", "output", "batch-count", "batch-mode", "init-image", "init-sample", "init-latent", "resize-mode",
	"strength", "preview-every", "preview-path", "overwrite", "timings", "keep-models", "sigmas"}

func addBatchFlags(fs *pflag.FlagSet) *batchFlags {
	f := &batchFlags{txt2imgFlags: addTxt2imgFlags(fs)}
	for _, name := range txt2imgOnly {
		_ = fs.MarkHidden(name)
	}
	fs.Lookup("batch-size").Usage = "most items drawn together in one transformer batch (items of equal size and settings)"
	fs.Lookup("seed").Usage = "seed base: an item without a seed gets seed + its index in the manifest (default 0)"
	fs.StringVar(&f.manifest, "manifest", "", "JSONL (one object per image or per prompt with count) or text (one prompt per line) (required)")
	fs.StringVar(&f.outDir, "out", "", "output folder: <id>.png, <id>.safetensors, results-<I>-of-<N>.jsonl (required)")
	fs.StringVar(&f.shard, "shard", "", "run shard I of N (I/N): items k with k mod N = I (default: from $JOB_COMPLETION_INDEX or $SLURM_ARRAY_TASK_ID, else 0/1)")
	fs.IntVar(&f.shards, "shards", 0, "shard count N when the index comes from the environment (default: $SLURM_ARRAY_TASK_COUNT)")
	fs.BoolVar(&f.saveLatents, "save-latents", false, "also write each item's initial noise and final latent as <id>.safetensors")
	return f
}

func runBatch(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := pflag.NewFlagSet("batch", pflag.ContinueOnError)
	f := addBatchFlags(fs)
	if err := parseFlags(fs, args, out); err != nil {
		return err
	}
	shard, items, base, err := f.setup(fs)
	if err != nil {
		var p *outputProblem
		if errorsAs(err, &p) {
			return p.err
		}
		return &usageError{fs: fs, err: err}
	}
	so, err := f.sessionOptions()
	if err != nil {
		return &usageError{fs: fs, err: err}
	}
	if err := f.ort.init(); err != nil {
		return err
	}
	m, err := openAnyModel(ctx, f.model, f.ckpt, errOut, f.quiet)
	if err != nil {
		return err
	}
	log, err := batch.OpenResultsLog(filepath.Join(f.outDir, shard.ResultsName()))
	if err != nil {
		return err
	}
	defer log.Close()
	mine := shard.Select(items)
	rep := newReporter(errOut, f.quiet)
	for _, w := range unusedFlagWarnings(fs, m) {
		rep.linef("rflow batch: warning: %s", w)
	}
	rep.linef("rflow batch: model %s (%s), shard %s: %d of %d items, results in %s", m.Name, m.Family, shard, len(mine),
		len(items), log.Path())
	p := pipeline.New(m, pipeline.Options{Session: so, KeepModels: true})
	defer p.Close()
	w := &batchWriter{dir: f.outDir, model: m, saveLatents: f.saveLatents}
	progress := newItemProgress(rep, len(mine))
	sum, err := batch.Run(ctx, p, mine, log, batch.Options{Base: base, BatchSize: f.batchSize,
		Model: m, Present: w.present, Write: w.write, OnItem: progress.item})
	progress.finish()
	summary := fmt.Sprintf("shard %s: %d items: %d done now, %d already done, %d failed", shard, sum.Items, sum.Succeeded,
		sum.Skipped, sum.Failed)
	switch {
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("interrupted (%s); rerun the same command to finish: %w", summary, err)
	case err != nil:
		return fmt.Errorf("%s: %w", summary, err)
	case sum.Failed > 0:
		return fmt.Errorf("%s (errors in %s)", summary, log.Path())
	}
	rep.linef("rflow batch: %s", summary)
	return nil
}

// setup validates the flags, reads the manifest and finds the shard.
func (f *batchFlags) setup(fs *pflag.FlagSet) (batch.Shard, []batch.Item, pipeline.Request, error) {
	var shard batch.Shard
	for _, name := range txt2imgOnly {
		if fs.Changed(name) {
			return shard, nil, pipeline.Request{}, fmt.Errorf("--%s is a txt2img flag; rflow batch takes prompts from --manifest", name)
		}
	}
	if f.manifest == "" || f.outDir == "" {
		return shard, nil, pipeline.Request{}, errors.New("--manifest and --out are required")
	}
	if f.batchSize < 1 {
		return shard, nil, pipeline.Request{}, errors.New("--batch-size must be at least 1")
	}
	if err := checkGenerationNumbers(fs, f.txt2imgFlags); err != nil {
		return shard, nil, pipeline.Request{}, err
	}
	if f.randomSeed {
		return shard, nil, pipeline.Request{}, errors.New("--seed -1 (random) does not apply to batch: every shard must draw the same images, so give a base seed")
	}
	if err := imagefile.CheckDirWritable(f.outDir); err != nil { // before anything loads
		return shard, nil, pipeline.Request{}, &outputProblem{fmt.Errorf("--out: %w", err), false}
	}
	shard, err := f.findShard()
	if err != nil {
		return shard, nil, pipeline.Request{}, err
	}
	base, err := f.baseRequest()
	if err != nil {
		return shard, nil, pipeline.Request{}, err
	}
	items, err := f.readManifest()
	return shard, items, base, err
}

// findShard takes --shard, else the environment with --shards.
func (f *batchFlags) findShard() (batch.Shard, error) {
	if f.shard != "" {
		if f.shards != 0 {
			return batch.Shard{}, errors.New("give --shard I/N or --shards N, not both")
		}
		return batch.ParseShard(f.shard)
	}
	if f.shards < 0 {
		return batch.Shard{}, fmt.Errorf("--shards %d: want a count ≥ 1", f.shards)
	}
	return batch.ShardFromEnv(f.shards, os.Getenv)
}

// readManifest parses --manifest with the flags' defaults.
func (f *batchFlags) readManifest() ([]batch.Item, error) {
	fh, err := os.Open(f.manifest)
	if err != nil {
		return nil, fmt.Errorf("--manifest: %w", err)
	}
	defer fh.Close()
	sampler, err := samplerName("--sampler", f.sampler)
	if err != nil {
		return nil, err
	}
	d := batch.Item{NegativePrompt: f.negative, Seed: f.seed, Steps: f.steps, Width: f.width, Height: f.height,
		CFGScale: f.cfg, Guidance: f.guidance, FlowShift: f.shift, Sampler: sampler, Scheduler: schedulerName(f.sched)}
	items, err := batch.ParseManifest(fh, d)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.manifest, err)
	}
	return items, nil
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
