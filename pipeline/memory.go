package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/scheduler"
	"github.com/rflowrt/rflow/textenc"
	"github.com/rflowrt/rflow/vae"
)

// models holds a pipeline's loaded components and applies its memory policy: with keep, every session
// stays loaded until Close; otherwise each stage loads what it needs and releases it when done, so the
// text encoders are gone before the transformer loads and the transformer before the VAE decoder.
// Tokenizers are small and always kept.
type models struct {
	m    *Model
	so   ort.SessionOptions
	keep bool

	clipTok [2]*textenc.CLIPTokenizer // SD3: CLIP-L, CLIP-G; FLUX: [0]
	t5Tok   *textenc.T5Tokenizer

	clip     [2]*textenc.CLIPEncoder
	clipSkip int // the ClipSkip the SD3 CLIP encoders were loaded with
	t5       *textenc.T5Encoder
	trans    *ort.Session
	dec      *vae.Decoder
	enc      *vae.Encoder

	loadTime time.Duration // session creation time, reset per Generate
	events   emitter
	// available is the memory the system can still give (availableBytes; tests replace it).
	available func() (int64, bool)
}

// vaeConfig is the model's VAE latent space as package vae takes it.
func (ms *models) vaeConfig() vae.Config {
	c := ms.m.VAE
	return vae.Config{ScalingFactor: c.ScalingFactor, ShiftFactor: c.ShiftFactor, LatentChannels: c.LatentChannels,
		ScaleFactor: c.ScaleFactor, FullResChannels: c.FullResChannels, ImageChannels: c.ImageChannels}
}

// path returns a component's model file or an error naming the missing component.
func (ms *models) path(name string) (string, error) {
	c := ms.m.Components[name]
	if c == nil {
		return "", fmt.Errorf("pipeline: the model folder %s has no %s", ms.m.Dir, name)
	}
	return c.Path, nil
}

// load creates one component's session through f, timing it and reporting a load event.
func (ms *models) load(name string, f func(path string) error) error {
	path, err := ms.path(name)
	if err != nil {
		return err
	}
	ms.events.emit(Event{Stage: StageLoad, Component: name})
	if err := timed(&ms.loadTime, func() error { return f(path) }); err != nil {
		return fmt.Errorf("pipeline: load %s: %w", name, loadError{err})
	}
	return nil
}

// ErrLoad is matched (errors.Is) by the error of a component that could not be loaded: ONNX Runtime
// could not create its session (a damaged file, a missing execution provider, too little memory).
// Such a failure is the run's, not one request's: a batch stops at it.
var ErrLoad = errors.New("model component could not be loaded")

// loadError marks a load failure as ErrLoad without changing its message.
type loadError struct{ err error }

func (e loadError) Error() string        { return e.err.Error() }
func (e loadError) Unwrap() error        { return e.err }
func (e loadError) Is(target error) bool { return target == ErrLoad }

// tokenizers loads the family's tokenizers once (reusing those Open loaded), as loadTokenizer does.
func (ms *models) tokenizers() error {
	if ms.clipTok[0] != nil {
		return nil
	}
	var toks [2]*textenc.CLIPTokenizer
	var t5 *textenc.T5Tokenizer
	clip := 0
	for _, s := range familyTokenizers(ms.m.Family, ms.hasT5()) {
		dir, ok := ms.m.Tokenizers[s.name]
		if !ok {
			if s.kind == tokenizerT5 && !ms.hasT5() {
				continue
			}
			return fmt.Errorf("pipeline: the model folder %s has no %s", ms.m.Dir, s.name)
		}
		tok := ms.m.loadedTokenizers[s.name]
		if tok == nil {
			var err error
			if tok, err = loadTokenizer(dir, s.kind, ms.m.Index.Components[s.name][1]); err != nil {
				return fmt.Errorf("pipeline: %s: %w", s.name, err)
			}
		}
		switch t := tok.(type) {
		case *textenc.CLIPTokenizer:
			toks[clip] = t
			clip++
		case *textenc.T5Tokenizer:
			if ms.hasT5() {
				t5 = t
			}
		}
	}
	ms.clipTok, ms.t5Tok = toks, t5
	return nil
}

// t5Component is the T5 encoder's component name.
func (ms *models) t5Component() string {
	if ms.m.Family == scheduler.FamilyFLUX {
		return compTextEncoder2
	}
	return compTextEncoder3
}

// hasT5 reports whether the folder has a T5 encoder (SD3 may not; FLUX must).
func (ms *models) hasT5() bool { return ms.m.Has(ms.t5Component()) }

// textEncoders loads the tokenizers and text encoders; SD3's CLIP encoders expose the hidden layer
// clipSkip selects as well as the penultimate one.
func (ms *models) textEncoders(ctx context.Context, clipSkip int) error {
	if err := ms.tokenizers(); err != nil {
		return err
	}
	flux := ms.m.Family == scheduler.FamilyFLUX
	if !flux && ms.clip[0] != nil && ms.clipSkip != clipSkip {
		ms.closeText() // the hidden-state outputs a session computes are fixed when it is created
	}
	clipNames := []string{compTextEncoder, compTextEncoder2}
	if flux {
		clipNames = clipNames[:1]
	}
	for i, name := range clipNames {
		if ms.clip[i] != nil {
			continue
		}
		o := textenc.CLIPEncoderOptions{Session: ms.so, Hidden: !flux, ClipSkip: clipSkip}
		err := ms.load(name, func(path string) (err error) {
			ms.clip[i], err = textenc.LoadCLIPEncoder(ctx, path, o)
			return err
		})
		if err != nil {
			return err
		}
	}
	ms.clipSkip = clipSkip
	if ms.t5 != nil || !ms.hasT5() {
		return nil
	}
	return ms.load(ms.t5Component(), func(path string) (err error) {
		ms.t5, err = textenc.LoadT5Encoder(ctx, path, ms.so)
		return err
	})
}

// transformer loads the transformer session, computing only the prediction output.
func (ms *models) transformer(ctx context.Context) (*ort.Session, error) {
	if ms.trans != nil {
		return ms.trans, nil
	}
	so := ms.so
	so.Outputs = []string{ms.m.Transformer.Output}
	err := ms.load(compTransformer, func(path string) (err error) {
		ms.trans, err = ort.NewSession(ctx, path, so)
		return err
	})
	return ms.trans, err
}

// decoder loads the VAE decoder. It decodes latents larger than AutoTileLatents in tiles (the VAE's
// own diffusers tiles when they are at least that big), so memory stops growing with the image above
// 1024²; with LowMem, latents larger than LowMemTileLatents are tiled.
func (ms *models) decoder(ctx context.Context) (*vae.Decoder, error) {
	if ms.dec != nil {
		return ms.dec, nil
	}
	err := ms.load(compVAEDecoder, func(path string) (err error) {
		if ms.dec, err = vae.LoadDecoder(ctx, path, ms.so, ms.vaeConfig()); err != nil {
			return err
		}
		return ms.dec.SetAutoTiling(decoderTiles(ms.m.VAE.TileOptions(), ms.so.LowMem, ms.dec.Streamed()))
	})
	return ms.dec, err
}

// decoderTiles is the decoder's automatic tiling for the VAE's diffusers tiles vaeTiles. A streamed
// decoder decodes every size whole, as diffusers does without enable_tiling: its memory grows with the
// image by a third of a whole decode's, and when it would not fit, memoryTiles falls back to tiles.
func decoderTiles(vaeTiles vae.TileOptions, lowMem, streamed bool) vae.TileOptions {
	switch {
	case lowMem:
		return vae.TileOptions{Tile: vae.LowMemTileLatents}
	case streamed:
		return vae.TileOptions{}
	case vaeTiles.Tile >= vae.AutoTileLatents:
		return vaeTiles
	}
	return vae.TileOptions{Tile: vae.AutoTileLatents}
}

// memoryTiles decides how to decode latents that the decoder would decode in one run: when that
// run's estimate need (vae.Decoder.DecodeBytes) exceeds nine tenths of the memory the system can
// still give, it returns the low-memory tiles and the warning that says so — an image slightly
// different from the exact decode instead of a process the kernel kills, as ComfyUI falls back to
// tiles. Otherwise, or when the memory is unknown, it returns no tiles.
func memoryTiles(cfg vae.Config, need int64, height, width int, avail int64, known bool) (vae.TileOptions, string) {
	if !known || need <= avail/10*9 || height <= vae.LowMemTileLatents*cfg.ScaleFactor && width <= vae.LowMemTileLatents*cfg.ScaleFactor {
		return vae.TileOptions{}, ""
	}
	return vae.TileOptions{Tile: vae.LowMemTileLatents}, fmt.Sprintf(
		"VAE decode in %d-pixel tiles: a %dx%d decode needs about %.1f GB and the system has %.1f GB available (the tiles differ slightly from an untiled decode; free memory for the exact one)",
		vae.LowMemTileLatents*cfg.ScaleFactor, width, height, float64(need)/1e9, float64(avail)/1e9)
}

// encoder loads the VAE encoder (img2img).
func (ms *models) encoder(ctx context.Context) (*vae.Encoder, error) {
	if ms.enc != nil {
		return ms.enc, nil
	}
	err := ms.load(compVAEEncoder, func(path string) (err error) {
		ms.enc, err = vae.LoadEncoder(ctx, path, ms.so, ms.vaeConfig())
		return err
	})
	return ms.enc, err
}

// closeText releases the text encoders.
func (ms *models) closeText() error {
	var errs []error
	for i, c := range ms.clip {
		if c != nil {
			errs = append(errs, c.Close())
			ms.clip[i] = nil
		}
	}
	if ms.t5 != nil {
		errs = append(errs, ms.t5.Close())
		ms.t5 = nil
	}
	return errors.Join(errs...)
}

func (ms *models) closeTransformer() error {
	if ms.trans == nil {
		return nil
	}
	err := ms.trans.Close()
	ms.trans = nil
	return err
}

func (ms *models) closeDecoder() error {
	if ms.dec == nil {
		return nil
	}
	err := ms.dec.Close()
	ms.dec = nil
	return err
}

func (ms *models) closeEncoder() error {
	if ms.enc == nil {
		return nil
	}
	err := ms.enc.Close()
	ms.enc = nil
	return err
}

// release applies the memory policy after a stage: close releases unless every model is kept.
func (ms *models) release(close func() error) error {
	if ms.keep {
		return nil
	}
	if err := close(); err != nil {
		return fmt.Errorf("pipeline: release: %w", err)
	}
	return nil
}

// closeAll releases every session whatever the policy.
func (ms *models) closeAll() error {
	return errors.Join(ms.closeText(), ms.closeTransformer(), ms.closeDecoder(), ms.closeEncoder())
}
