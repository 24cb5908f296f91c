package vae

import (
	"fmt"
	"strings"
)

// ResizeMode is how FromImage fits a picture of another size into the target size: A1111's three
// img2img resize modes, which are diffusers' VaeImageProcessor resize modes with the same arithmetic.
// The zero value is diffusers' default.
type ResizeMode int

const (
	// ResizeJust stretches the picture to the size (A1111 "Just resize", diffusers resize_mode
	// "default", what diffusers' img2img pipelines do): the aspect ratio changes.
	ResizeJust ResizeMode = iota
	// ResizeCrop scales the picture to cover the size, keeping its aspect ratio, and cuts the middle
	// out (A1111 "Crop and resize", diffusers "crop").
	ResizeCrop
	// ResizeFill scales the picture to fit inside the size, keeping its aspect ratio, centres it and
	// fills the two bands left over with the picture's edge rows (or columns) stretched across them
	// (A1111 "Resize and fill", diffusers "fill").
	ResizeFill
)

var resizeModeNames = [...]string{ResizeJust: "just-resize", ResizeCrop: "crop-and-resize", ResizeFill: "resize-and-fill"}

// String is the mode's name: just-resize, crop-and-resize or resize-and-fill.
func (m ResizeMode) String() string {
	if m >= 0 && int(m) < len(resizeModeNames) {
		return resizeModeNames[m]
	}
	return fmt.Sprintf("ResizeMode(%d)", int(m))
}

// ResizeModeNames lists the modes' names.
func ResizeModeNames() []string { return append([]string(nil), resizeModeNames[:]...) }

// ParseResizeMode reads a mode's name in any case, with spaces, '_' or '-' between words: rflow's
// names, A1111's ("Just resize", "Crop and resize", "Resize and fill", or their numbers 0, 1, 2) and
// diffusers' resize_mode values ("default", "crop", "fill"). "" is ResizeJust.
func ParseResizeMode(s string) (ResizeMode, error) {
	key := strings.Map(func(r rune) rune {
		if r == ' ' || r == '_' {
			return '-'
		}
		return r
	}, strings.ToLower(strings.TrimSpace(s)))
	switch key {
	case "", "just-resize", "default", "stretch", "0":
		return ResizeJust, nil
	case "crop-and-resize", "crop", "1":
		return ResizeCrop, nil
	case "resize-and-fill", "fill", "2":
		return ResizeFill, nil
	}
	return 0, fmt.Errorf("unknown resize mode %q (valid: %s; A1111's 0, 1, 2 and diffusers' default, crop, fill too)",
		s, strings.Join(resizeModeNames[:], ", "))
}

// fitImage fits src into width×height by mode, every resampling as Pillow's LANCZOS
// (VaeImageProcessor.resize and _resize_and_crop / _resize_and_fill in diffusers 0.38, A1111's
// images.resize_image): Python's float ratios and integer floor divisions, a black canvas, and pastes
// clipped to it.
func fitImage(src rgb8, width, height int, mode ResizeMode) (rgb8, error) {
	full := func(im rgb8) [4]float32 { return [4]float32{0, 0, float32(im.w), float32(im.h)} }
	if mode == ResizeJust {
		return pilResize(src, width, height, full(src), pilLanczos3), nil
	}
	if mode != ResizeCrop && mode != ResizeFill {
		return rgb8{}, fmt.Errorf("unknown resize mode %v", mode)
	}
	ratio := float64(width) / float64(height)
	srcRatio := float64(src.w) / float64(src.h)
	var rw, rh int
	if mode == ResizeCrop { // cover
		rw, rh = src.w*height/src.h, src.h*width/src.w
		if ratio > srcRatio {
			rw = width
		}
		if ratio <= srcRatio {
			rh = height
		}
	} else { // fit
		rw, rh = src.w*height/src.h, src.h*width/src.w
		if ratio < srcRatio {
			rw = width
		}
		if ratio >= srcRatio {
			rh = height
		}
	}
	if rw < 1 || rh < 1 {
		return rgb8{}, fmt.Errorf("the picture would be scaled to %d×%d pixels", rw, rh)
	}
	resized := pilResize(src, rw, rh, full(src), pilLanczos3)
	out := newRGB8(width, height)
	pasteRGB(out, resized, width/2-rw/2, height/2-rh/2)
	if mode == ResizeFill {
		// The bands are resized without a resample argument: Pillow's default, bicubic.
		switch {
		case ratio < srcRatio: // bands above and below: the first and last rows stretched
			if fh := height/2 - rh/2; fh > 0 {
				top := pilResize(resized, width, fh, [4]float32{0, 0, float32(width), 0}, pilBicubic2)
				bottom := pilResize(resized, width, fh, [4]float32{0, float32(rh), float32(width), float32(rh)}, pilBicubic2)
				pasteRGB(out, top, 0, 0)
				pasteRGB(out, bottom, 0, fh+rh)
			}
		case ratio > srcRatio: // bands left and right
			if fw := width/2 - rw/2; fw > 0 {
				left := pilResize(resized, fw, height, [4]float32{0, 0, 0, float32(height)}, pilBicubic2)
				right := pilResize(resized, fw, height, [4]float32{float32(rw), 0, float32(rw), float32(height)}, pilBicubic2)
				pasteRGB(out, left, 0, 0)
				pasteRGB(out, right, fw+rw, 0)
			}
		}
	}
	return out, nil
}

// pasteRGB copies src into dst with its top-left corner at (x0, y0), clipped to dst (PIL's paste).
func pasteRGB(dst, src rgb8, x0, y0 int) {
	xa, xb := max(x0, 0), min(x0+src.w, dst.w)
	if xa >= xb {
		return
	}
	for y := max(y0, 0); y < min(y0+src.h, dst.h); y++ {
		copy(dst.pix[3*(y*dst.w+xa):3*(y*dst.w+xb)], src.pix[3*((y-y0)*src.w+xa-x0):])
	}
}
