package vae

import (
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// The golden files in testdata/pilresize come from real Pillow and diffusers (gen.py there).

func readGoldenPNG(t *testing.T, name string) image.Image {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "pilresize", name+".png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return img
}

func readGoldenJSON(t *testing.T, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "pilresize", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// diffRGB8 reports the first differing byte and the count of differing bytes.
func diffRGB8(got, want rgb8) error {
	if got.w != want.w || got.h != want.h {
		return fmt.Errorf("size %d×%d, want %d×%d", got.w, got.h, want.w, want.h)
	}
	n, first := 0, -1
	for i := range got.pix {
		if got.pix[i] != want.pix[i] {
			if first < 0 {
				first = i
			}
			n++
		}
	}
	if n == 0 {
		return nil
	}
	p := first / 3
	return fmt.Errorf("%d of %d bytes differ; first at (%d, %d) channel %d: %d, want %d", n, len(got.pix),
		p%got.w, p/got.w, first%3, got.pix[first], want.pix[first])
}

// TestPILResizeGolden: pilResize equals Pillow's Image.resize(size, LANCZOS, box) byte for byte, up
// and down, in one axis only, with odd ratios, a wide (9×) support, fractional boxes and the
// zero-extent boxes diffusers' fill mode uses.
func TestPILResizeGolden(t *testing.T) {
	var cases map[string]struct {
		Source string
		Size   [2]int
		Box    []float32
	}
	readGoldenJSON(t, "cases.json", &cases)
	if len(cases) < 10 {
		t.Fatalf("cases.json has %d cases", len(cases))
	}
	for name, c := range cases {
		src := toRGB8(readGoldenPNG(t, c.Source))
		box := [4]float32{0, 0, float32(src.w), float32(src.h)}
		if c.Box != nil {
			box = [4]float32(c.Box)
		}
		got := pilResize(src, c.Size[0], c.Size[1], box, pilLanczos3)
		if err := diffRGB8(got, toRGB8(readGoldenPNG(t, name))); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestPILCoefficients checks one axis' weights on closed forms: an exact 2× enlargement centres
// output pixel 1 at source 0.75, so its weights are Lanczos-3 at distances 1.25, 0.25, −0.75, −1.75
// (source pixels 0…3, the left ones clipped away), normalised, in 22-bit fixed point summing to
// about 2^22.
func TestPILCoefficients(t *testing.T) {
	c := pilPrecompute(8, 0, 8, 16, pilLanczos3)
	if c.size != 7 {
		t.Fatalf("ksize %d, want 7 (support 3 when enlarging)", c.size)
	}
	if c.first[1] != 0 || c.n[1] != 4 {
		t.Fatalf("pixel 1 reads %d+%d, want 0+4", c.first[1], c.n[1])
	}
	var w [4]float64
	sum := 0.0
	for x := range 4 {
		w[x] = pilLanczos(float64(x) + 0.5 - 0.75)
		sum += w[x]
	}
	total := int32(0)
	for x := range 4 {
		want := int32(math.Round(w[x] / sum * (1 << 22)))
		if got := c.k[1*c.size+x]; got != want {
			t.Errorf("weight %d: %d, want %d", x, got, want)
		}
		total += c.k[1*c.size+x]
	}
	if d := total - 1<<22; d < -2 || d > 2 {
		t.Errorf("weights sum to %d, want 2^22 ± 2", total)
	}
	// Shrinking 4× widens the support to 12 source pixels each side.
	if c := pilPrecompute(64, 0, 64, 16, pilLanczos3); c.size != 25 {
		t.Errorf("ksize %d when shrinking 4×, want 25", c.size)
	}
}
