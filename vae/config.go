// Package vae turns latents into pictures and pictures into latents: the AutoencoderKL scaling and
// shift of SD3 and FLUX, the vae_decoder and vae_encoder graphs of an Optimum export run on ONNX
// Runtime (whole or in tiles), the conversion between decoder output and 8-bit images as diffusers'
// VaeImageProcessor does it, and ComfyUI's cheap latent→RGB previews.
//
// Two latent spaces appear here. The model space is where the transformer and the samplers work;
// the VAE space is what the decoder takes and the encoder's Gaussian produces. They differ by the
// VAE config's scaling_factor s and shift_factor t (shared/spec/flow-sampling.md §3.3, §4.1, §9.5):
//
//	VAE space   = model / s + t        (Decode, as diffusers' pipelines before vae.decode)
//	model space = (VAE − t) · s        (Encode, as diffusers' img2img after vae.encode)
//
// SD3 uses s = 1.5305, t = 0.0609; FLUX s = 0.3611, t = 0.1159. Both are computed in float32, one
// rounding per operation, as torch does on the CPU.
package vae

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// Config is what the VAE's config.json says about its latent space.
type Config struct {
	// ScalingFactor is scaling_factor: model-space latents are VAE latents times this (after the shift).
	ScalingFactor float64
	// ShiftFactor is shift_factor (null or absent in config.json: 0).
	ShiftFactor float64
	// LatentChannels is latent_channels (16 for SD3 and FLUX).
	LatentChannels int
	// ScaleFactor is the spatial ratio of image to latent, 2^(len(block_out_channels)−1) (8 for SD3
	// and FLUX), diffusers' vae_scale_factor.
	ScaleFactor int
	// SampleSize is sample_size, the image side the VAE was trained on (1024 for SD3 and FLUX; the
	// first entry of a list; absent: AutoencoderKL's default 32). It sets the tiles of tiled decoding
	// (TileOptions); 0 in a Config built by hand means DefaultTile latents.
	SampleSize int
	// FullResChannels is the width of the widest tensor the decoder holds at full resolution:
	// block_out_channels[1], the block upsampled into it (256 for SD3 and FLUX), or [0] when there is
	// only one block; 0 when unknown. It sizes WholeDecodeBytes.
	FullResChannels int
	// ImageChannels is block_out_channels[0], the width of the decoder's last block (128 for SD3 and
	// FLUX); 0 when unknown. With FullResChannels it sizes StreamedDecodeBytes.
	ImageChannels int
}

// autoencoderKLSampleSize is AutoencoderKL's sample_size when a config.json names none.
const autoencoderKLSampleSize = 32

// TileOptions are the tiles diffusers' AutoencoderKL.enable_tiling uses for this VAE: tiles of
// tile_latent_min_size = int(sample_size / 2^(len(block_out_channels)−1)) latents (128 for SD3 and
// FLUX), starting every int(tile·(1 − 0.25)) latents (tile_overlap_factor 0.25). Tiling engages only
// for latents larger than a tile, as in diffusers' _decode. The pixel blend and crop then equal
// diffusers' (int(sample_size·0.25), sample_size − blend) when sample_size is a multiple of 4·ScaleFactor,
// as in every real VAE; for other sizes diffusers' own tiles do not add up to the image, and rflow's
// blend over the latent overlap instead.
func (c Config) TileOptions() TileOptions {
	if c.SampleSize <= 0 || c.ScaleFactor <= 0 {
		return TileOptions{}
	}
	tile := int(float64(c.SampleSize) / float64(c.ScaleFactor))
	if tile < 1 {
		return TileOptions{Tile: 1, Overlap: -1}
	}
	overlap := tile - int(float64(tile)*(1-0.25))
	if overlap == 0 {
		overlap = -1 // none
	}
	return TileOptions{Tile: tile, Overlap: overlap}
}

// ReadConfig reads componentDir/config.json, the AutoencoderKL config an Optimum export writes into
// <model>/vae_decoder and <model>/vae_encoder (a diffusers <model>/vae folder holds the same file).
// scaling_factor, latent_channels and block_out_channels are required: a missing scaling factor is
// an error rather than diffusers' class default 0.18215, which belongs to SD 1.x and would silently
// wreck SD3 and FLUX images. shift_factor may be null or absent (0).
func ReadConfig(componentDir string) (Config, error) {
	path := filepath.Join(componentDir, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("vae config: %w", err)
	}
	var raw struct {
		ScalingFactor    *float64        `json:"scaling_factor"`
		ShiftFactor      *float64        `json:"shift_factor"`
		LatentChannels   *int            `json:"latent_channels"`
		BlockOutChannels []int           `json:"block_out_channels"`
		SampleSize       json.RawMessage `json:"sample_size"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return Config{}, fmt.Errorf("vae config %s: %w", path, err)
	}
	switch {
	case raw.ScalingFactor == nil:
		return Config{}, fmt.Errorf("vae config %s: no scaling_factor (an AutoencoderKL config.json has one: 1.5305 for SD3, 0.3611 for FLUX)", path)
	case raw.LatentChannels == nil:
		return Config{}, fmt.Errorf("vae config %s: no latent_channels", path)
	case len(raw.BlockOutChannels) == 0:
		return Config{}, fmt.Errorf("vae config %s: no block_out_channels (the spatial factor is 2^(len(block_out_channels)−1))", path)
	case len(raw.BlockOutChannels) > 16:
		return Config{}, fmt.Errorf("vae config %s: %d block_out_channels, a spatial factor of 2^%d is not a VAE", path, len(raw.BlockOutChannels), len(raw.BlockOutChannels)-1)
	}
	c := Config{
		ScalingFactor:  *raw.ScalingFactor,
		LatentChannels: *raw.LatentChannels,
		ScaleFactor:    1 << (len(raw.BlockOutChannels) - 1),
	}
	c.FullResChannels = raw.BlockOutChannels[min(1, len(raw.BlockOutChannels)-1)]
	c.ImageChannels = raw.BlockOutChannels[0]
	if raw.ShiftFactor != nil {
		c.ShiftFactor = *raw.ShiftFactor
	}
	if c.SampleSize, err = readSampleSize(raw.SampleSize); err != nil {
		return Config{}, fmt.Errorf("vae config %s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("vae config %s: %w", path, err)
	}
	return c, nil
}

// readSampleSize reads sample_size: a number, a list whose first entry counts (as diffusers reads it),
// or nothing (AutoencoderKL's default).
func readSampleSize(raw json.RawMessage) (int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return autoencoderKLSampleSize, nil
	}
	var n float64
	if err := json.Unmarshal(raw, &n); err != nil {
		var list []float64
		if err := json.Unmarshal(raw, &list); err != nil || len(list) == 0 {
			return 0, fmt.Errorf("sample_size %s: want a number or a list of numbers", raw)
		}
		n = list[0]
	}
	if !(n >= 1 && n <= maxSide) || n != math.Trunc(n) {
		return 0, fmt.Errorf("sample_size %v: want a whole number in 1…%d", n, maxSide)
	}
	return int(n), nil
}

// Validate reports a config no VAE can have.
func (c Config) Validate() error {
	var errs []error
	if s := float32(c.ScalingFactor); !(s > 0) || math.IsInf(float64(s), 0) { // float32: what is applied
		errs = append(errs, fmt.Errorf("scaling_factor %v: want a number > 0 that is finite in float32", c.ScalingFactor))
	}
	if math.IsNaN(c.ShiftFactor) || math.IsInf(float64(float32(c.ShiftFactor)), 0) {
		errs = append(errs, fmt.Errorf("shift_factor %v: want a finite number", c.ShiftFactor))
	}
	if c.LatentChannels < 1 || c.LatentChannels > 1<<16 {
		errs = append(errs, fmt.Errorf("latent_channels %d: want 1…65536", c.LatentChannels))
	}
	if c.ScaleFactor < 1 || c.ScaleFactor&(c.ScaleFactor-1) != 0 || c.ScaleFactor > 1<<15 {
		errs = append(errs, fmt.Errorf("spatial scale factor %d: want a power of two ≥ 1", c.ScaleFactor))
	}
	return errors.Join(errs...)
}

// scale and shift are the factors as float32, the precision diffusers applies them in.
func (c Config) scale() float32 { return float32(c.ScalingFactor) }
func (c Config) shift() float32 { return float32(c.ShiftFactor) }

// Unscale writes the decoder's input for model-space latents src into dst: src/s + t per element,
// in float32 (a division and an addition, each rounded, as torch on the CPU; on CUDA torch multiplies
// by the reciprocal, which can differ by an ulp). It writes min(len(dst), len(src)) values; dst and
// src may be the same slice.
func (c Config) Unscale(dst, src []float32) {
	s, t := c.scale(), c.shift()
	n := min(len(dst), len(src))
	for i, z := range src[:n] {
		v := z / s
		dst[i] = v + t
	}
}

// Scale writes the model-space latents for VAE latents src into dst: (src − t)·s per element, in
// float32, as diffusers' img2img pipelines after vae.encode. It writes min(len(dst), len(src))
// values; dst and src may be the same slice.
func (c Config) Scale(dst, src []float32) {
	s, t := c.scale(), c.shift()
	n := min(len(dst), len(src))
	for i, z := range src[:n] {
		d := z - t
		dst[i] = d * s
	}
}
