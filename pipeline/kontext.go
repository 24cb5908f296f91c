package pipeline

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"

	"github.com/rflowrt/rflow/scheduler"
)

// FLUX.1 Kontext as diffusers 0.38's FluxKontextPipeline does it (turn2-findings.md §9): each
// reference picture is fitted to a size Kontext was trained on, encoded with the VAE's mean (no
// generator draw), scaled, packed and appended after the image tokens, with position ids (1, y, x)
// on its own latent grid; the output tokens keep ids (0, y, x); the transformer's prediction for the
// appended tokens is dropped; μ comes from the output tokens only; the noise is txt2img's. Several
// references (diffusers takes one) are appended in order, reference k with ids (k+1, y, x).
//
// diffusers also rescales the requested output size to max_area (1024² by default) at the request's
// aspect ratio; rflow draws the size it is asked for (pass W×H of area 1024² for diffusers' sizes).

// RefResize is how Kontext reference images are sized before encoding.
type RefResize string

const (
	// RefResizeKontext fits each reference to the preferred Kontext resolution closest to its aspect
	// ratio (diffusers' _auto_resize, the default; "" means this), Pillow's Lanczos, stretched.
	RefResizeKontext RefResize = "kontext"
	// RefResizeNone keeps each reference's size, cut down to a multiple of 16 (stretched to it).
	RefResizeNone RefResize = "none"
)

// kontextResolutions are diffusers' PREFERRED_KONTEXT_RESOLUTIONS (width, height).
var kontextResolutions = [][2]int{{672, 1568}, {688, 1504}, {720, 1456}, {752, 1392}, {800, 1328}, {832, 1248},
	{880, 1184}, {944, 1104}, {1024, 1024}, {1104, 944}, {1184, 880}, {1248, 832}, {1328, 800}, {1392, 752},
	{1456, 720}, {1504, 688}, {1568, 672}}

// kontextRef is one reference image and the pixel size it is encoded at.
type kontextRef struct {
	img           image.Image
	width, height int
}

// kontextSize is the size a w×h reference is encoded at: the preferred resolution nearest in aspect
// ratio (ties to the smaller width, as Python's min over (|Δ|, w, h) tuples), cut to multiples of 16.
func kontextSize(w, h int, mode RefResize) (int, int) {
	if mode != RefResizeNone {
		aspect := float64(w) / float64(h)
		best := math.Inf(1)
		for _, r := range kontextResolutions {
			d := math.Abs(aspect - float64(r[0])/float64(r[1]))
			if d < best || (d == best && r[0] < w) {
				best, w, h = d, r[0], r[1]
			}
		}
	}
	return w / 16 * 16, h / 16 * 16
}

// prepareRefs checks the reference images and picks their sizes.
func (e *editPlan) prepareRefs(refs []image.Image, mode RefResize) error {
	switch mode {
	case "":
		mode = RefResizeKontext
	case RefResizeKontext, RefResizeNone:
	default:
		return fmt.Errorf("pipeline: reference resize %q: want %q or %q", mode, RefResizeKontext, RefResizeNone)
	}
	for k, img := range refs {
		if img == nil {
			return fmt.Errorf("pipeline: reference image %d is missing", k+1)
		}
		b := img.Bounds()
		w, h := kontextSize(b.Dx(), b.Dy(), mode)
		if w < 16 || h < 16 {
			return fmt.Errorf("pipeline: reference image %d is %d×%d: a reference needs at least 16×16 pixels", k+1, b.Dx(), b.Dy())
		}
		if w > maxSide || h > maxSide {
			return errors.New("pipeline: a reference image is larger than 16384 pixels on a side")
		}
		e.refs = append(e.refs, kontextRef{img: img, width: w, height: h})
	}
	return nil
}

// kontextIDs are the ids of reference k on its latent grid h×w: (k+1, i, j) for the packed token
// (i, j), rows in packing order.
func kontextIDs(k, h, w int) []int64 {
	ids := imageIDs(h, w)
	for t := 0; t < len(ids); t += 3 {
		ids[t] = int64(k + 1)
	}
	return ids
}

// encodeRefs encodes a Kontext run's references when there is no init image (initLatents does it
// otherwise): the encoder is loaded for them and released.
func (p *Pipeline) encodeRefs(ctx context.Context, pl *plan, tm *Timings) error {
	if pl.edit == nil || len(pl.edit.refs) == 0 {
		return nil
	}
	enc, err := p.ms.encoder(ctx)
	if err != nil {
		return err
	}
	if err := p.encodeEdit(ctx, pl, enc, nil, tm); err != nil {
		return err
	}
	return p.ms.release(p.ms.closeEncoder)
}

// KontextModel reports whether the model is FLUX Kontext (model_index.json's class
// FluxKontextPipeline: its transformer's signature is FLUX.1-dev's).
func (m *Model) KontextModel() bool {
	return m.Family == scheduler.FamilyFLUX && m.Index.ClassName == "FluxKontextPipeline"
}
