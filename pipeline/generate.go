package pipeline

import (
	"context"
	"errors"
	"fmt"
	"image"
	"sync"
	"time"

	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/vae"
)

// Options configure a Pipeline. The zero value runs on the CPU with ORT's defaults and the lean memory
// policy.
type Options struct {
	// Session configures every ONNX Runtime session (provider, threads, cache).
	Session SessionOptions
	// KeepModels keeps every session loaded across Generate calls (faster repeated runs, the sum of all
	// components in memory). By default each stage loads what it needs and releases it when done: the
	// text encoders are released before the transformer loads, the transformer before the VAE decoder.
	KeepModels bool
}

// Pipeline generates images with one model folder. Generate calls are serialised; Close releases every
// session.
type Pipeline struct {
	mu sync.Mutex
	m  *Model
	o  Options
	ms *models
	// observe, when set (tests), sees every transformer pass's raw output.
	observe func(kind string, raw []float32)
	// conds caches per-prompt conditioning for runs with Request.Items.
	conds *condCache
}

// New returns a pipeline for m. It loads nothing; sessions are created by Generate.
func New(m *Model, o Options) *Pipeline {
	if m != nil && m.Compiled && o.Session.Provider != ort.TensorRT {
		o.Session.CacheDir = "" // TensorRT keeps its engine cache there, which holds no weight copy
	}
	return &Pipeline{m: m, o: o, ms: &models{m: m, so: o.Session, keep: o.KeepModels, available: availableBytes}}
}

// Close releases every loaded session; it waits for a Generate in progress. The pipeline can be used
// again afterwards (it reloads what it needs).
func (p *Pipeline) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		return nil
	}
	if err := p.ms.closeAll(); err != nil {
		return fmt.Errorf("pipeline: close: %w", err)
	}
	return nil
}

// Generate draws the images r asks for: text conditioning, initial noise (img2img: the encoded init
// image noised to the start σ), the denoising loop with the chosen sampler and guidance, and the VAE
// decode. onEvent, if not nil, is called on the calling goroutine at each stage and after every step. A
// cancelled ctx stops the run between steps or inside a model run, and Generate returns ctx.Err() and
// no images. Invalid requests are errors before anything is loaded.
func (p *Pipeline) Generate(ctx context.Context, r Request, onEvent func(Event)) (Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	start := time.Now()
	if p.m == nil {
		return Result{}, errors.New("pipeline: no model (New was given a nil *Model)")
	}
	if ctx == nil {
		return Result{}, errors.New("pipeline: nil context")
	}
	pl, err := p.resolve(r)
	if err != nil {
		return Result{}, err
	}
	if err := startRuntime(); err != nil { // a program outside this module may not have called Init
		return Result{}, err
	}
	p.ms.events, p.ms.loadTime = emitter(onEvent), 0
	res, err := p.generate(ctx, pl)
	if err != nil {
		if !p.o.KeepModels {
			_ = p.ms.closeAll() // the error is what the caller needs; nothing stays loaded
		}
		return Result{}, ctxErr(ctx, err)
	}
	res.Timings.Load = p.ms.loadTime
	res.Timings.Total = time.Since(start)
	res.Timings.PeakRSSBytes = peakRSS()
	return res, nil
}

// generate runs the stages of a resolved request.
func (p *Pipeline) generate(ctx context.Context, pl *plan) (Result, error) {
	res := Result{Settings: pl.settings}
	tm := &res.Timings
	var init []float32
	p.warnEdit(pl)
	if pl.req.InitImage != nil {
		var err error
		if init, res.Noise, err = p.initLatents(ctx, pl, tm); err != nil {
			return res, err
		}
	} else if err := p.encodeRefs(ctx, pl, tm); err != nil {
		return res, err
	}
	cond, err := p.encodeText(ctx, pl, tm)
	if err != nil {
		return res, err
	}
	if init == nil {
		if res.Noise, err = pl.noise(); err != nil {
			return res, fmt.Errorf("pipeline: noise: %w", err)
		}
	}
	x := append([]float32(nil), res.Noise...)
	if init != nil {
		scaleNoise(x, res.Noise, init, pl.sigmas[0])
	}
	if pl.steps() > 0 {
		if err := p.denoise(ctx, pl, cond, x, tm); err != nil {
			return res, err
		}
	}
	res.Latents = x
	res.Images, err = p.decode(ctx, pl, x, tm)
	res.Warnings = pl.warnings // the decode may add one
	pl.edit.overlay(res.Images)
	return res, err
}

// tilesForMemory is the tiles to decode pl's latents in when the decoder would decode them whole and
// the memory left is too small for that (memoryTiles), with the warning given; zero otherwise.
func (p *Pipeline) tilesForMemory(dec *vae.Decoder, pl *plan) vae.TileOptions {
	if auto := dec.AutoTiling(); auto.Tile > 0 && (pl.h > auto.Tile || pl.w > auto.Tile) {
		return vae.TileOptions{} // Decode tiles them already
	}
	avail, known := p.ms.available()
	tiles, warning := memoryTiles(dec.Config(), dec.DecodeBytes(pl.batch, pl.height, pl.width), pl.height, pl.width, avail, known)
	if tiles.Tile > 0 {
		pl.warnings = append(pl.warnings, Warning{Item: -1, Message: warning})
		p.ms.events.emit(Event{Stage: StageWarning, Message: warning})
	}
	return tiles
}

// encodeText loads the text encoders, computes the family's conditioning and releases them.
func (p *Pipeline) encodeText(ctx context.Context, pl *plan, tm *Timings) (conditioning, error) {
	ev := p.ms.events
	if err := p.ms.textEncoders(ctx, pl.req.ClipSkip); err != nil {
		return conditioning{}, err
	}
	ev.emit(Event{Stage: StageEncode, Total: 1})
	var cond conditioning
	var err error
	switch {
	case len(pl.req.Items) > 0:
		cond, err = p.encodeItems(ctx, pl, tm)
	case pl.flux:
		cond, err = p.encodeFlux(ctx, pl, tm)
	default:
		cond, err = p.encodeSD3(ctx, pl, tm)
	}
	if err != nil {
		return cond, err
	}
	ev.emit(Event{Stage: StageEncode, Step: 1, Total: 1})
	return cond, p.ms.release(p.ms.closeText)
}

// decode loads the VAE decoder, turns the latents into images and releases it.
func (p *Pipeline) decode(ctx context.Context, pl *plan, latents []float32, tm *Timings) ([]*image.NRGBA, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dec, err := p.ms.decoder(ctx)
	if err != nil {
		return nil, err
	}
	p.ms.events.emit(Event{Stage: StageDecode, Total: 1})
	start := time.Now()
	var pixels []float32
	if pl.req.VAETiling {
		pixels, err = dec.DecodeTiled(ctx, latents, pl.batch, pl.h, pl.w, p.m.VAE.TileOptions()) // diffusers' enable_tiling
	} else if tiles := p.tilesForMemory(dec, pl); tiles.Tile > 0 {
		pixels, err = dec.DecodeTiled(ctx, latents, pl.batch, pl.h, pl.w, tiles)
	} else {
		pixels, err = dec.Decode(ctx, latents, pl.batch, pl.h, pl.w)
	}
	tm.Decode += time.Since(start)
	if err != nil {
		return nil, fmt.Errorf("pipeline: vae_decoder: %w", ctxErr(ctx, err))
	}
	imgs, err := vae.ToImages(pixels, pl.batch, pl.height, pl.width)
	if err != nil {
		return nil, fmt.Errorf("pipeline: vae_decoder output: %w", err)
	}
	p.ms.events.emit(Event{Stage: StageDecode, Step: 1, Total: 1})
	return imgs, p.ms.release(p.ms.closeDecoder)
}
