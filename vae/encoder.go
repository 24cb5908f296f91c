package vae

import (
	"context"
	"fmt"

	"github.com/rflowrt/rflow/ortopts"
)

// EncodeMode chooses how Encode turns the encoder's Gaussian into latents.
type EncodeMode int

const (
	// EncodeMean takes the Gaussian's mean: diffusers' latent_dist.mode() (sample_mode="argmax").
	EncodeMean EncodeMode = iota
	// EncodeSample draws mean + exp(½·logvar)·ε with ε from the caller: latent_dist.sample(generator),
	// what diffusers' SD3 and FLUX img2img pipelines use.
	EncodeSample
)

func (m EncodeMode) String() string {
	switch m {
	case EncodeMean:
		return "mean"
	case EncodeSample:
		return "sample"
	}
	return fmt.Sprintf("EncodeMode(%d)", int(m))
}

// Log-variance bounds of diffusers' DiagonalGaussianDistribution.
const (
	minLogVar = -30
	maxLogVar = 20
)

// Encoder runs a vae_encoder export: sample [B, 3, H, W] in [−1, 1] → latent_parameters
// [B, 2C, H/S, W/S], the mean and then the log-variance of a diagonal Gaussian in VAE space. Its
// methods may be called from several goroutines; the runs are serialised.
type Encoder struct {
	g   *graph
	cfg Config
}

// LoadEncoder loads the vae_encoder model at path (usually <model>/vae_encoder/model.onnx) with the
// latent space cfg. It checks the signature: one rank-4 float input with 3 channels and one rank-4
// output with 2·cfg.LatentChannels, each declared or symbolic, in float32, float16 or bfloat16.
func LoadEncoder(ctx context.Context, path string, so ortopts.SessionOptions, cfg Config) (*Encoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("load vae encoder %s: %w", path, err)
	}
	g, err := openGraph(ctx, "vae encoder", path, so, 3, 2*cfg.LatentChannels)
	if err != nil {
		return nil, err
	}
	if err := g.checkSpatial(g.out, g.in, cfg.ScaleFactor); err != nil {
		g.close()
		return nil, err
	}
	return &Encoder{g: g, cfg: cfg}, nil
}

// Config is the latent space the encoder was loaded with.
func (e *Encoder) Config() Config { return e.cfg }

// Encode turns pixels [b, 3, height, width] (nominally in [−1, 1], as FromImage makes them; height
// and width multiples of the spatial factor S) into model-space latents [b, C, height/S, width/S],
// as diffusers' img2img pipelines do: the encoder's log-variance is clamped to [−30, 20]
// (DiagonalGaussianDistribution), the latent is the mean (EncodeMean) or mean + exp(0.5·logvar)·ε
// (EncodeSample; every operation rounded to float32), and then (z − shift_factor)·scaling_factor
// in float32 (Config.Scale). For EncodeSample, noise is called once with a buffer of b·C·h·w values
// to fill with ε in NCHW order (diffusers: randn_tensor(mean.shape, generator)); it is not used for
// EncodeMean and may be nil then. NaN or ±Inf in the pixels, the encoder's output or the noise is a
// *NonFiniteError (Stage StagePixels, StageEncode, "noise").
func (e *Encoder) Encode(ctx context.Context, pixels []float32, b, height, width int, mode EncodeMode, noise func(dst []float32)) ([]float32, error) {
	h, w, err := e.checkInput(pixels, b, height, width, mode, noise)
	if err != nil {
		return nil, err
	}
	c := e.cfg.LatentChannels
	params, err := e.g.run(ctx, pixels, [4]int{b, 3, height, width}, [4]int{b, 2 * c, h, w})
	if err != nil {
		return nil, fmt.Errorf("vae encode %d×%d pixels to %d×%d latents: %w", height, width, h, w, err)
	}
	if err := CheckFinite(StageEncode, params); err != nil {
		return nil, err
	}
	n := c * h * w
	z := make([]float32, b*n)
	for i := range b {
		copy(z[i*n:(i+1)*n], params[2*i*n:(2*i+1)*n]) // the mean
	}
	if mode == EncodeSample {
		eps := make([]float32, len(z))
		noise(eps)
		if err := CheckFinite("noise", eps); err != nil {
			return nil, err
		}
		for i := range b {
			addNoise(z[i*n:(i+1)*n], params[(2*i+1)*n:(2*i+2)*n], eps[i*n:(i+1)*n])
		}
	}
	e.cfg.Scale(z, z)
	return z, nil
}

func (e *Encoder) checkInput(pixels []float32, b, height, width int, mode EncodeMode, noise func([]float32)) (h, w int, err error) {
	switch {
	case e == nil || e.g == nil:
		return 0, 0, fmt.Errorf("vae encode: no encoder")
	case mode != EncodeMean && mode != EncodeSample:
		return 0, 0, fmt.Errorf("vae encode: unknown mode %v", mode)
	case mode == EncodeSample && noise == nil:
		return 0, 0, fmt.Errorf("vae encode: EncodeSample needs a noise function")
	}
	if err := checkLen("vae encode: pixels", pixels, b, 3, height, width); err != nil {
		return 0, 0, err
	}
	sf := e.cfg.ScaleFactor
	if height%sf != 0 || width%sf != 0 {
		return 0, 0, fmt.Errorf("vae encode: %d×%d pixels: height and width must be multiples of %d", height, width, sf)
	}
	if _, err := volume(b, 2*e.cfg.LatentChannels, height/sf, width/sf); err != nil {
		return 0, 0, fmt.Errorf("vae encode: output: %w", err)
	}
	return height / sf, width / sf, CheckFinite(StagePixels, pixels)
}

// addNoise turns means into samples in place: mean + float32(exp(float32(0.5·clamp(logvar)))·ε), as
// torch computes DiagonalGaussianDistribution.sample in float32.
func addNoise(mean, logvar, eps []float32) {
	for i, lv := range logvar {
		lv = min(max(lv, minLogVar), maxLogVar)
		std := exp32(0.5 * lv)
		mean[i] += float32(std * eps[i])
	}
}

// EncodeSamples encodes one picture [1, 3, height, width] once and samples its latent distribution
// len(noises) times, latent k with ε from noises[k] (called once with C·h·w values): model-space latents
// [len(noises), C, height/S, width/S], each exactly what Encode with EncodeSample and that noise gives.
// It is diffusers' img2img with a list of generators, one per image, each sampling its image's latent
// (retrieve_latents(vae.encode(image), generator=generator[i])) without running the encoder again.
func (e *Encoder) EncodeSamples(ctx context.Context, pixels []float32, height, width int, noises []func(dst []float32)) ([]float32, error) {
	if len(noises) == 0 {
		return nil, fmt.Errorf("vae encode: no noise functions")
	}
	for _, f := range noises {
		if f == nil {
			return nil, fmt.Errorf("vae encode: EncodeSamples needs a noise function per latent")
		}
	}
	h, w, err := e.checkInput(pixels, 1, height, width, EncodeMean, nil)
	if err != nil {
		return nil, err
	}
	if _, err := volume(len(noises), e.cfg.LatentChannels, h, w); err != nil {
		return nil, fmt.Errorf("vae encode: %d samples: %w", len(noises), err)
	}
	c := e.cfg.LatentChannels
	params, err := e.g.run(ctx, pixels, [4]int{1, 3, height, width}, [4]int{1, 2 * c, h, w})
	if err != nil {
		return nil, fmt.Errorf("vae encode %d×%d pixels to %d×%d latents: %w", height, width, h, w, err)
	}
	if err := CheckFinite(StageEncode, params); err != nil {
		return nil, err
	}
	n := c * h * w
	z := make([]float32, len(noises)*n)
	for k, noise := range noises {
		zk := z[k*n : (k+1)*n]
		copy(zk, params[:n])
		eps := make([]float32, n)
		noise(eps)
		if err := CheckFinite("noise", eps); err != nil {
			return nil, err
		}
		addNoise(zk, params[n:2*n], eps)
	}
	e.cfg.Scale(z, z)
	return z, nil
}

// Close releases the session. It is safe to call twice.
func (e *Encoder) Close() error {
	if e == nil {
		return nil
	}
	return e.g.close()
}
