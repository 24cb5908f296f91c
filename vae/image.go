package vae

import (
	"fmt"
	"image"
)

// ToImages turns decoder output [b, 3, height, width] into b opaque 8-bit images, exactly as
// diffusers' VaeImageProcessor.postprocess(output_type="pil"): per value, in float32,
//
//	v = x·0.5 + 0.5          (denormalize; x·0.5 is exact, the sum rounded to float32)
//	v = clamp(v, 0, 1)
//	v = v·255                (rounded to float32: numpy float32 × Python int stays float32)
//	byte = round-half-to-even(v)   (numpy's round, then astype uint8)
//
// so −1 → 0, 1 → 255 and 0 → 127.5 → 128, while a value landing on 2.5 gives 2. Values outside
// [−1, 1] clamp; NaN or ±Inf is a *NonFiniteError with Stage StagePixels (torch would write an
// undefined byte).
func ToImages(pixels []float32, b, height, width int) ([]*image.NRGBA, error) {
	if err := checkLen("vae to images", pixels, b, 3, height, width); err != nil {
		return nil, err
	}
	if err := CheckFinite(StagePixels, pixels); err != nil {
		return nil, err
	}
	n := height * width
	out := make([]*image.NRGBA, b)
	for i := range b {
		img := image.NewNRGBA(image.Rect(0, 0, width, height))
		planes := pixels[3*i*n : 3*(i+1)*n]
		r, g, bl := planes[:n], planes[n:2*n], planes[2*n:]
		pix := img.Pix[:4*n]
		for k := range n {
			p := pix[4*k : 4*k+4 : 4*k+4]
			p[0], p[1], p[2], p[3] = toByte(r[k]), toByte(g[k]), toByte(bl[k]), 255
		}
		out[i] = img
	}
	return out, nil
}

// maxSide bounds the image sides FromImage handles, so that its integer arithmetic cannot overflow.
const maxSide = 1 << 24

// roundMagic is 2^23: for 0 ≤ v ≤ 2^22, float32(v + 2^23) − 2^23 is v rounded to an integer, half to
// even (the float32 sum has no fraction bits left and IEEE rounding is to nearest even).
const roundMagic = 1 << 23

// toByte is the postprocess arithmetic of ToImages for one finite value.
func toByte(x float32) uint8 {
	v := float32(x*0.5) + 0.5
	v = min(max(v, 0), 1)
	v = float32(v * 255)
	return uint8(float32(v+roundMagic) - roundMagic)
}

// FromImage turns a picture into encoder input [3, height, width] (CHW, float32 in [−1, 1]) for an
// img2img or inpainting start, as diffusers' VaeImageProcessor.preprocess(image, height, width,
// resize_mode) does with a PIL RGB image: the picture is fitted into width×height by mode (ResizeJust,
// diffusers' default, stretches it; ResizeCrop and ResizeFill keep its aspect ratio; see ResizeMode),
// every resampling bit-exact with Pillow's Image.resize(LANCZOS) (pilresize.go), and then per value, in
// float32, as pil_to_numpy and normalize: v = byte/255, x = 2·v − 1. A picture already width×height is
// used as is in every mode. Alpha is dropped first, as PIL's convert("RGB") drops it (straight colour
// values, no compositing); grey pictures become three equal channels. The bytes are those Go's image
// decoders give: a PNG's are PIL's too, a JPEG's may differ by a level where Go's decoder and libjpeg
// round differently. width and height must be ≥ 1 and the picture must not be empty; sides are
// limited to 2^24.
func FromImage(img image.Image, width, height int, mode ResizeMode) ([]float32, error) {
	if img == nil {
		return nil, fmt.Errorf("vae from image: no image")
	}
	if _, err := volume(3, height, width); err != nil {
		return nil, fmt.Errorf("vae from image: %d×%d: %w", width, height, err)
	}
	sw, sh := img.Bounds().Dx(), img.Bounds().Dy()
	switch {
	case sw < 1 || sh < 1:
		return nil, fmt.Errorf("vae from image: the image is empty (%v)", img.Bounds())
	case max(sw, sh, width, height) > maxSide:
		return nil, fmt.Errorf("vae from image: %d×%d to %d×%d: sides above %d are not supported", sw, sh, width, height, maxSide)
	}
	fitted, err := fitImage(toRGB8(img), width, height, mode)
	if err != nil {
		return nil, fmt.Errorf("vae from image: %d×%d to %d×%d (%v): %w", sw, sh, width, height, mode, err)
	}
	n := width * height
	out := make([]float32, 3*n)
	for i := range n {
		for c := range 3 {
			v := float32(fitted.pix[3*i+c]) / 255
			out[c*n+i] = 2*v - 1 // 2·v is exact
		}
	}
	return out, nil
}
