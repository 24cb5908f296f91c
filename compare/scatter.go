package compare

import (
	"image"
	"image/color"
	"math"
	"slices"

	"golang.org/x/image/draw"
)

// Bounds is a 2-D data window [MinX, MaxX] × [MinY, MaxY].
type Bounds struct{ MinX, MaxX, MinY, MaxY float64 }

// ScatterBounds returns a square window that holds the first two coordinates of the points (n·dim
// values) between their 0.5 % and 99.5 % quantiles, with a 10 % margin. dim 1 uses the one
// coordinate for x and [−1, 1] for y.
func ScatterBounds(pts []float64, dim int) Bounds {
	if dim < 1 || len(pts) < dim {
		return Bounds{-1, 1, -1, 1}
	}
	xs, ys := coords(pts, dim)
	lox, hix := quantileRange(xs)
	loy, hiy := quantileRange(ys)
	cx, cy := (lox+hix)/2, (loy+hiy)/2
	half := 0.55 * max(hix-lox, hiy-loy, 1e-9)
	return Bounds{cx - half, cx + half, cy - half, cy + half}
}

// coords splits the first two coordinates; dim 1 gets y = 0.
func coords(pts []float64, dim int) (xs, ys []float64) {
	n := len(pts) / dim
	xs, ys = make([]float64, n), make([]float64, n)
	for i := range n {
		xs[i] = pts[i*dim]
		if dim > 1 {
			ys[i] = pts[i*dim+1]
		}
	}
	return xs, ys
}

func quantileRange(v []float64) (lo, hi float64) {
	s := append([]float64(nil), v...)
	slices.Sort(s)
	i := int(0.005 * float64(len(s)-1))
	return s[i], s[len(s)-1-i]
}

// Scatter draws the first two coordinates of pts (n·dim values) as dots of colour c over the
// reference cloud ref (drawn light grey; may be nil) in the window b, on a size×size thumbnail.
// Points outside the window are clamped to its edge, so a diverged sampler is still visible.
func Scatter(pts, ref []float64, dim int, b Bounds, size int, c color.NRGBA) *image.NRGBA {
	size = max(size, gridMinCell)
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.NRGBA{250, 250, 250, 255}), image.Point{}, draw.Src)
	axis := color.NRGBA{225, 225, 225, 255}
	if x0 := toPixel(0, b.MinX, b.MaxX, size); x0 > 0 && x0 < size-1 {
		for y := range size {
			img.SetNRGBA(x0, y, axis)
		}
	}
	if y0 := size - 1 - toPixel(0, b.MinY, b.MaxY, size); y0 > 0 && y0 < size-1 {
		for x := range size {
			img.SetNRGBA(x, y0, axis)
		}
	}
	if dim >= 1 && len(ref) >= dim {
		dots(img, ref, dim, b, color.NRGBA{190, 190, 190, 255})
	}
	if dim >= 1 && len(pts) >= dim {
		dots(img, pts, dim, b, c)
	}
	return img
}

func dots(img *image.NRGBA, pts []float64, dim int, b Bounds, c color.NRGBA) {
	size := img.Bounds().Dx()
	xs, ys := coords(pts, dim)
	for i := range xs {
		px := toPixel(xs[i], b.MinX, b.MaxX, size)
		py := size - 1 - toPixel(ys[i], b.MinY, b.MaxY, size)
		img.SetNRGBA(px, py, c)
		if size >= 96 { // 2×2 dots on larger thumbnails
			img.SetNRGBA(min(px+1, size-1), py, c)
			img.SetNRGBA(px, max(py-1, 0), c)
		}
	}
}

// toPixel maps v in [lo, hi] to 0 … size−1, clamped; NaN goes to 0.
func toPixel(v, lo, hi float64, size int) int {
	f := (v - lo) / (hi - lo) * float64(size-1)
	if math.IsNaN(f) || f < 0 {
		return 0
	}
	return min(int(math.Round(f)), size-1)
}
