package vae

import (
	"context"
	"image/color"
	"testing"

	"github.com/rflowrt/rflow/assets"
)

// palette holds the demo's sRGB colours (assets/internal/demo.Palette), the bytes ToImages must
// give where a picture shows one colour.
var palette = map[string]color.NRGBA{
	"red": {230, 40, 40, 255}, "green": {40, 180, 60, 255}, "blue": {40, 80, 220, 255},
	"yellow": {245, 215, 40, 255}, "orange": {245, 140, 30, 255}, "purple": {140, 60, 190, 255},
	"white": {245, 245, 245, 255}, "black": {15, 15, 15, 255},
}

var demoComponents = []assets.Component{
	{Shape: "circle", Color: "red", Background: "blue"},
	{Shape: "square", Color: "white", Background: "black"},
	{Shape: "star", Color: "yellow", Background: "purple"},
}

func demoLatents(cs []assets.Component, h, w int) []float32 {
	var z []float32
	for _, c := range cs {
		z = append(z, assets.ComponentLatent(c, h, w)...)
	}
	return z
}

// TestDemoDecode decodes demo components: the analytic decoder's pictures within 1e-5, and the
// palette's bytes inside the shape (the centre) and in the corners.
func TestDemoDecode(t *testing.T) {
	const h, w, H, W = 32, 32, 256, 256
	d := demoDecoder(t)
	b := len(demoComponents)
	got, err := d.Decode(context.Background(), demoLatents(demoComponents, h, w), b, h, w)
	if err != nil {
		t.Fatal(err)
	}
	n := 3 * H * W
	for i, c := range demoComponents {
		if m := maxAbsDiff(got[i*n:(i+1)*n], assets.ComponentImage(c, h, w)); m > 1e-5 {
			t.Errorf("%v: decoded picture differs from assets.ComponentImage by %g > 1e-5", c, m)
		}
	}
	imgs, err := ToImages(got, b, H, W)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range demoComponents {
		img := imgs[i]
		if img.Bounds().Dx() != W || img.Bounds().Dy() != H {
			t.Fatalf("image %d is %v", i, img.Bounds())
		}
		for _, p := range []struct {
			x, y int
			want color.NRGBA
		}{{128, 128, palette[c.Color]}, {0, 0, palette[c.Background]}, {W - 1, H - 1, palette[c.Background]}, {W - 1, 0, palette[c.Background]}} {
			if got := img.NRGBAAt(p.x, p.y); got != p.want {
				t.Errorf("%v: pixel (%d, %d) is %v, want %v", c, p.x, p.y, got, p.want)
			}
		}
	}
}

// TestDemoRoundTrip encodes decoded demo pictures and decodes again: the demo encoder inverts the
// decoder up to edge pixels (assets' round-trip tolerance: mean |Δ| < 0.01), and every picture keeps
// its component.
func TestDemoRoundTrip(t *testing.T) {
	const h, w, H, W = 32, 32, 256, 256
	ctx := context.Background()
	d, e := demoDecoder(t), demoEncoder(t)
	b := len(demoComponents)
	z := demoLatents(demoComponents, h, w)
	pix, err := d.Decode(ctx, z, b, h, w)
	if err != nil {
		t.Fatal(err)
	}
	z2, err := e.Encode(ctx, pix, b, H, W, EncodeMean, nil)
	if err != nil {
		t.Fatal(err)
	}
	again, err := d.Decode(ctx, z2, b, h, w)
	if err != nil {
		t.Fatal(err)
	}
	mean, worst := meanAbsDiff(again, pix), maxAbsDiff(again, pix)
	t.Logf("decode(encode(decode(μ))) vs decode(μ): mean |Δ| %.4f, max |Δ| %.3f", mean, worst)
	if mean >= 0.01 {
		t.Errorf("round trip mean |Δ| %.4f ≥ 0.01", mean)
	}
	n := 3 * H * W
	for i, c := range demoComponents {
		if got, _ := assets.Classify(again[i*n:(i+1)*n], H, W); got != c {
			t.Errorf("%v round-trips to %v", c, got)
		}
	}
	// EncodeSample: the demo encoder's logvar is −10, so samples sit exp(−5)·ε from the mean.
	s, err := e.Encode(ctx, pix, b, H, W, EncodeSample, func(dst []float32) {
		for i := range dst {
			dst[i] = 1
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if m := maxAbsDiff(s, z2); m < 0.0067 || m > 0.0068 {
		t.Errorf("EncodeSample with ε = 1 moved latents by %g, want exp(−5) ≈ 0.00674", m)
	}
}
