package batch

import (
	"context"
	"errors"
	"fmt"
	"github.com/rflowrt/rflow/pipeline"
	"image"
	"path/filepath"
	"time"
)

// Generator draws images: a *pipeline.Pipeline (tests substitute their own).
type Generator interface {
	Generate(ctx context.Context, r pipeline.Request, onEvent func(pipeline.Event)) (pipeline.Result, error)
}

// Options configure Run.
type Options struct {
	// Model is the generator's model; its VAE config gives the latents' shape.
	Model *pipeline.Model
	// Base holds the settings every item shares (RNG, MaxSequenceLength, ClipSkip, TrueCFGScale,
	// VAETiling, …); each item's prompt, seed and settings replace Base's.
	Base pipeline.Request
	// Settings are the run-wide settings the items' fingerprints are taken under (SettingsOf(Model,
	// Base)); a success record counts only with the item's fingerprint.
	Settings Settings
	// RedoChanged regenerates items whose success record carries another fingerprint (their manifest
	// line or the settings changed). Without it Run refuses to start on such records
	// (PinMismatchError): they are neither done nor to be silently overwritten.
	RedoChanged bool
	// BatchSize is the most items drawn in one transformer batch (0 → 1). Items are grouped by equal
	// size and settings; only items of one group share a batch.
	BatchSize int
	// Present reports whether an item's files (as its success record names them) still exist; an item
	// counts as finished only when the log records its success and Present agrees. nil: the record
	// alone decides.
	Present func(Item, Record) bool
	// Write stores an item's outputs (durably, e.g. temp file + rename) and returns the names to
	// record. It runs before the success record is appended.
	Write func(Item, ItemOutput) (ItemFiles, error)
	// OnItem, if set, sees every item as it is skipped, finished or failed.
	OnItem func(Progress)
}

// ItemOutput is one generated item.
type ItemOutput struct {
	Image *image.NRGBA
	// Noise and Latent are the item's initial noise and final latents [C, H, W] (model space).
	Noise, Latent []float32
	C, H, W       int
	// Settings are those of a run of this item alone (its seed, BatchSize 1).
	Settings pipeline.Resolved
	Timings  pipeline.Timings
	// BatchSize is the number of items of the batch it ran in.
	BatchSize int
	// Warnings are the run's warnings about this item (Result.Warnings), e.g. a truncated prompt.
	Warnings []string
}

// ItemFiles are the file names Write recorded, relative to the output folder.
type ItemFiles struct{ Image, Latents string }

// Progress reports one item.
type Progress struct {
	Item   Item
	Status string // StatusOK, StatusError or "skipped" (finished before)
	Err    error
	// Warnings are the item's warnings (finished items only), e.g. a truncated prompt.
	Warnings []string
	// Done is how many items of the run are settled (skipped, finished or failed) so far, of Total.
	Done, Total int
}

// StatusSkipped is Progress.Status for an item finished by an earlier run.
const StatusSkipped = "skipped"

// Summary counts a Run's items.
type Summary struct {
	Items, Skipped, Succeeded, Failed int
}

// groupKey is what items must share to run in one transformer batch.
type groupKey struct {
	neg                  string
	steps, width, height int
	cfg, guidance, shift float64
	sampler, scheduler   string
	// alone is the item's id for an item that edits pictures: such items run one by one (a request
	// with an init image cannot hold several items).
	alone string
}

func keyOf(it Item) groupKey {
	k := groupKey{it.NegativePrompt, it.Steps, it.Width, it.Height, it.CFGScale, it.Guidance, it.FlowShift, it.Sampler, it.Scheduler, ""}
	if it.Edits() {
		k.alone = it.ID
	}
	return k
}

// runner is one Run in progress.
type runner struct {
	p   Generator
	log *ResultsLog
	o   Options
	sum Summary
}

// Run generates every item not yet finished according to log (and o.Present), in batches of items
// with equal settings, and appends a record per item to log after its files are written. A failed
// item is recorded and the run goes on (a failed batch of several items is retried item by item).
// The error is non-nil only when the run cannot go on: ctx was cancelled, or a *RunError (a model
// component that cannot be loaded, an output folder or results log that cannot be written), or a
// PinMismatchError before anything ran; the summary counts what happened until then.
func Run(ctx context.Context, p Generator, items []Item, log *ResultsLog, o Options) (Summary, error) {
	if o.BatchSize < 1 {
		o.BatchSize = 1
	}
	if o.Write == nil {
		return Summary{}, errors.New("batch: Run needs a Write function")
	}
	if o.Model == nil {
		return Summary{}, errors.New("batch: Run needs the Model")
	}
	if !o.RedoChanged {
		if err := CheckChanged(items, log, o.Settings); err != nil {
			return Summary{}, err
		}
	}
	b := &runner{p: p, log: log, o: o, sum: Summary{Items: len(items)}}
	var order []groupKey
	groups := map[groupKey][]Item{}
	todo := items[:0:0]
	for _, it := range items {
		if rec, ok := log.Succeeded(it.ID); ok && rec.Fingerprint == it.Fingerprint(o.Settings) &&
			(o.Present == nil || o.Present(it, rec)) {
			b.sum.Skipped++
			b.report(it, StatusSkipped, nil)
			continue
		}
		todo = append(todo, it)
	}
	for _, it := range todo {
		k := keyOf(it)
		if _, seen := groups[k]; !seen {
			order = append(order, k)
		}
		groups[k] = append(groups[k], it)
	}
	for _, k := range order {
		g := groups[k]
		for len(g) > 0 {
			n := min(o.BatchSize, len(g))
			if err := b.runChunk(ctx, g[:n]); err != nil {
				return b.sum, err
			}
			g = g[n:]
		}
	}
	return b.sum, nil
}

// CheckChanged returns a PinMismatchError naming the items of log whose latest record is a success
// under another fingerprint (drawn with another prompt, seed or settings), nil when there are none.
func CheckChanged(items []Item, log *ResultsLog, s Settings) error {
	var changed []string
	unpinned := 0
	for _, it := range items {
		if rec, ok := log.Succeeded(it.ID); ok && rec.Fingerprint != it.Fingerprint(s) {
			changed = append(changed, it.ID)
			if rec.Fingerprint == "" {
				unpinned++
			}
		}
	}
	if len(changed) == 0 {
		return nil
	}
	what := fmt.Sprintf("%s records items drawn with another prompt, seed or settings", filepath.Base(log.Path()))
	if unpinned == len(changed) {
		what = fmt.Sprintf("%s records items from before batches were pinned (no fingerprint)", filepath.Base(log.Path()))
	}
	return &PinMismatchError{Dir: filepath.Dir(log.Path()), Changed: changed, Changes: []string{what}}
}

// RunError is a failure of the run rather than of one item: Run stops at it instead of recording
// it against every item that follows.
type RunError struct {
	// Item is the item being drawn or written when it happened ("" when none).
	Item string
	Err  error
}

func (e *RunError) Error() string {
	if e.Item == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("item %s: %v", e.Item, e.Err)
}

func (e *RunError) Unwrap() error { return e.Err }

// report calls OnItem.
func (b *runner) report(it Item, status string, err error, warnings ...string) {
	if b.o.OnItem != nil {
		s := b.sum
		b.o.OnItem(Progress{Item: it, Status: status, Err: err, Warnings: warnings, Done: s.Skipped + s.Succeeded + s.Failed,
			Total: s.Items})
	}
}

// request is Base with a chunk's shared settings and items; an item that edits pictures (alone in its
// chunk) is the request's own prompt, seed and pictures.
func (b *runner) request(chunk []Item) (pipeline.Request, error) {
	r := b.o.Base
	it := chunk[0]
	r.NegativePrompt, r.Steps, r.Width, r.Height = it.NegativePrompt, it.Steps, it.Width, it.Height
	r.CFGScale, r.Guidance, r.FlowShift, r.Sampler, r.Scheduler = it.CFGScale, it.Guidance, it.FlowShift, it.Sampler, it.Scheduler
	r.BatchSize, r.Items = 0, nil
	if it.Edits() {
		r.Prompt, r.Seed = it.Prompt, it.Seed
		return r, editRequest(&r, it, b.o.Model.FillModel())
	}
	for _, it := range chunk {
		r.Items = append(r.Items, pipeline.BatchItem{Prompt: it.Prompt, Seed: it.Seed})
	}
	return r, nil
}

// runChunk generates one batch and records its items.
func (b *runner) runChunk(ctx context.Context, chunk []Item) error {
	req, err := b.request(chunk)
	if err != nil { // an edit item's picture that cannot be read: that item's failure
		return b.fail(chunk[0], err, nil)
	}
	res, err := b.p.Generate(ctx, req, nil)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, pipeline.ErrLoad) {
			return &RunError{Item: chunk[0].ID, Err: err}
		}
		if len(chunk) > 1 { // find the item at fault; the others may still draw
			for _, it := range chunk {
				if err := b.runChunk(ctx, []Item{it}); err != nil {
					return err
				}
			}
			return nil
		}
		return b.fail(chunk[0], err, nil)
	}
	per := len(res.Latents) / len(chunk)
	c := b.o.Model.VAE.LatentChannels
	h, w := res.Settings.Height/b.o.Model.VAE.ScaleFactor, res.Settings.Width/b.o.Model.VAE.ScaleFactor
	for i, it := range chunk {
		s := res.Settings
		s.Seed, s.BatchSize, s.BatchMode = it.Seed, 1, "one-generator"
		out := ItemOutput{Image: res.Images[i], Noise: res.Noise[i*per : (i+1)*per], Latent: res.Latents[i*per : (i+1)*per],
			C: c, H: h, W: w, Settings: s, Timings: res.Timings, BatchSize: len(chunk), Warnings: itemWarnings(res.Warnings, i)}
		if err := b.finish(it, out); err != nil {
			return err
		}
	}
	return nil
}

// finish writes an item's files and appends its record.
func (b *runner) finish(it Item, out ItemOutput) error {
	start := time.Now()
	files, err := b.o.Write(it, out)
	if err != nil {
		if isStorageError(err) {
			return &RunError{Item: it.ID, Err: err}
		}
		return b.fail(it, err, &out)
	}
	tm := out.Timings
	ms := func(d time.Duration) int64 { return d.Milliseconds() }
	rec := Record{ID: it.ID, Index: it.Index, Status: StatusOK, Path: files.Image, Latents: files.Latents,
		Fingerprint: it.Fingerprint(b.o.Settings),
		Seed:        it.Seed, Prompt: it.Prompt, Settings: &out.Settings, Warnings: out.Warnings, Time: time.Now().UTC().Format(time.RFC3339Nano),
		Timings: &RecordTiming{BatchSize: out.BatchSize, LoadMS: ms(tm.Load), EncodeMS: ms(tm.Tokenize + tm.Encode),
			DenoiseMS: ms(tm.Denoise), DecodeMS: ms(tm.Decode), GenerateMS: ms(tm.Total), WriteMS: ms(time.Since(start)),
			PeakRSSByte: tm.PeakRSSBytes}}
	if err := b.log.Append(rec); err != nil {
		return &RunError{Item: it.ID, Err: err}
	}
	b.sum.Succeeded++
	b.report(it, StatusOK, nil, out.Warnings...)
	return nil
}

// fail appends an error record for an item.
func (b *runner) fail(it Item, cause error, out *ItemOutput) error {
	rec := Record{ID: it.ID, Index: it.Index, Status: StatusError, Error: cause.Error(), Seed: it.Seed,
		Fingerprint: it.Fingerprint(b.o.Settings),
		Prompt:      it.Prompt, Time: time.Now().UTC().Format(time.RFC3339Nano)}
	if out != nil {
		rec.Settings = &out.Settings
	}
	if err := b.log.Append(rec); err != nil {
		return &RunError{Item: it.ID, Err: fmt.Errorf("%w (while recording its failure: %v)", err, cause)}
	}
	b.sum.Failed++
	b.report(it, StatusError, cause)
	return nil
}

// itemWarnings are the messages of the warnings about item i or the whole request.
func itemWarnings(ws []pipeline.Warning, i int) []string {
	var out []string
	for _, w := range ws {
		if w.Item == i || w.Item < 0 {
			out = append(out, w.Message)
		}
	}
	return out
}
