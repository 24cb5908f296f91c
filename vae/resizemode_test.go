package vae

import (
	"math"
	"testing"
)

// TestFromImageModesGolden: FromImage in each resize mode gives the bytes of diffusers'
// VaeImageProcessor.resize(image, height, width, resize_mode) (A1111's three modes).
func TestFromImageModesGolden(t *testing.T) {
	var modes map[string]struct {
		Source string
		Size   [2]int
		Mode   string
	}
	readGoldenJSON(t, "modes.json", &modes)
	for name, c := range modes {
		mode, err := ParseResizeMode(c.Mode)
		if err != nil {
			t.Fatal(err)
		}
		w, h := c.Size[0], c.Size[1]
		x, err := FromImage(readGoldenPNG(t, c.Source), w, h, mode)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := toRGB8(readGoldenPNG(t, name))
		got := newRGB8(w, h)
		for i := range w * h {
			for ch := range 3 {
				// x = 2·(u/255) − 1 inverts exactly: (x+1)/2·255 is within 1e-4 of u.
				got.pix[3*i+ch] = uint8(math.Round(float64(x[ch*w*h+i]+1) / 2 * 255))
			}
		}
		if err := diffRGB8(got, want); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestParseResizeMode(t *testing.T) {
	for in, want := range map[string]ResizeMode{"": ResizeJust, "Just resize": ResizeJust, "default": ResizeJust, "0": ResizeJust,
		"crop-and-resize": ResizeCrop, "Crop and resize": ResizeCrop, "crop": ResizeCrop, "1": ResizeCrop,
		"resize_and_fill": ResizeFill, "Resize and fill": ResizeFill, "FILL": ResizeFill, "2": ResizeFill} {
		if got, err := ParseResizeMode(in); err != nil || got != want {
			t.Errorf("ParseResizeMode(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseResizeMode("latent"); err == nil {
		t.Error("an unknown mode was accepted")
	}
	for _, m := range []ResizeMode{ResizeJust, ResizeCrop, ResizeFill} {
		if got, err := ParseResizeMode(m.String()); err != nil || got != m {
			t.Errorf("%v does not parse back: %v, %v", m, got, err)
		}
	}
}
