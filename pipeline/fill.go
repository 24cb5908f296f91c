package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/rflowrt/rflow/internal/rng"
	"github.com/rflowrt/rflow/scheduler"
	"github.com/rflowrt/rflow/vae"
)

// FLUX.1 Fill as diffusers 0.38's FluxFillPipeline does it (turn2-findings.md §9): the masked image
// init·(1 − mask) (binarized mask, pixels in [−1, 1]) is VAE-encoded with the generator after the
// noise (a sample), scaled and packed to 4c channels; the pixel mask is viewed (h, 8, w, 8), permuted
// to 64 channels of the latent grid and packed to 256; every step's hidden states are
// concat(packed latents, masked-image latents, mask) per token (384 channels for FLUX.1). There is no
// per-step blend, and the start is img2img's at Strength (diffusers' default 1.0).

// fluxExtras are the rows and channels FLUX's hidden states carry besides the packed latents.
type fluxExtras struct {
	// extra [b, tokens, e]: channels appended to every latent token (Fill).
	extra []float32
	e     int
	// ref [b, refTokens, 4c] and refIDs [refTokens, 3]: tokens appended after the latent tokens (Kontext).
	ref       []float32
	refTokens int
	refIDs    []int64
	// packed [b, tokens, 4c] and out [b, tokens, 4c] are scratch for the latents going in and the
	// prediction coming out.
	packed, out []float32
}

// encodeEdit runs the VAE encoder work of Fill (the masked image, with gens after the noise) and
// Kontext (the references' means). enc is loaded; gens are InitLatentSample's generators (nil for
// InitLatentMean).
func (p *Pipeline) encodeEdit(ctx context.Context, pl *plan, enc *vae.Encoder, gens []rng.Source, tm *Timings) error {
	e := pl.edit
	if e == nil {
		return nil
	}
	start := time.Now()
	defer func() { tm.Decode += time.Since(start) }()
	fx := &fluxExtras{}
	tokens := pl.h / 2 * pl.w / 2
	if e.task == TaskFill {
		masked, err := vae.FromImage(pl.req.InitImage, pl.width, pl.height, pl.req.ResizeMode)
		if err != nil {
			return fmt.Errorf("pipeline: init image: %w", err)
		}
		n := pl.width * pl.height
		for c := range 3 {
			for i, m := range e.pixelMask {
				masked[c*n+i] *= 1 - m
			}
		}
		lat, err := encodeWith(ctx, enc, masked, pl, gens)
		if err != nil {
			return err
		}
		fx.e = 4*pl.c + 4*p.m.VAE.ScaleFactor*p.m.VAE.ScaleFactor
		fx.extra = fillExtra(lat, e.pixelMask, pl.batch, pl.c, pl.h, pl.w, p.m.VAE.ScaleFactor)
	}
	for k, ref := range e.refs {
		pix, err := vae.FromImage(ref.img, ref.width, ref.height, vae.ResizeJust)
		if err != nil {
			return fmt.Errorf("pipeline: reference image %d: %w", k+1, err)
		}
		lat, err := enc.Encode(ctx, pix, 1, ref.height, ref.width, vae.EncodeMean, nil)
		if err != nil {
			return fmt.Errorf("pipeline: vae_encoder (reference image %d): %w", k+1, ctxErr(ctx, err))
		}
		s := p.m.VAE.ScaleFactor
		rh, rw := ref.height/s, ref.width/s
		packed := make([]float32, len(lat))
		packLatents(packed, lat, 1, pl.c, rh, rw)
		fx.refIDs = append(fx.refIDs, kontextIDs(k, rh, rw)...)
		fx.refTokens += rh / 2 * rw / 2
		fx.ref = append(fx.ref, packed...)
	}
	if fx.refTokens > 0 { // every image of the batch sees the same references
		fx.ref = repeatRows(fx.ref, pl.batch)
	}
	fx.packed = make([]float32, pl.batch*tokens*4*pl.c)
	fx.out = make([]float32, pl.batch*tokens*4*pl.c)
	e.fx = fx
	return nil
}

// encodeWith encodes pixels [1, 3, H, W] as the init image was: a sample per generator (repeated over
// the batch for one generator), or the mean repeated for InitLatentMean.
func encodeWith(ctx context.Context, enc *vae.Encoder, pix []float32, pl *plan, gens []rng.Source) ([]float32, error) {
	var lat []float32
	var err error
	if len(gens) == 0 {
		lat, err = enc.Encode(ctx, pix, 1, pl.height, pl.width, vae.EncodeMean, nil)
	} else {
		noises := make([]func([]float32), len(gens))
		for k, g := range gens {
			noises[k] = g.Randn
		}
		lat, err = enc.EncodeSamples(ctx, pix, pl.height, pl.width, noises)
	}
	if err != nil {
		return nil, fmt.Errorf("pipeline: vae_encoder (masked image): %w", ctxErr(ctx, err))
	}
	if len(gens) <= 1 {
		lat = repeatRows(lat, pl.batch)
	}
	return lat, nil
}

// fillExtra lays out Fill's per-token extra channels [b, tokens, 4c + 4s²]: the packed masked-image
// latents, then the pixel mask [H, W] viewed (h, s, w, s), permuted to s² channels of the latent grid
// (channel dy·s + dx) and packed.
func fillExtra(masked, pixelMask []float32, b, c, h, w, s int) []float32 {
	tokens := h / 2 * w / 2
	mc := s * s
	packedLat := make([]float32, b*tokens*4*c)
	packLatents(packedLat, masked, b, c, h, w)
	grid := make([]float32, mc*h*w)
	W := w * s
	for i := range h {
		for dy := range s {
			for j := range w {
				for dx := range s {
					grid[((dy*s+dx)*h+i)*w+j] = pixelMask[(i*s+dy)*W+j*s+dx]
				}
			}
		}
	}
	packedMask := make([]float32, tokens*4*mc)
	packLatents(packedMask, grid, 1, mc, h, w)
	e := 4*c + 4*mc
	out := make([]float32, b*tokens*e)
	for n := range b {
		for t := range tokens {
			row := out[(n*tokens+t)*e:]
			copy(row[:4*c], packedLat[(n*tokens+t)*4*c:(n*tokens+t+1)*4*c])
			copy(row[4*c:e], packedMask[t*4*mc:(t+1)*4*mc])
		}
	}
	return out
}

// pack writes FLUX hidden states dst [b, tokens + refTokens, 4c + e] from NCHW latents x: each
// token's packed latent channels then its extras, then the reference tokens.
func (fx *fluxExtras) pack(dst, x []float32, b, c, h, w int) {
	packLatents(fx.packed, x, b, c, h, w)
	c4, tokens := 4*c, h/2*w/2
	width := c4 + fx.e
	rows := tokens + fx.refTokens
	for n := range b {
		base := n * rows * width
		for t := range tokens {
			row := dst[base+t*width:]
			copy(row[:c4], fx.packed[(n*tokens+t)*c4:(n*tokens+t+1)*c4])
			if fx.e > 0 {
				copy(row[c4:width], fx.extra[(n*tokens+t)*fx.e:(n*tokens+t+1)*fx.e])
			}
		}
		if fx.refTokens > 0 {
			copy(dst[base+tokens*width:base+rows*width], fx.ref[n*fx.refTokens*c4:(n+1)*fx.refTokens*c4])
		}
	}
}

// latentRows returns the packed prediction for the latent tokens of a FLUX output raw [b, tokens +
// refTokens, 4c]: raw itself without reference tokens, else each image's first tokens copied into dst
// (fx.out when dst is nil).
func (d *denoiser) latentRows(raw, dst []float32) []float32 {
	fx := d.fx
	if fx == nil || fx.refTokens == 0 {
		return raw[:d.n]
	}
	if dst == nil {
		dst = fx.out
	}
	c4, tokens := 4*d.c, d.h/2*d.w/2
	rows := tokens + fx.refTokens
	for n := range d.b {
		copy(dst[n*tokens*c4:(n+1)*tokens*c4], raw[n*rows*c4:(n*rows+tokens)*c4])
	}
	return dst[:d.n]
}

// FillModel reports whether the model is FLUX Fill: its transformer takes the packed latents, the
// packed masked-image latents and the packed 8×8 pixel mask (384 input channels for FLUX.1-Fill).
func (m *Model) FillModel() bool {
	c, s := m.VAE.LatentChannels, m.VAE.ScaleFactor
	return m.Family == scheduler.FamilyFLUX && c > 0 && m.InChannels == 8*c+4*s*s
}
