package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/rflowrt/rflow/vae"
)

// encodeImage turns the init image into model-space latents [batch, c, h, w]: vae.FromImage (resize and
// centre crop to the size, [−1, 1]), the VAE encoder's mean (EncodeMean: deterministic, and it leaves the
// noise generator alone, so strength 1 equals txt2img with the same seed), encoded once and repeated
// over the batch as diffusers repeats init_latents. The encoder is released afterwards.
// With sample set, the latent distribution is sampled with noise from sample instead.
func (p *Pipeline) encodeImage(ctx context.Context, pl *plan, tm *Timings, sample func([]float32)) ([]float32, error) {
	pixels, err := vae.FromImage(pl.req.InitImage, pl.width, pl.height)
	if err != nil {
		return nil, fmt.Errorf("pipeline: init image: %w", err)
	}
	enc, err := p.ms.encoder(ctx)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	mode := vae.EncodeMean
	if sample != nil {
		mode = vae.EncodeSample
	}
	lat, err := enc.Encode(ctx, pixels, 1, pl.height, pl.width, mode, sample)
	tm.Decode += time.Since(start)
	if err != nil {
		return nil, fmt.Errorf("pipeline: vae_encoder: %w", ctxErr(ctx, err))
	}
	if want := pl.c * pl.h * pl.w; len(lat) != want {
		return nil, fmt.Errorf("pipeline: vae_encoder returned %d latent values, want %d", len(lat), want)
	}
	return repeatRows(lat, pl.batch), p.ms.release(p.ms.closeEncoder)
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
