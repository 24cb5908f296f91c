package pipeline

import (
	"context"
	"errors"
	"fmt"
	"image"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rflowrt/rflow/scheduler"
	"github.com/rflowrt/rflow/vae"
)

// EngineOptions configure an Engine.
type EngineOptions struct {
	// Session configures every ONNX Runtime session (provider, threads, cache).
	Session SessionOptions
	// MaxBatch is the most requests drawn in one transformer run (0 → 8; 1 turns batching off).
	MaxBatch int
	// BatchWindow is how long a request that finds the engine idle waits for compatible company
	// before its run starts (0: it starts at once; requests arriving while a run is in progress are
	// batched anyway, so a busy engine batches without any window).
	BatchWindow time.Duration
}

// ErrEngineClosed is returned by Engine.Generate after Close.
var ErrEngineClosed = errors.New("pipeline: engine closed")

// Engine serves many concurrent Generate calls with one model in memory: the sessions are loaded once
// and shared, and every request keeps its own state. Compatible requests waiting at the same time (equal
// size, steps, sampler, schedule, guidance, negative prompt — everything but the prompts and the seed)
// are drawn in one transformer run, each with its own prompt encoding and its own seed's noise, so each
// image is bit for bit the image a lone run of its request draws (Request.Items). Other requests
// (img2img, BatchSize > 1, Items, OnStep) run alone, in arrival order. Every session stays loaded from
// the first request until Close (Options.KeepModels): the sum of the model's components in memory.
type Engine struct {
	p    *Pipeline
	m    *Model
	o    EngineOptions
	jobs chan *engineJob

	runs, batched, largest atomic.Int64 // EngineStats

	mu     sync.Mutex
	closed bool
	done   chan struct{} // closed when the run loop has ended
	stop   context.CancelFunc
	runCtx context.Context
}

// engineJob is one Generate call waiting for, or in, a run.
type engineJob struct {
	ctx     context.Context
	req     Request
	onEvent func(Event)
	out     chan engineResult // buffered: the run loop never blocks on a caller that left
}

type engineResult struct {
	res Result
	err error
}

// NewEngine starts an engine for m. It loads nothing until the first request.
func NewEngine(m *Model, o EngineOptions) *Engine {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 8
	}
	ctx, stop := context.WithCancel(context.Background())
	e := &Engine{p: New(m, Options{Session: o.Session, KeepModels: true}), m: m, o: o, jobs: make(chan *engineJob, 1024),
		done: make(chan struct{}), stop: stop, runCtx: ctx}
	go e.loop()
	return e
}

// Model is the engine's model.
func (e *Engine) Model() *Model { return e.m }

// Generate draws r like Pipeline.Generate. onEvent is called from the engine's goroutine (never
// concurrently for one call). A cancelled ctx returns ctx.Err() at once; the run it shared with other
// requests goes on for them, and stops when every request in it is cancelled.
func (e *Engine) Generate(ctx context.Context, r Request, onEvent func(Event)) (Result, error) {
	if ctx == nil {
		return Result{}, errors.New("pipeline: nil context")
	}
	if e.m == nil {
		return Result{}, errors.New("pipeline: no model (NewEngine was given a nil *Model)")
	}
	j := &engineJob{ctx: ctx, req: r, onEvent: onEvent, out: make(chan engineResult, 1)}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return Result{}, ErrEngineClosed
	}
	select {
	case e.jobs <- j:
	default:
		e.mu.Unlock()
		return Result{}, errors.New("pipeline: engine queue full (1024 requests waiting)")
	}
	e.mu.Unlock()
	select {
	case r := <-j.out:
		return r.res, r.err
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// Check resolves r as Generate would, without loading or running anything: the settings a run would
// use, or the error an invalid request (size, steps, sampler, scheduler, …) gets from Generate.
func (e *Engine) Check(r Request) (Resolved, error) {
	if e.m == nil {
		return Resolved{}, errors.New("pipeline: no model (NewEngine was given a nil *Model)")
	}
	pl, err := e.p.resolve(r)
	if err != nil {
		return Resolved{}, err
	}
	return pl.settings, nil
}

// EngineStats count an engine's runs.
type EngineStats struct {
	// Runs is the number of denoising runs started; BatchedRequests the requests that shared a run
	// with others; LargestBatch the most requests one run drew.
	Runs, BatchedRequests, LargestBatch int64
}

// Stats are the engine's counts so far.
func (e *Engine) Stats() EngineStats {
	return EngineStats{Runs: e.runs.Load(), BatchedRequests: e.batched.Load(), LargestBatch: e.largest.Load()}
}

// count records a run of n requests.
func (e *Engine) count(n int) {
	e.runs.Add(1)
	if n > 1 {
		e.batched.Add(int64(n))
	}
	for {
		l := e.largest.Load()
		if int64(n) <= l || e.largest.CompareAndSwap(l, int64(n)) {
			return
		}
	}
}

// Close stops accepting requests, cancels the waiting ones and the run in progress, and releases every
// session once the run loop has ended.
func (e *Engine) Close() error {
	e.mu.Lock()
	if !e.closed {
		e.closed = true
		close(e.jobs)
	}
	e.mu.Unlock()
	e.stop()
	<-e.done
	return e.p.Close()
}

// loop takes the waiting requests, groups the compatible ones and runs each group, until Close.
func (e *Engine) loop() {
	defer close(e.done)
	for {
		j, ok := <-e.jobs
		if !ok {
			return
		}
		waiting := []*engineJob{j}
		if e.o.BatchWindow > 0 && e.o.MaxBatch > 1 {
			t := time.NewTimer(e.o.BatchWindow)
		window:
			for len(waiting) < e.o.MaxBatch {
				select {
				case j, ok := <-e.jobs:
					if !ok {
						break window
					}
					waiting = append(waiting, j)
				case <-t.C:
					break window
				}
			}
			t.Stop()
		}
	drain:
		for len(waiting) < 4*e.o.MaxBatch {
			select {
			case j, ok := <-e.jobs:
				if !ok {
					break drain
				}
				waiting = append(waiting, j)
			default:
				break drain
			}
		}
		for _, g := range e.groups(waiting) {
			e.run(g)
		}
	}
}

// groups splits waiting requests into runs: compatible ones together (at most MaxBatch), every other
// request alone, in the order of each group's first request.
func (e *Engine) groups(jobs []*engineJob) [][]*engineJob {
	var out [][]*engineJob
	open := map[string]int{} // key → index in out of the group still taking requests
	for _, j := range jobs {
		if j.ctx.Err() != nil {
			j.out <- engineResult{err: j.ctx.Err()}
			continue
		}
		k, ok := batchKey(j.req)
		if !ok || e.o.MaxBatch == 1 {
			out = append(out, []*engineJob{j})
			continue
		}
		if i, seen := open[k]; seen && len(out[i]) < e.o.MaxBatch {
			out[i] = append(out[i], j)
			continue
		}
		open[k] = len(out)
		out = append(out, []*engineJob{j})
	}
	return out
}

// perItem are the Request fields each request of a batched run keeps as its own.
var perItem = map[string]bool{"Prompt": true, "Prompt2": true, "Prompt3": true, "Seed": true, "PreviewEvery": true, "OnPreview": true}

// sharedSafe are the fields a batched run may share when equal: each is applied row by row, so an item
// of a run draws what a lone run draws (TestItemsMatchSingleRuns*, TestEngineBatchesMatchLoneRuns).
var sharedSafe = map[string]bool{"NegativePrompt": true, "NegativePrompt2": true, "NegativePrompt3": true, "Width": true,
	"Height": true, "Steps": true, "CFGScale": true, "Guidance": true, "TrueCFGScale": true, "Sampler": true, "Scheduler": true,
	"FlowShift": true, "Sigmas": true, "SigmasRaw": true, "RNG": true, "BatchMode": true, "MaxSequenceLength": true,
	"ClipSkip": true}

// batchKey is what requests must share to be drawn in one run. ok is false for a request that runs
// alone: Items, BatchSize > 1, or any field outside sharedSafe and perItem set (img2img, masks,
// callbacks, guidance rules or step caches that look at the whole batch, fields added later), whose
// effect on a batch is not known to be row by row.
func batchKey(r Request) (string, bool) {
	if len(r.Items) > 0 || r.BatchSize > 1 {
		return "", false
	}
	var b strings.Builder
	v := reflect.ValueOf(r)
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		switch {
		case perItem[name] || name == "BatchSize":
		case sharedSafe[name]:
			fmt.Fprintf(&b, "%s=%#v|", name, f.Interface())
		case !f.IsZero():
			return "", false
		}
	}
	return b.String(), true
}

// run draws one group: a lone request as it is, several as the Items of one request. A batched run that
// fails for another reason than cancellation is retried request by request, so one request's fault
// stays its own.
func (e *Engine) run(g []*engineJob) {
	ctx, cancel := context.WithCancel(e.runCtx)
	defer cancel()
	go cancelWhenAllDone(ctx, cancel, g)
	e.count(len(g))
	if len(g) == 1 {
		j := g[0]
		res, err := e.p.Generate(ctx, j.req, j.onEvent)
		switch {
		case err == nil:
		case j.ctx.Err() != nil:
			err = j.ctx.Err()
		case e.runCtx.Err() != nil:
			err = ErrEngineClosed
		}
		j.out <- engineResult{res, err}
		return
	}
	res, err := e.p.Generate(ctx, e.batchRequest(g), fanOut(g))
	if err != nil {
		if e.runCtx.Err() != nil {
			for _, j := range g {
				j.out <- engineResult{err: ErrEngineClosed}
			}
			return
		}
		for _, j := range g {
			if j.ctx.Err() != nil {
				j.out <- engineResult{err: j.ctx.Err()}
				continue
			}
			e.run([]*engineJob{j})
		}
		return
	}
	for i, j := range g {
		j.out <- engineResult{res: itemResult(res, i, len(g), j.req.Seed)}
		if j.onEvent != nil {
			for _, w := range res.Warnings {
				if w.Item == i {
					j.onEvent(Event{Stage: StageWarning, Message: itemMessage(w.Message, i)})
				}
			}
		}
	}
}

// cancelWhenAllDone cancels a run once every request in it is cancelled (or the run ended).
func cancelWhenAllDone(ctx context.Context, cancel context.CancelFunc, g []*engineJob) {
	for _, j := range g {
		select {
		case <-j.ctx.Done():
		case <-ctx.Done():
			return
		}
	}
	cancel()
}

// batchRequest is the group's shared request with one item per request; per-request previews are
// drawn from the step callback.
func (e *Engine) batchRequest(g []*engineJob) Request {
	r := g[0].req
	r.Items, r.BatchSize, r.Prompt, r.Prompt2, r.Prompt3 = nil, 0, "", "", ""
	r.PreviewEvery, r.OnPreview = 0, nil
	for _, j := range g {
		r.Items = append(r.Items, BatchItem{Prompt: j.req.Prompt, Prompt2: j.req.Prompt2, Prompt3: j.req.Prompt3, Seed: j.req.Seed})
	}
	if wantsPreview(g) {
		r.OnStep = e.previews(g, r)
	}
	return r
}

func wantsPreview(g []*engineJob) bool {
	return slices.ContainsFunc(g, func(j *engineJob) bool { return j.req.PreviewEvery > 0 && j.req.OnPreview != nil })
}

// previews is a step callback drawing each request's own latent preview, as a lone run would.
func (e *Engine) previews(g []*engineJob, r Request) func(scheduler.Step) {
	f := vae.SD3PreviewFactors()
	if e.m.Family == scheduler.FamilyFLUX {
		f = vae.FluxPreviewFactors()
	}
	return func(st scheduler.Step) {
		src := st.Denoised
		if src == nil {
			src = st.X
		}
		per := len(src) / len(g)
		if per == 0 {
			return
		}
		total := st.Total
		for i, j := range g {
			every := j.req.PreviewEvery
			if every <= 0 || j.req.OnPreview == nil || j.ctx.Err() != nil || ((st.Index+1)%every != 0 && st.Index+1 != total) {
				continue
			}
			c, h, w := e.latentShape(r, per)
			if img, err := vae.Preview(src[i*per:(i+1)*per], c, h, w, f); err == nil {
				j.req.OnPreview(st.Index+1, img)
			}
		}
	}
}

// latentShape is one image's latent C, H, W for a request of per values per image.
func (e *Engine) latentShape(r Request, per int) (c, h, w int) {
	c = e.m.VAE.LatentChannels
	sf := max(e.m.VAE.ScaleFactor, 1)
	h, w = r.Height/sf, r.Width/sf
	if c <= 0 || h*w*c != per { // default size: derive the side from the values (square)
		if c <= 0 {
			c = 16
		}
		side := 1
		for side*side*c < per {
			side++
		}
		h, w = side, side
	}
	return c, h, w
}

// fanOut sends a batched run's events to every request in it that has not left; warnings go to their
// own request after the run.
func fanOut(g []*engineJob) func(Event) {
	return func(ev Event) {
		if ev.Stage == StageWarning {
			return
		}
		for _, j := range g {
			if j.onEvent != nil && j.ctx.Err() == nil {
				j.onEvent(ev)
			}
		}
	}
}

// itemResult is item i's part of a batched result, with the settings of a lone run of it.
func itemResult(res Result, i, n int, seed uint64) Result {
	per := len(res.Latents) / n
	out := Result{Images: []*image.NRGBA{res.Images[i]}, Noise: slices.Clone(res.Noise[i*per : (i+1)*per]),
		Latents: slices.Clone(res.Latents[i*per : (i+1)*per]), Settings: res.Settings, Timings: res.Timings}
	out.Settings.Seed, out.Settings.BatchSize, out.Settings.BatchMode = seed, 1, OneGenerator.String()
	out.Settings.Sigmas, out.Settings.ModelTimesteps = slices.Clone(res.Settings.Sigmas), slices.Clone(res.Settings.ModelTimesteps)
	for _, w := range res.Warnings {
		if w.Item == i || w.Item < 0 {
			out.Warnings = append(out.Warnings, Warning{Item: -1, Message: itemMessage(w.Message, i)})
		}
	}
	return out
}

// itemMessage drops the "item i: " prefix a batched run puts on an item's warning.
func itemMessage(msg string, i int) string {
	return strings.TrimPrefix(msg, fmt.Sprintf("item %d: ", i))
}
