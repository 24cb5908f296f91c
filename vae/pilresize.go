package vae

import (
	"image"
	"image/color"
	"math"
)

// This file resizes 8-bit RGB pictures exactly as Pillow's Image.resize(size, LANCZOS, box) does,
// written from the algorithm of Pillow's libImaging/Resample.c (its formulas, constants and rounding),
// so that an init image reaches the VAE encoder with the bytes diffusers' VaeImageProcessor gives it:
//
//   - separable: a horizontal pass over the source rows the vertical pass needs, each value rounded and
//     clipped to 8 bits, then a vertical pass; a pass whose size and box are the identity is skipped;
//   - the filter is Lanczos with a = 3, sinc(x)·sinc(x/3) on [−3, 3), in float64 (or Pillow's bicubic,
//     a = −0.5 on [−2, 2], where diffusers resizes without naming a filter);
//   - when shrinking, the support is scaled by the ratio (scale = (in1 − in0)/out, filterscale =
//     max(scale, 1), support = 3·filterscale, the filter evaluated at distance/filterscale);
//   - output pixel i is centred at in0 + (i + ½)·scale and uses source pixels [int(c − support + ½),
//     int(c + support + ½)) clipped to the image, with weights normalised to sum 1;
//   - the weights become fixed point with PRECISION_BITS = 22 (rounded half away from zero), each sum
//     starts at 2^21 (rounding) and the result is the sum shifted right by 22, clipped to [0, 255].

// pilPrecisionBits is Pillow's PRECISION_BITS: 32 − 8 − 2.
const pilPrecisionBits = 32 - 8 - 2

// rgb8 is a picture of 3 bytes per pixel, rows top to bottom.
type rgb8 struct {
	pix  []uint8
	w, h int
}

func newRGB8(w, h int) rgb8 { return rgb8{pix: make([]uint8, 3*w*h), w: w, h: h} }

// pilSinc is sin(πx)/(πx), 1 at 0.
func pilSinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	x *= math.Pi
	return math.Sin(x) / x
}

// pilLanczos is Pillow's truncated-sinc Lanczos filter with support 3.
func pilLanczos(x float64) float64 {
	if -3 <= x && x < 3 {
		return pilSinc(x) * pilSinc(x/3)
	}
	return 0
}

// pilBicubic is Pillow's bicubic convolution filter (a = −0.5) with support 2: the filter of
// Image.resize without a resample argument, which diffusers' fill mode uses for its bands.
func pilBicubic(x float64) float64 {
	const a = -0.5
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return ((a+2)*x-(a+3))*x*x + 1
	}
	if x < 2 {
		return (((x-5)*x+8)*x - 4) * a
	}
	return 0
}

// pilFilter is a resampling filter and its support.
type pilFilter struct {
	f       func(float64) float64
	support float64
}

var (
	pilLanczos3 = pilFilter{pilLanczos, 3}
	pilBicubic2 = pilFilter{pilBicubic, 2}
)

// pilCoeffs are one axis' resampling weights: output pixel i reads source pixels first[i] …
// first[i]+n[i]−1 with the fixed-point weights k[i·size : i·size+n[i]].
type pilCoeffs struct {
	first, n []int
	k        []int32
	size     int
}

// pilPrecompute computes the weights that map source pixels [in0, in1) of an axis of inSize pixels
// to outSize pixels (Pillow's precompute_coeffs and normalize_coeffs_8bpc). in0 and in1 are float32,
// as Pillow's box is; their difference is taken in float32.
func pilPrecompute(inSize int, in0, in1 float32, outSize int, filter pilFilter) pilCoeffs {
	scale := float64(in1-in0) / float64(outSize)
	filterscale := max(scale, 1)
	support := filter.support * filterscale
	size := int(math.Ceil(support))*2 + 1
	c := pilCoeffs{first: make([]int, outSize), n: make([]int, outSize), k: make([]int32, outSize*size), size: size}
	w := make([]float64, size)
	for i := range outSize {
		center := float64(in0) + float64((float64(i)+0.5)*scale) // the conversion forbids a fused multiply-add
		ss := 1 / filterscale
		lo := int(center - support + 0.5) // truncation, as C's (int)
		lo = max(lo, 0)
		hi := int(center + support + 0.5)
		hi = min(hi, inSize)
		n := max(hi-lo, 0)
		ww := 0.0
		for x := range n {
			w[x] = filter.f((float64(x+lo) - center + 0.5) * ss)
			ww += w[x]
		}
		k := c.k[i*size : i*size+n]
		for x := range n {
			v := w[x]
			if ww != 0 {
				v /= ww
			}
			// Rounded half away from zero to 22 fraction bits; the product by 2^22 is exact.
			if v < 0 {
				k[x] = int32(-0.5 + v*(1<<pilPrecisionBits))
			} else {
				k[x] = int32(0.5 + v*(1<<pilPrecisionBits))
			}
		}
		c.first[i], c.n[i] = lo, n
	}
	return c
}

// pilClip8 is Pillow's clip8: the fixed-point sum shifted down (an arithmetic shift, rounding toward
// −∞), clipped to a byte.
func pilClip8(v int32) uint8 {
	return uint8(min(max(v>>pilPrecisionBits, 0), 255))
}

// pilResize resizes src to w×h with filter (Lanczos unless said otherwise), reading the source box
// (x0, y0, x1, y1) in source pixels (Pillow's box argument; the whole picture is (0, 0, src.w, src.h)).
// w and h must be ≥ 1.
func pilResize(src rgb8, w, h int, box [4]float32, filter pilFilter) rgb8 {
	if w == src.w && h == src.h && box == [4]float32{0, 0, float32(src.w), float32(src.h)} {
		return rgb8{pix: append([]uint8(nil), src.pix...), w: w, h: h} // Image.resize returns a copy
	}
	needH := w != src.w || box[0] != 0 || box[2] != float32(w)
	needV := h != src.h || box[1] != 0 || box[3] != float32(h)
	vert := pilPrecompute(src.h, box[1], box[3], h, filter)
	// The source rows the vertical pass reads.
	yFirst := vert.first[0]
	yLast := vert.first[h-1] + vert.n[h-1]
	cur, resampled := src, false
	if needH {
		horiz := pilPrecompute(src.w, box[0], box[2], w, filter)
		for i := range vert.first {
			vert.first[i] -= yFirst
		}
		tmp := newRGB8(w, max(yLast-yFirst, 0))
		for y := range tmp.h {
			in := src.pix[3*(y+yFirst)*src.w:][:3*src.w]
			out := tmp.pix[3*y*w:][:3*w]
			for x := range w {
				k := horiz.k[x*horiz.size:][:horiz.n[x]]
				row := in[3*horiz.first[x]:]
				s0, s1, s2 := int32(1<<(pilPrecisionBits-1)), int32(1<<(pilPrecisionBits-1)), int32(1<<(pilPrecisionBits-1))
				for j, kj := range k {
					s0 += int32(row[3*j]) * kj
					s1 += int32(row[3*j+1]) * kj
					s2 += int32(row[3*j+2]) * kj
				}
				out[3*x], out[3*x+1], out[3*x+2] = pilClip8(s0), pilClip8(s1), pilClip8(s2)
			}
		}
		cur, resampled = tmp, true
	}
	if !needV {
		if !resampled { // neither pass was needed: Pillow copies
			return rgb8{pix: append([]uint8(nil), src.pix...), w: src.w, h: src.h}
		}
		return cur
	}
	dst := newRGB8(cur.w, h)
	stride := 3 * cur.w
	for y := range h {
		k := vert.k[y*vert.size:][:vert.n[y]]
		first := vert.first[y]
		out := dst.pix[y*stride:][:stride]
		for x := range cur.w {
			s0, s1, s2 := int32(1<<(pilPrecisionBits-1)), int32(1<<(pilPrecisionBits-1)), int32(1<<(pilPrecisionBits-1))
			for j, kj := range k {
				p := cur.pix[(first+j)*stride+3*x:]
				s0 += int32(p[0]) * kj
				s1 += int32(p[1]) * kj
				s2 += int32(p[2]) * kj
			}
			out[3*x], out[3*x+1], out[3*x+2] = pilClip8(s0), pilClip8(s1), pilClip8(s2)
		}
	}
	return dst
}

// toRGB8 copies a picture's colour bytes, alpha dropped (straight, not premultiplied, values).
func toRGB8(img image.Image) rgb8 {
	b := img.Bounds()
	out := newRGB8(b.Dx(), b.Dy())
	switch m := img.(type) {
	case *image.NRGBA:
		for y := range out.h {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := range out.w {
				copy(out.pix[3*(y*out.w+x):][:3], row[4*x:4*x+3])
			}
		}
		return out
	case *image.Gray:
		for y := range out.h {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := range out.w {
				v := row[x]
				out.pix[3*(y*out.w+x)], out.pix[3*(y*out.w+x)+1], out.pix[3*(y*out.w+x)+2] = v, v, v
			}
		}
		return out
	}
	for y := range out.h {
		for x := range out.w {
			c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			out.pix[3*(y*out.w+x)], out.pix[3*(y*out.w+x)+1], out.pix[3*(y*out.w+x)+2] = c.R, c.G, c.B
		}
	}
	return out
}
