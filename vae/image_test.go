package vae

import (
	"errors"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"testing"
)

// TestToImagesArithmetic checks diffusers' postprocess on hand-computed values: (x/2 + 0.5) clamped
// to [0, 1], ·255 in float32, numpy's round half to even.
func TestToImagesArithmetic(t *testing.T) {
	for _, c := range []struct {
		x    float32
		want uint8
	}{
		{-1, 0}, {1, 255}, {0, 128}, // 127.5 → 128 (even)
		{-5, 0}, {7, 255}, {float32(math.Inf(-1)) * 0, 0}, // clamping; the last is NaN·0, skipped below
		{float32(4802889.0 / (1 << 23)), 200}, // v·255 = 200.5 exactly → 200 (half-up would give 201)
		{float32(4868682.0 / (1 << 23)), 202}, // 201.5 → 202
		{float32(197379.0 / (1 << 23)), 130},  // 130.5 → 130
		{-0.9980392, 0},                       // 0.25 → 0
		{0.5, 191},                            // 191.25
		{-0.5, 64},                            // 63.75
	} {
		if math.IsNaN(float64(c.x)) {
			continue
		}
		imgs, err := ToImages([]float32{c.x, c.x, c.x}, 1, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got := imgs[0].NRGBAAt(0, 0); got != (color.NRGBA{c.want, c.want, c.want, 255}) {
			t.Errorf("x = %v (%b): %v, want %d", c.x, math.Float32bits(c.x), got, c.want)
		}
	}
}

// TestToImagesLevels: every byte survives FromImage's conversion to [−1, 1] and back.
func TestToImagesLevels(t *testing.T) {
	src := image.NewNRGBA(image.Rect(0, 0, 256, 1))
	for u := range 256 {
		src.Pix[4*u], src.Pix[4*u+1], src.Pix[4*u+2], src.Pix[4*u+3] = uint8(u), uint8(255-u), uint8(u^0x55), 255
	}
	x, err := FromImage(src, 256, 1, ResizeJust)
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := ToImages(x, 1, 1, 256)
	if err != nil {
		t.Fatal(err)
	}
	for u := range 256 {
		if got, want := imgs[0].NRGBAAt(u, 0), src.NRGBAAt(u, 0); got != want {
			t.Fatalf("byte %d: round trip gives %v, want %v", u, got, want)
		}
	}
}

func TestToImagesLayout(t *testing.T) {
	const b, H, W = 2, 3, 5
	x := make([]float32, b*3*H*W)
	for i := range b {
		for c := range 3 {
			for y := range H {
				for k := range W {
					// byte = 10·(i·3 + c) + y·W + k, as a value in [−1, 1]
					x[((i*3+c)*H+y)*W+k] = float32(10*(i*3+c)+y*W+k)/127.5 - 1
				}
			}
		}
	}
	imgs, err := ToImages(x, b, H, W)
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != b {
		t.Fatalf("%d images, want %d", len(imgs), b)
	}
	for i, img := range imgs {
		if img.Bounds() != image.Rect(0, 0, W, H) {
			t.Fatalf("image %d: bounds %v", i, img.Bounds())
		}
		for y := range H {
			for k := range W {
				base := uint8(y*W + k)
				want := color.NRGBA{uint8(30*i) + base, uint8(30*i+10) + base, uint8(30*i+20) + base, 255}
				if got := img.NRGBAAt(k, y); got != want {
					t.Fatalf("image %d pixel (%d, %d): %v, want %v", i, k, y, got, want)
				}
			}
		}
	}
}

func TestToImagesErrors(t *testing.T) {
	if _, err := ToImages(make([]float32, 11), 1, 2, 2); err == nil {
		t.Error("11 values for [1,3,2,2]: no error")
	}
	if _, err := ToImages(nil, 0, 2, 2); err == nil {
		t.Error("batch 0: no error")
	}
	x := make([]float32, 12)
	x[7] = float32(math.NaN())
	var nf *NonFiniteError
	if _, err := ToImages(x, 1, 2, 2); !errors.As(err, &nf) || nf.Stage != StagePixels || nf.Index != 7 {
		t.Errorf("NaN: error %v", err)
	}
}

// bands is a w×h picture of three vertical (or, when horizontal, horizontal) bands: red, green, blue.
func bands(w, h int, horizontal bool) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	cols := []color.NRGBA{{255, 0, 0, 255}, {0, 255, 0, 255}, {0, 0, 255, 255}}
	for y := range h {
		for x := range w {
			k := 3 * x / w
			if horizontal {
				k = 3 * y / h
			}
			img.SetNRGBA(x, y, cols[k])
		}
	}
	return img
}

func rgbAt(x []float32, w, h, px, py int) [3]float32 {
	n := w * h
	return [3]float32{x[py*w+px], x[n+py*w+px], x[2*n+py*w+px]}
}

// TestFromImageCoverCrop: in ResizeCrop a 300×200 picture of red | green | blue bands (the red|green edge at
// source x = 99.5 in pixel-centre coordinates) to 128×128 is scaled to 192×128, edge between
// columns 63 and 64, and cut at x = 96 − 64 = 32: the edge falls between output columns 31 and 32.
// To 127×127 it is scaled to 190×127, edge between columns 62 and 63, and cut at x = 95 − 63 = 32
// (diffusers' integer halves; a centred (190 − 127)/2 = 31 would put the edge one column later):
// between output columns 30 and 31. A 100×300 portrait to 64×128 is scaled to 64×192 and cut at
// y = 32.
func TestFromImageCoverCrop(t *testing.T) {
	red, green, blue := [3]float32{1, -1, -1}, [3]float32{-1, 1, -1}, [3]float32{-1, -1, 1}
	for _, tc := range []struct{ side, edge int }{{128, 31}, {127, 30}} {
		side := tc.side
		x, err := FromImage(bands(300, 200, false), side, side, ResizeCrop)
		if err != nil {
			t.Fatal(err)
		}
		if len(x) != 3*side*side {
			t.Fatalf("%d values, want 3·%d·%d", len(x), side, side)
		}
		for _, v := range x {
			if v < -1 || v > 1 {
				t.Fatalf("value %v outside [−1, 1]", v)
			}
		}
		for _, c := range []struct {
			x    int
			want [3]float32
		}{{0, red}, {20, red}, {64, green}, {side - 20, blue}, {side - 1, blue}} {
			if got := rgbAt(x, side, side, c.x, side/2); got != c.want {
				t.Errorf("landscape to %d²: column %d is %v, want %v", side, c.x, got, c.want)
			}
		}
		l, r := rgbAt(x, side, side, tc.edge, side/2), rgbAt(x, side, side, tc.edge+1, side/2)
		if !(l[0] > l[1] && r[1] > r[0]) {
			t.Errorf("landscape to %d²: columns %d and %d are %v and %v, want the red|green edge between them", side, tc.edge, tc.edge+1, l, r)
		}
	}
	y, err := FromImage(bands(100, 300, true), 64, 128, ResizeCrop)
	if err != nil {
		t.Fatal(err)
	}
	if len(y) != 3*64*128 {
		t.Fatalf("%d values, want 3·64·128", len(y))
	}
	for _, c := range []struct {
		y    int
		want [3]float32
	}{{0, red}, {20, red}, {64, green}, {108, blue}, {127, blue}} {
		if got := rgbAt(y, 64, 128, 32, c.y); got != c.want {
			t.Errorf("portrait: row %d is %v, want %v", c.y, got, c.want)
		}
	}
}

// TestFromImageExact: a picture already at the size is converted without resampling, x = 2·(u/255)
// − 1 in float32, alpha dropped.
func TestFromImageExact(t *testing.T) {
	const w, h = 7, 5
	r := rand.New(rand.NewPCG(1, 2))
	img := image.NewNRGBA(image.Rect(10, 20, 10+w, 20+h)) // a non-zero origin
	for i := range img.Pix {
		img.Pix[i] = uint8(r.IntN(256))
	}
	x, err := FromImage(img, w, h, ResizeFill)
	if err != nil {
		t.Fatal(err)
	}
	for py := range h {
		for px := range w {
			c := img.NRGBAAt(10+px, 20+py)
			for ch, u := range []uint8{c.R, c.G, c.B} {
				v := float32(float64(u) / 255)
				want := float32(2*float64(v) - 1)
				if got := x[ch*w*h+py*w+px]; got != want {
					t.Fatalf("pixel (%d, %d) channel %d: %v, want %v", px, py, ch, got, want)
				}
			}
		}
	}
}

func TestFromImageErrors(t *testing.T) {
	good := bands(8, 8, false)
	for name, f := range map[string]func() ([]float32, error){
		"nil image":   func() ([]float32, error) { return FromImage(nil, 8, 8, ResizeJust) },
		"empty image": func() ([]float32, error) { return FromImage(image.NewNRGBA(image.Rect(0, 0, 0, 5)), 8, 8, ResizeJust) },
		"width 0":     func() ([]float32, error) { return FromImage(good, 0, 8, ResizeJust) },
		"height −1":   func() ([]float32, error) { return FromImage(good, 8, -1, ResizeJust) },
		"huge":        func() ([]float32, error) { return FromImage(good, 1<<25, 1, ResizeJust) },
	} {
		if x, err := f(); err == nil {
			t.Errorf("%s: no error (%d values)", name, len(x))
		}
	}
}
