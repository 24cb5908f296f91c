package vae

import (
	"context"
	"errors"
	"fmt"

	"github.com/rflowrt/rflow/ortopts"
)

// Decoder runs a vae_decoder export: latent_sample [B, C, h, w] (VAE space) → sample [B, 3, H, W]
// with H = ScaleFactor·h, W = ScaleFactor·w, nominally in [−1, 1] and not clamped. Its methods may
// be called from several goroutines; the runs are serialised.
type Decoder struct {
	g    *graph    // the whole export, when it is not streamed
	s    *streamer // the streamed decoder, when it is
	cfg  Config
	auto TileOptions // Decode tiles latents larger than auto.Tile; 0: never
}

// AutoTileLatents is the side, in latents, above which the pipeline decodes in tiles by default: 128
// latents (1024 pixels for SD3 and FLUX) is one diffusers tile of those VAEs, so up to that size the
// decode is whole and exact, and above it the memory stays that of a 1024² decode instead of
// growing with the image (a 1024² decode of the bench SD3 VAE adds 0.7 GB streamed, 2.2 GB whole).
const AutoTileLatents = 128

// LowMemTileLatents is the tile side, in latents, of a low-memory decode: 512 pixels for SD3 and
// FLUX, a quarter of the activations of a 1024² decode.
const LowMemTileLatents = 64

// SetAutoTiling makes Decode decode in tiles of o (as DecodeTiled) whenever the latents are larger
// than one tile; a zero o (the default) decodes whole. Call it before decoding.
func (d *Decoder) SetAutoTiling(o TileOptions) error {
	if o == (TileOptions{}) {
		d.auto = o
		return nil
	}
	n, err := o.normalized()
	if err != nil {
		return fmt.Errorf("vae decoder auto tiling: %w", err)
	}
	d.auto = n
	return nil
}

// AutoTiling is what SetAutoTiling set.
func (d *Decoder) AutoTiling() TileOptions { return d.auto }

// LoadDecoder loads the vae_decoder model at path (usually <model>/vae_decoder/model.onnx) with the
// latent space cfg (usually ReadConfig of its folder). It checks the signature: one rank-4 float
// input (Optimum names it latent_sample) with cfg.LatentChannels channels and one rank-4 output with
// 3, each either declared or symbolic, in float32, float16 or bfloat16; fixed sizes must agree with
// cfg.ScaleFactor. An export with a fixed batch size is run in chunks of that size.
//
// On the CPU, a decoder whose export names its parameters (rflow's compiled decoders and torch's
// exports do) and whose folder holds its AutoencoderKL config.json is streamed: its stem runs whole
// and its up blocks in row strips, so a decode holds two full-resolution tensors instead of about
// five, for the same pixels. Other exports, and other providers, run whole.
func LoadDecoder(ctx context.Context, path string, so ortopts.SessionOptions, cfg Config) (*Decoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("load vae decoder %s: %w", path, err)
	}
	s, err := loadStreamer(ctx, path, so)
	switch {
	case err == nil:
		return &Decoder{s: s, cfg: cfg}, nil
	case ctx.Err() != nil:
		return nil, fmt.Errorf("load vae decoder %s: %w", path, ctx.Err())
	}
	// not streamable (or ONNX Runtime would not build a strip): the export's own graph, as it is
	return LoadWholeDecoder(ctx, path, so, cfg)
}

// LoadWholeDecoder is LoadDecoder without streaming: the export runs as one graph.
func LoadWholeDecoder(ctx context.Context, path string, so ortopts.SessionOptions, cfg Config) (*Decoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("load vae decoder %s: %w", path, err)
	}
	g, err := openGraph(ctx, "vae decoder", path, so, cfg.LatentChannels, 3)
	if err != nil {
		return nil, err
	}
	if err := g.checkSpatial(g.in, g.out, cfg.ScaleFactor); err != nil {
		g.close()
		return nil, err
	}
	return &Decoder{g: g, cfg: cfg}, nil
}

// Streamed reports whether the decoder runs streamed (see LoadDecoder).
func (d *Decoder) Streamed() bool { return d != nil && d.s != nil }

// DecodeBytes estimates what one Decode run of b latents into h×w-pixel images adds to the process's
// peak resident memory, streamed or whole (Config.StreamedDecodeBytes, Config.WholeDecodeBytes).
func (d *Decoder) DecodeBytes(b, h, w int) int64 {
	if d.Streamed() {
		return d.cfg.StreamedDecodeBytes(b, h, w)
	}
	return d.cfg.WholeDecodeBytes(b, h, w)
}

// Config is the latent space the decoder was loaded with.
func (d *Decoder) Config() Config { return d.cfg }

// Decode turns model-space latents [b, C, h, w] (what the sampler produces) into pixels
// [b, 3, S·h, S·w] (S = Config().ScaleFactor) in the decoder's range, nominally [−1, 1]. It applies
// latents/scaling_factor + shift_factor in float32 first (Config.Unscale), as diffusers' SD3 and
// FLUX pipelines do before vae.decode. NaN or ±Inf in the latents, or in what the decoder returns,
// is a *NonFiniteError with Stage StageLatents or StageDecode. With SetAutoTiling, latents larger than
// a tile are decoded by DecodeTiled.
func (d *Decoder) Decode(ctx context.Context, latents []float32, b, h, w int) ([]float32, error) {
	if d != nil && d.auto.Tile > 0 && (h > d.auto.Tile || w > d.auto.Tile) {
		return d.DecodeTiled(ctx, latents, b, h, w, d.auto)
	}
	return d.decodeWhole(ctx, latents, b, h, w)
}

// decodeWhole is Decode in one run of the graph.
func (d *Decoder) decodeWhole(ctx context.Context, latents []float32, b, h, w int) ([]float32, error) {
	if err := d.checkInput(latents, b, h, w); err != nil {
		return nil, err
	}
	out, err := d.decode(ctx, latents, b, h, w)
	if err != nil {
		return nil, err
	}
	if err := CheckFinite(StageDecode, out); err != nil {
		return nil, err
	}
	return out, nil
}

// checkInput validates Decode's arguments: sizes, the output size, finite latents.
func (d *Decoder) checkInput(latents []float32, b, h, w int) error {
	if d == nil || d.g == nil && d.s == nil {
		return fmt.Errorf("vae decode: no decoder")
	}
	if err := checkLen("vae decode: latents", latents, b, d.cfg.LatentChannels, h, w); err != nil {
		return err
	}
	sf := d.cfg.ScaleFactor
	if _, err := volume(b, 3, h, sf, w, sf); err != nil {
		return fmt.Errorf("vae decode: output: %w", err)
	}
	return CheckFinite(StageLatents, latents)
}

// decode unscales and runs the graph, without checks.
func (d *Decoder) decode(ctx context.Context, latents []float32, b, h, w int) ([]float32, error) {
	in := make([]float32, len(latents))
	d.cfg.Unscale(in, latents)
	sf := d.cfg.ScaleFactor
	var out []float32
	var err error
	if d.s != nil {
		out = make([]float32, b*3*sf*h*sf*w)
		err = d.s.run(ctx, in, b, d.cfg.LatentChannels, h, w, sf, out)
	} else {
		out, err = d.g.run(ctx, in, [4]int{b, d.cfg.LatentChannels, h, w}, [4]int{b, 3, sf * h, sf * w})
	}
	if err != nil {
		return nil, fmt.Errorf("vae decode %d×%d latents to %d×%d pixels: %w", h, w, sf*h, sf*w, err)
	}
	return out, nil
}

// Close releases the session. It is safe to call twice.
func (d *Decoder) Close() error {
	if d == nil {
		return nil
	}
	return errors.Join(d.g.close(), d.s.close())
}
