package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/rflowrt/rflow/internal/rng"
	"github.com/rflowrt/rflow/vae"
)

// resolveInitModes checks and fills in img2img's latent and resize modes.
func resolveInitModes(r *Request) error {
	switch r.InitLatent {
	case "":
		r.InitLatent = InitLatentSample
	case InitLatentSample, InitLatentMean:
	default:
		return fmt.Errorf("pipeline: init latent %q: want %q or %q", r.InitLatent, InitLatentSample, InitLatentMean)
	}
	if _, err := vae.ParseResizeMode(r.ResizeMode.String()); err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	return nil
}

// initResizeName is the resize mode recorded in Resolved ("" for txt2img).
func initResizeName(r Request) string {
	if r.InitImage == nil {
		return ""
	}
	return r.ResizeMode.String()
}

// initLatents turns the init image into model-space latents [batch, c, h, w] and draws the initial
// noise [batch, c, h, w], in diffusers' img2img order:
//
//   - InitLatentSample, one generator (diffusers' single torch.Generator): the image is encoded once, its
//     latent sampled with the seed's generator, repeated over the batch (diffusers repeats init_latents),
//     and then the batch's noise is drawn from the same generator;
//   - InitLatentSample, one generator per image (seed per image, batch items; diffusers' list of
//     generators): generator k samples image k's latent and then draws image k's noise;
//   - InitLatentMean: the Gaussian's mean, repeated, and txt2img's noise.
//
// The encoder is released afterwards.
func (p *Pipeline) initLatents(ctx context.Context, pl *plan, tm *Timings) (init, noise []float32, err error) {
	pixels, err := vae.FromImage(pl.req.InitImage, pl.width, pl.height, pl.req.ResizeMode)
	if err != nil {
		return nil, nil, fmt.Errorf("pipeline: init image: %w", err)
	}
	per := pl.c * pl.h * pl.w
	var gens []rng.Source
	if pl.req.InitLatent != InitLatentMean {
		if gens, err = pl.initGenerators(); err != nil {
			return nil, nil, fmt.Errorf("pipeline: noise: %w", err)
		}
	}
	enc, err := p.ms.encoder(ctx)
	if err != nil {
		return nil, nil, err
	}
	start := time.Now()
	switch {
	case gens == nil:
		init, err = enc.Encode(ctx, pixels, 1, pl.height, pl.width, vae.EncodeMean, nil)
	default:
		noises := make([]func([]float32), len(gens))
		for k, g := range gens {
			noises[k] = g.Randn
		}
		init, err = enc.EncodeSamples(ctx, pixels, pl.height, pl.width, noises)
	}
	tm.Decode += time.Since(start)
	if err != nil {
		return nil, nil, fmt.Errorf("pipeline: vae_encoder: %w", ctxErr(ctx, err))
	}
	want := per
	if len(gens) > 1 {
		want *= len(gens)
	}
	if len(init) != want {
		return nil, nil, fmt.Errorf("pipeline: vae_encoder returned %d latent values, want %d", len(init), want)
	}
	if len(gens) <= 1 {
		init = repeatRows(init, pl.batch)
	}
	switch len(gens) {
	case 0:
		noise, err = pl.noise()
	case 1:
		noise = make([]float32, pl.batch*per)
		gens[0].Randn(noise)
	default:
		noise = make([]float32, pl.batch*per)
		for k, g := range gens {
			g.Randn(noise[k*per : (k+1)*per])
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("pipeline: noise: %w", err)
	}
	if e := pl.edit; e != nil { // inpaint blends towards these; Fill and Kontext encode more here
		e.imageLatents, e.noise = init, noise
		if err := p.encodeEdit(ctx, pl, enc, gens, tm); err != nil {
			return nil, nil, err
		}
	}
	return init, noise, p.ms.release(p.ms.closeEncoder)
}

// initGenerators are the generators of InitLatentSample: the seed's one generator, or one per image
// (seed + k with seed-per-image noise, each item's seed with batch items), as pl.noise seeds them.
func (pl *plan) initGenerators() ([]rng.Source, error) {
	var seeds []uint64
	switch {
	case len(pl.req.Items) > 0:
		for _, it := range pl.req.Items {
			seeds = append(seeds, it.Seed)
		}
	case pl.req.BatchMode == rng.SeedPerImage && pl.batch > 1:
		for k := range pl.batch {
			seeds = append(seeds, pl.req.Seed+uint64(k))
		}
	default:
		seeds = []uint64{pl.req.Seed}
	}
	gens := make([]rng.Source, len(seeds))
	for k, s := range seeds {
		var err error
		if gens[k], err = rng.New(pl.req.RNG, s); err != nil {
			return nil, err
		}
	}
	return gens, nil
}

// scaleNoise is the flow-matching forward process at the start σ (diffusers scale_noise,
// flow-sampling.md §2.6), x = σ·noise + (1 − σ)·latents, in float32 as torch computes it; x is
// overwritten.
func scaleNoise(x, noise, latents []float32, sigma float64) {
	s := float32(sigma)
	keep := 1 - s
	for i := range x {
		a := float32(s * noise[i]) // the conversions forbid fused multiply-adds
		b := float32(keep * latents[i])
		x[i] = a + b
	}
}
