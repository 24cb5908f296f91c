package pipeline

import (
	"fmt"
	"image"

	"github.com/rflowrt/rflow/vae"
)

// Inpainting "only masked" (A1111's inpaint_full_res, diffusers' padding_mask_crop): the rectangle
// around the mask's non-black pixels, grown by the padding and then to the output's aspect ratio
// (diffusers' VaeImageProcessor.get_crop_region, to the pixel), is cut from the init image and the mask
// and fitted to the output size (resize mode fill, as diffusers); the picture drawn there is resized back
// to the rectangle (resize mode crop) and pasted over the full init image through the mask. The result
// has the init image's size.

// cropRegion is get_crop_region(mask, width, height, pad) on a w×h grey mask: x1, y1, x2, y2.
func cropRegion(grey []uint8, w, h, width, height, pad int) (x1, y1, x2, y2 int) {
	colEmpty := func(x int) bool {
		for y := range h {
			if grey[y*w+x] != 0 {
				return false
			}
		}
		return true
	}
	rowEmpty := func(y int) bool {
		for _, v := range grey[y*w : (y+1)*w] {
			if v != 0 {
				return false
			}
		}
		return true
	}
	left, right, top, bottom := 0, 0, 0, 0
	for x := 0; x < w && colEmpty(x); x++ {
		left++
	}
	for x := w - 1; x >= 0 && colEmpty(x); x-- {
		right++
	}
	for y := 0; y < h && rowEmpty(y); y++ {
		top++
	}
	for y := h - 1; y >= 0 && rowEmpty(y); y-- {
		bottom++
	}
	x1, y1, x2, y2 = max(left-pad, 0), max(top-pad, 0), min(w-right+pad, w), min(h-bottom+pad, h)
	ratioCrop := float64(x2-x1) / float64(y2-y1)
	ratio := float64(width) / float64(height)
	if ratioCrop > ratio {
		y1, y2 = widenCrop(y1, y2, int(float64(x2-x1)/ratio-float64(y2-y1)), h)
	} else {
		x1, x2 = widenCrop(x1, x2, int(float64(y2-y1)*ratio-float64(x2-x1)), w)
	}
	return x1, y1, x2, y2
}

// widenCrop grows the span [lo, hi) of an axis of length size by diff, split and shifted back inside
// the axis as diffusers' crop-region code does it (the same steps for either axis).
func widenCrop(lo, hi, diff, size int) (int, int) {
	lo -= floorDiv(diff, 2)
	hi += diff - floorDiv(diff, 2)
	if hi >= size {
		d := hi - size
		hi -= d
		lo -= d
	}
	if lo < 0 {
		hi -= lo
		lo = 0
	}
	if hi >= size {
		hi = size
	}
	return lo, hi
}

// floorDiv is Python's a // b for b > 0.
func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// fullRes is an "only masked" run's state: the full init image and mask, and the rectangle worked on.
type fullRes struct {
	rect  image.Rectangle
	orig  []uint8 // the init image, RGB bytes, its own size
	grey  []uint8 // the (blurred) mask at the init image's size
	w, h  int
	paste bool // NoOverlay: paste the rectangle without the mask
}

// cropForFullRes cuts the run's init image and mask to the padded mask rectangle; grey is the blurred
// mask at the init image's size.
func (e *editPlan) cropForFullRes(r *Request, grey []uint8, w, h, width, height int) error {
	x1, y1, x2, y2 := cropRegion(grey, w, h, width, height, r.InpaintFullResPadding)
	if x2-x1 < 1 || y2-y1 < 1 {
		return fmt.Errorf("pipeline: inpaint full res: the mask's rectangle is empty")
	}
	pix, err := vae.FromImage(r.InitImage, w, h, vae.ResizeJust)
	if err != nil {
		return fmt.Errorf("pipeline: init image: %w", err)
	}
	e.full = &fullRes{rect: image.Rect(x1, y1, x2, y2), orig: planarToRGB(pix, w*h), grey: grey, w: w, h: h, paste: r.NoOverlay}
	crop := image.NewNRGBA(image.Rect(0, 0, x2-x1, y2-y1))
	cm := image.NewGray(crop.Rect)
	for y := y1; y < y2; y++ {
		for x := x1; x < x2; x++ {
			i := (y-y1)*crop.Stride + 4*(x-x1)
			copy(crop.Pix[i:i+3], e.full.orig[3*(y*w+x):3*(y*w+x)+3])
			crop.Pix[i+3] = 255
			cm.Pix[(y-y1)*cm.Stride+x-x1] = grey[y*w+x]
		}
	}
	r.InitImage, r.Mask, r.ResizeMode = crop, cm, vae.ResizeFill
	r.MaskBlur = 0 // already blurred
	r.NoOverlay = true
	return nil
}

// pasteFullRes resizes each drawn picture to the rectangle (resize mode crop) and pastes it over the
// full init image through the mask; the pictures take the init image's size.
func (f *fullRes) pasteFullRes(imgs []*image.NRGBA) error {
	if f == nil {
		return nil
	}
	rw, rh := f.rect.Dx(), f.rect.Dy()
	for k, img := range imgs {
		pix, err := vae.FromImage(img, rw, rh, vae.ResizeCrop)
		if err != nil {
			return fmt.Errorf("pipeline: inpaint full res: %w", err)
		}
		gen := planarToRGB(pix, rw*rh)
		out := image.NewNRGBA(image.Rect(0, 0, f.w, f.h))
		for y := range f.h {
			for x := range f.w {
				i, o := y*f.w+x, y*out.Stride+4*x
				a := uint32(0)
				if image.Pt(x, y).In(f.rect) {
					a = uint32(f.grey[i])
					if f.paste {
						a = 255
					}
				}
				for c := range 3 {
					g := uint32(f.orig[3*i+c])
					if a > 0 {
						g = uint32(gen[3*((y-f.rect.Min.Y)*rw+x-f.rect.Min.X)+c])
					}
					out.Pix[o+c] = uint8((uint32(f.orig[3*i+c])*(255-a) + g*a + 127) / 255)
				}
				out.Pix[o+3] = 255
			}
		}
		imgs[k] = out
	}
	return nil
}
