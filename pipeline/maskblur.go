package pipeline

import "math"

// Pillow's ImageFilter.GaussianBlur(radius) on an 8-bit single-band image, bit for bit (Pillow's
// BoxBlur.c): three passes of an extended box blur whose fractional radius gives the Gaussian's
// variance (Gwosdek et al., "Theoretical foundations of Gaussian convolution by extended box
// filtering", 2011), edges extended, fixed-point weights of 2^24. This is the blur diffusers'
// VaeImageProcessor.blur and A1111's mask_blur apply to an inpainting mask.

// gaussianBoxRadius is Pillow's _gaussian_blur_radius: the extended box radius whose passes-fold
// application has the variance of a Gaussian of this radius (σ = radius), in C float arithmetic.
func gaussianBoxRadius(radius float32, passes int) float32 {
	sigma2 := radius * radius / float32(passes)
	L := float32(math.Sqrt(12.0*float64(sigma2) + 1.0))
	l := float32(math.Floor(float64((L - 1.0) / 2.0)))
	a := (2*l + 1) * (l*(l+1) - 3*sigma2)
	a /= 6 * (sigma2 - (l+1)*(l+1))
	return l + a
}

// gaussianBlurGrey blurs a w×h grey image (row-major) with Pillow's GaussianBlur(radius) and returns
// the result; radius ≤ 0 returns a copy.
func gaussianBlurGrey(pix []uint8, w, h int, radius float64) []uint8 {
	out := append([]uint8(nil), pix...)
	if radius <= 0 || w < 1 || h < 1 {
		return out
	}
	const passes = 3
	r := gaussianBoxRadius(float32(radius), passes)
	line := make([]uint8, max(w, h))
	res := make([]uint8, max(w, h))
	for y := range h { // horizontal passes
		row := out[y*w : (y+1)*w]
		for range passes {
			copy(line, row)
			boxBlurLine(res[:w], line[:w], r)
			copy(row, res[:w])
		}
	}
	for x := range w { // vertical passes (Pillow transposes; the arithmetic is the same)
		for range passes {
			for y := range h {
				line[y] = out[y*w+x]
			}
			boxBlurLine(res[:h], line[:h], r)
			for y := range h {
				out[y*w+x] = res[y]
			}
		}
	}
	return out
}

// boxBlurLine is Pillow's ImagingLineBoxBlur8: one extended box blur of a line with the float radius
// r (integer part radius, the two far pixels weighted fw), edge pixels repeated outside the line.
func boxBlurLine(out, in []uint8, r float32) {
	n := len(in)
	radius := int(r)
	ww := uint32(float32(1<<24) / (r*2 + 1))
	fw := ((1 << 24) - uint32(radius*2+1)*ww) / 2
	edgeA := min(radius+1, n)
	edgeB := max(n-radius-1, 0)
	last := n - 1
	px := func(i int) uint32 { return uint32(in[i]) }
	// the sum over −radius−1 … radius−1: the first pixel repeated, then the line, then the last pixel repeated
	acc := px(0) * uint32(radius+1)
	for x := 0; x < edgeA-1; x++ {
		acc += px(x)
	}
	acc += px(last) * uint32(radius-edgeA+1)
	save := func(x int, sub, add, farL, farR int) {
		acc += px(add) - px(sub)
		bulk := acc*ww + (px(farL)+px(farR))*fw
		out[x] = uint8((bulk + (1 << 23)) >> 24)
	}
	if edgeA <= edgeB {
		for x := 0; x < edgeA; x++ {
			save(x, 0, x+radius, 0, x+radius+1)
		}
		for x := edgeA; x < edgeB; x++ {
			save(x, x-radius-1, x+radius, x-radius-1, x+radius+1)
		}
		for x := edgeB; x <= last; x++ {
			save(x, x-radius-1, last, x-radius-1, last)
		}
		return
	}
	for x := 0; x < edgeB; x++ {
		save(x, 0, x+radius, 0, x+radius+1)
	}
	for x := edgeB; x < edgeA; x++ {
		save(x, 0, last, 0, last)
	}
	for x := edgeA; x <= last; x++ {
		save(x, x-radius-1, last, x-radius-1, last)
	}
}
