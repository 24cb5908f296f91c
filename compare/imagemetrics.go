package compare

import (
	"fmt"
	"image"
	"math"
)

// rgbPlanes returns the image as three float64 planes in 0…255 (alpha ignored).
func rgbPlanes(img image.Image) (planes [3][]float64, w, h int) {
	b := img.Bounds()
	w, h = b.Dx(), b.Dy()
	for c := range planes {
		planes[c] = make([]float64, w*h)
	}
	for y := range h {
		for x := range w {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			for c, v := range []uint32{r, g, bl} {
				planes[c][y*w+x] = float64(v >> 8)
			}
		}
	}
	return planes, w, h
}

func sameSize(a, b image.Image) error {
	if a == nil || b == nil {
		return fmt.Errorf("report: image metric: nil image")
	}
	if a.Bounds().Dx() != b.Bounds().Dx() || a.Bounds().Dy() != b.Bounds().Dy() {
		return fmt.Errorf("report: image metric: sizes differ (%v vs %v)", a.Bounds().Size(), b.Bounds().Size())
	}
	if a.Bounds().Empty() {
		return fmt.Errorf("report: image metric: empty image")
	}
	return nil
}

// PSNR is the peak signal-to-noise ratio in dB of a against ref over the 8-bit RGB channels:
// 10·log10(255² / MSE). Identical images give +Inf.
func PSNR(a, ref image.Image) (float64, error) {
	if err := sameSize(a, ref); err != nil {
		return 0, err
	}
	pa, _, _ := rgbPlanes(a)
	pb, _, _ := rgbPlanes(ref)
	sum, n := 0.0, 0
	for c := range pa {
		for i, v := range pa[c] {
			d := v - pb[c][i]
			sum += d * d
			n++
		}
	}
	if sum == 0 {
		return math.Inf(1), nil
	}
	return 10 * math.Log10(255*255/(sum/float64(n))), nil
}

// SSIM constants (Wang, Bovik, Sheikh & Simoncelli 2004): an 11×11 Gaussian window with σ = 1.5,
// K1 = 0.01, K2 = 0.03, dynamic range L = 255.
const (
	ssimRadius = 5
	ssimSigma  = 1.5
	ssimC1     = (0.01 * 255) * (0.01 * 255)
	ssimC2     = (0.03 * 255) * (0.03 * 255)
)

// SSIM is the structural similarity of a and ref: the mean over pixels and the R, G, B channels of
// the local SSIM map computed with the Gaussian window of Wang et al. 2004. At the borders the window
// is cut to the image and renormalised, so every pixel counts and images smaller than the window
// work (a constant image is one window: SSIM = (2μaμb + C1)/(μa² + μb² + C1)). Identical images
// give exactly 1.
func SSIM(a, ref image.Image) (float64, error) {
	if err := sameSize(a, ref); err != nil {
		return 0, err
	}
	pa, w, h := rgbPlanes(a)
	pb, _, _ := rgbPlanes(ref)
	kernel := make([]float64, 2*ssimRadius+1)
	for i := range kernel {
		d := float64(i - ssimRadius)
		kernel[i] = math.Exp(-d * d / (2 * ssimSigma * ssimSigma))
	}
	total := 0.0
	for c := range pa {
		total += ssimPlane(pa[c], pb[c], w, h, kernel)
	}
	return total / 3, nil
}

// ssimPlane is the mean SSIM map of one channel.
func ssimPlane(a, b []float64, w, h int, kernel []float64) float64 {
	sum := 0.0
	for y := range h {
		for x := range w {
			var wsum, ma, mb, aa, bb, ab float64
			for dy := -ssimRadius; dy <= ssimRadius; dy++ {
				yy := y + dy
				if yy < 0 || yy >= h {
					continue
				}
				for dx := -ssimRadius; dx <= ssimRadius; dx++ {
					xx := x + dx
					if xx < 0 || xx >= w {
						continue
					}
					k := kernel[dy+ssimRadius] * kernel[dx+ssimRadius]
					va, vb := a[yy*w+xx], b[yy*w+xx]
					wsum += k
					ma, mb = ma+k*va, mb+k*vb
					aa, bb, ab = aa+k*va*va, bb+k*vb*vb, ab+k*va*vb
				}
			}
			ma, mb = ma/wsum, mb/wsum
			va, vb, cov := aa/wsum-ma*ma, bb/wsum-mb*mb, ab/wsum-ma*mb
			sum += (2*ma*mb + ssimC1) * (2*cov + ssimC2) / ((ma*ma + mb*mb + ssimC1) * (va + vb + ssimC2))
		}
	}
	return sum / float64(w*h)
}
