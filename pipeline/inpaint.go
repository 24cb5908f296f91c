package pipeline

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"slices"

	"github.com/rflowrt/rflow/scheduler"
	"github.com/rflowrt/rflow/vae"
)

// Inpainting as diffusers 0.38's StableDiffusion3InpaintPipeline and FluxInpaintPipeline do it
// (turn2-findings.md §9), for transformers that take plain latents:
//
//   - the mask is greyscale, fitted to the image size with Pillow's Lanczos (as the init image),
//     divided by 255 and binarized (< 0.5 → 0: grey 128 already repaints), and taken nearest-neighbour
//     to the latent grid (pixel (8i, 8j) for latent (i, j));
//   - the start is img2img's: the init image's latent sampled with the seed's generator (even at
//     strength 1), then the noise, and σ_start·noise + (1 − σ_start)·latent;
//   - after every sampler step, latents = (1 − m)·(σ_next·noise + (1 − σ_next)·image_latents) + m·latents
//     (image_latents themselves after the last step, σ_next = 0);
//   - rflow then pastes the decoded picture over the init image through the mask (unless Request.NoOverlay), as
//     A1111 and diffusers' apply_overlay do, so that the unmasked pixels are the original's: diffusers
//     does no such composite unless padding_mask_crop is set, so the parity scripts compare the decoded
//     images before the overlay (and the latents) with diffusers.
//
// diffusers' SD3 inpaint pipeline decodes latents/scaling_factor without adding the VAE's shift_factor,
// although it encodes with it and every other SD3 pipeline decodes with it. rflow decodes with the
// shift, as txt2img and img2img do (the parity script decodes diffusers' latents the same way).

// Edit tasks a request can be.
const (
	TaskTxt2Img = "txt2img"
	TaskImg2Img = "img2img"
	TaskInpaint = "inpaint"
	TaskFill    = "fill"
	TaskKontext = "kontext"
)

// ErrAllBlackMask is wrapped when a mask has no white (repaint) pixel after binarization.
var ErrAllBlackMask = errors.New("the mask is all black: nothing to repaint")

// ErrNotKontext is wrapped when reference images are given to a model that is not FLUX Kontext.
var ErrNotKontext = errors.New("reference images need a FLUX Kontext model")

// editPlan is an inpaint, Fill or Kontext run's extra state, resolved before anything loads.
type editPlan struct {
	task string
	// grey is the mask fitted to width×height (after MaskBlur): the overlay's alpha. pixelMask is
	// its binarization and latentMask [h·w] the latent grid's (both 0 or 1).
	grey                  []uint8
	pixelMask, latentMask []float32
	// orig is the init image fitted to width×height, RGB bytes: what the overlay keeps.
	orig []uint8
	// imageLatents and noise [b, c, h, w] feed the per-step blend (inpaint only).
	imageLatents, noise []float32
	// fx are the FLUX hidden-state extras (Fill's channels, Kontext's reference tokens).
	fx *fluxExtras
	// refs are the Kontext reference images and the sizes they are encoded at.
	refs []kontextRef
	// notes are warnings found while resolving (mask resized, …), reported when the run starts.
	notes []string
	// full is the "only masked" state (Request.InpaintFullRes; nil otherwise).
	full *fullRes
}

// resolveEdit validates the mask, Fill and Kontext options of a request and prepares the masks.
func (p *Pipeline) resolveEdit(pl *plan) error {
	r := &pl.req
	fill := p.isFill()
	switch {
	case r.Mask == nil && r.MaskBlur != 0:
		return errors.New("pipeline: mask blur needs a mask")
	case r.Mask != nil && r.InitImage == nil:
		return errors.New("pipeline: a mask needs an init image (the picture to repaint)")
	case fill && (r.Mask == nil || r.InitImage == nil):
		return errors.New("pipeline: a FLUX Fill model repaints a masked picture: it needs an init image and a mask")
	case len(r.RefImages) > 0 && !p.isKontext():
		return fmt.Errorf("pipeline: %w (model_index.json class FluxKontextPipeline); %s is %s", ErrNotKontext,
			p.m.Name, p.modelClass())
	case r.MaskBlur < 0 || r.MaskBlur > 256:
		return fmt.Errorf("pipeline: mask blur %v is outside [0, 256] pixels", r.MaskBlur)
	case (r.InpaintFullRes || r.InpaintFullResPadding != 0) && r.Mask == nil:
		return errors.New("pipeline: inpaint full res needs a mask")
	case r.InpaintFullResPadding < 0:
		return fmt.Errorf("pipeline: inpaint full res padding %d is negative", r.InpaintFullResPadding)
	}
	if r.Mask == nil && len(r.RefImages) == 0 {
		return nil
	}
	e := &editPlan{task: TaskInpaint}
	if fill {
		e.task = TaskFill
	}
	if r.Mask != nil {
		if err := e.prepareMask(pl, p.m.VAE.ScaleFactor); err != nil {
			return err
		}
	} else {
		e.task = TaskKontext
	}
	if len(r.RefImages) > 0 {
		if err := e.prepareRefs(r.RefImages, r.RefResize); err != nil {
			return err
		}
		if r.Mask == nil {
			e.task = TaskKontext
		}
	}
	pl.edit = e
	return nil
}

func (p *Pipeline) isFill() bool    { return p.m.FillModel() }
func (p *Pipeline) isKontext() bool { return p.m.KontextModel() }

func (p *Pipeline) modelClass() string {
	if p.m.Index.ClassName == "" {
		return "not a diffusers pipeline folder"
	}
	return p.m.Index.ClassName
}

// prepareMask reads the mask: greyscale check, blur, fit to the image size, binarization.
func (e *editPlan) prepareMask(pl *plan, scale int) error {
	r := pl.req
	grey, mw, mh, err := maskGrey(r.Mask)
	if err != nil {
		return err
	}
	ib := r.InitImage.Bounds()
	if mw != ib.Dx() || mh != ib.Dy() {
		// A1111 resizes a mask of another size to the image's; diffusers fits both to the output size.
		e.notes = append(e.notes, fmt.Sprintf("the mask is %d×%d and the init image %d×%d: the mask is resized to the image's size",
			mw, mh, ib.Dx(), ib.Dy()))
		if grey, err = fitGrey(grey, mw, mh, ib.Dx(), ib.Dy(), vae.ResizeJust); err != nil {
			return err
		}
		mw, mh = ib.Dx(), ib.Dy()
	}
	grey = gaussianBlurGrey(grey, mw, mh, r.MaskBlur)
	if r.InpaintFullRes && e.full == nil { // work on the mask's rectangle, then paste it back
		if !slices.ContainsFunc(grey, func(v uint8) bool { return v >= 128 }) {
			return fmt.Errorf("pipeline: %w (white marks what to repaint, black what to keep)", ErrAllBlackMask)
		}
		if err := e.cropForFullRes(&pl.req, grey, mw, mh, pl.width, pl.height); err != nil {
			return err
		}
		return e.prepareMask(pl, scale)
	}
	if e.grey, err = fitGrey(grey, mw, mh, pl.width, pl.height, r.ResizeMode); err != nil {
		return err
	}
	e.pixelMask = make([]float32, len(e.grey))
	white := false
	for i, v := range e.grey {
		if v >= 128 { // v/255 ≥ 0.5 in float32, diffusers' binarize
			e.pixelMask[i], white = 1, true
		}
	}
	if !white {
		return fmt.Errorf("pipeline: %w (white marks what to repaint, black what to keep)", ErrAllBlackMask)
	}
	e.latentMask = make([]float32, pl.h*pl.w)
	for i := range pl.h {
		for j := range pl.w {
			e.latentMask[i*pl.w+j] = e.pixelMask[(i*scale)*pl.width+j*scale]
		}
	}
	if !r.NoOverlay {
		pix, err := vae.FromImage(r.InitImage, pl.width, pl.height, r.ResizeMode)
		if err != nil {
			return fmt.Errorf("pipeline: init image: %w", err)
		}
		e.orig = planarToRGB(pix, pl.width*pl.height)
	}
	return nil
}

// maskGrey returns a mask's grey levels (row-major). A mask must be greyscale: Pillow's convert("L")
// would mix a coloured one into luma, which is rarely what a mask painted in colour means.
func maskGrey(img image.Image) ([]uint8, int, int, error) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w < 1 || h < 1 {
		return nil, 0, 0, errors.New("pipeline: the mask is empty")
	}
	grey := make([]uint8, w*h)
	if g, ok := img.(*image.Gray); ok {
		for y := range h {
			copy(grey[y*w:(y+1)*w], g.Pix[g.PixOffset(b.Min.X, b.Min.Y+y):])
		}
		return grey, w, h, nil
	}
	for y := range h {
		for x := range w {
			c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			if c.R != c.G || c.G != c.B {
				return nil, 0, 0, fmt.Errorf("pipeline: the mask is not greyscale (pixel %d,%d is R %d G %d B %d); "+
					"paint it in black (keep) and white (repaint)", x, y, c.R, c.G, c.B)
			}
			grey[y*w+x] = c.R
		}
	}
	return grey, w, h, nil
}

// fitGrey fits a grey picture to width×height as vae.FromImage fits an init image (Pillow's Lanczos,
// the same resize mode), by running it as three equal channels: Pillow resamples each band alike.
func fitGrey(grey []uint8, w, h, width, height int, mode vae.ResizeMode) ([]uint8, error) {
	if w == width && h == height {
		return grey, nil
	}
	img := image.NewGray(image.Rect(0, 0, w, h))
	copy(img.Pix, grey)
	pix, err := vae.FromImage(img, width, height, mode)
	if err != nil {
		return nil, fmt.Errorf("pipeline: mask: %w", err)
	}
	n := width * height
	out := make([]uint8, n)
	for i := range out {
		out[i] = unitToByte(pix[i])
	}
	return out, nil
}

// unitToByte inverts vae.FromImage's 2·(b/255) − 1 for a byte b.
func unitToByte(v float32) uint8 {
	x := (float64(v) + 1) * 127.5
	return uint8(min(max(x+0.5, 0), 255))
}

// planarToRGB turns FromImage's planar [3, n] pixels back into interleaved RGB bytes.
func planarToRGB(pix []float32, n int) []uint8 {
	out := make([]uint8, 3*n)
	for i := range n {
		for c := range 3 {
			out[3*i+c] = unitToByte(pix[c*n+i])
		}
	}
	return out
}

// blend is diffusers' inpaint step end: x = (1 − m)·(σn·noise + (1 − σn)·image_latents) + m·x, each
// product rounded to float32 as torch computes it, for every image of the batch.
func (e *editPlan) blend(x []float32, sigmaNext float64) {
	s := float32(sigmaNext)
	keep := 1 - s
	hw := len(e.latentMask)
	for i := range x {
		m := e.latentMask[i%hw]
		init := float32(s*e.noise[i]) + float32(keep*e.imageLatents[i])
		x[i] = float32((1-m)*init) + float32(m*x[i])
	}
}

// afterStep runs the per-step part of the edit (inpaint's blend) on the sampler's latents.
func (e *editPlan) afterStep(st scheduler.Step) {
	if e != nil && e.task == TaskInpaint && e.imageLatents != nil {
		e.blend(st.X, st.SigmaNext)
	}
}

// overlay pastes each generated picture over the init image through the mask's grey levels:
// out = (orig·(255 − a) + gen·a) / 255, rounded, so black keeps the original exactly.
func (e *editPlan) overlay(imgs []*image.NRGBA) {
	if e == nil {
		return
	}
	if e.full != nil {
		_ = e.full.pasteFullRes(imgs) // sizes were checked when resolved: FromImage cannot fail here
		return
	}
	if e.orig == nil {
		return
	}
	for _, img := range imgs {
		w := img.Bounds().Dx()
		for i, a := range e.grey {
			if a == 255 {
				continue
			}
			y, x := i/w, i%w
			px := img.Pix[y*img.Stride+4*x:]
			for c := range 3 {
				v := uint32(e.orig[3*i+c])*uint32(255-a) + uint32(px[c])*uint32(a)
				px[c] = uint8((v + 127) / 255)
			}
		}
	}
}

// taskName is the edit task for Resolved ("" without one).
func (e *editPlan) taskName() string {
	if e == nil {
		return ""
	}
	return e.task
}

// warnEdit reports what resolving the edit noticed (a mask of another size, …) as warnings.
func (p *Pipeline) warnEdit(pl *plan) {
	if pl.edit == nil {
		return
	}
	for _, msg := range pl.edit.notes {
		pl.warnings = append(pl.warnings, Warning{Item: -1, Message: msg})
		p.ms.events.emit(Event{Stage: StageWarning, Message: msg})
	}
}
