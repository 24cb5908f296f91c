package main

import (
	"image"
	"math"

	"golang.org/x/image/draw"

	"github.com/rflowrt/rflow/internal/imagefile"
)

// previewBox is the side of the box previews are fitted into: ComfyUI's default --preview-size. ComfyUI's
// latent→RGB previewer makes one pixel per latent pixel and its server fits that into this box with
// bilinear resampling (PIL ImageOps.contain), enlarging it if needed; rflow does the same but never
// makes a preview larger than the image itself.
const previewBox = 512

// previewSize is the size of the preview of a latent w×h of a VAE with the given factor: the image's
// size (latent × factor) fitted into previewBox, aspect ratio kept (PIL's contain rounding).
func previewSize(w, h, factor int) (int, int) {
	W, H := w*factor, h*factor
	if W <= previewBox && H <= previewBox {
		return W, H
	}
	if W >= H {
		return previewBox, max(1, int(math.Round(float64(H)*previewBox/float64(W))))
	}
	return max(1, int(math.Round(float64(W)*previewBox/float64(H)))), previewBox
}

// previewImage enlarges (or shrinks) a latent-size preview to previewSize, bilinearly.
func previewImage(latent *image.NRGBA, factor int) *image.NRGBA {
	b := latent.Bounds()
	w, h := previewSize(b.Dx(), b.Dy(), factor)
	if w == b.Dx() && h == b.Dy() {
		return latent
	}
	out := image.NewNRGBA(image.Rect(0, 0, w, h))
	draw.BiLinear.Scale(out, out.Bounds(), latent, b, draw.Src, nil)
	return out
}

// previewWriter writes the previews of one txt2img invocation: --preview-path with {step} (and the
// image placeholders of the run's first image) expanded, pixels only.
type previewWriter struct {
	tmpl   string
	factor int
	vars   imagefile.TemplateVars // of the run in progress; Step is set per preview
	log    *reporter
}

func (p *previewWriter) write(step int, latent *image.NRGBA) {
	v := p.vars
	v.Step = step
	path, err := imagefile.ExpandTemplate(p.tmpl, v)
	if err == nil {
		err = imagefile.Write(path, previewImage(latent, p.factor), imagefile.Params{},
			imagefile.WriteOptions{Overwrite: true, NoMetadata: true})
	}
	if err != nil {
		p.log.linef("rflow: preview: %v", err) // a preview never stops the run
	}
}
