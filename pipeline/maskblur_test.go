package pipeline

import (
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// readGreyPNG reads a testdata grey PNG as row-major bytes.
func readGreyPNG(t *testing.T, name string) ([]uint8, int, int) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "maskblur", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	g, ok := img.(*image.Gray)
	if !ok {
		t.Fatalf("%s: %T, want a grey PNG", name, img)
	}
	w, h := g.Bounds().Dx(), g.Bounds().Dy()
	pix := make([]uint8, 0, w*h)
	for y := range h {
		pix = append(pix, g.Pix[y*g.Stride:y*g.Stride+w]...)
	}
	return pix, w, h
}

// The golden files are Pillow 9.4's ImageFilter.GaussianBlur(r) of src.png (a 56×40 mask with noise)
// and of a 5×6 crop with a radius larger than the image (the edge branch of the box blur).
func TestGaussianBlurGreyMatchesPillow(t *testing.T) {
	src, w, h := readGreyPNG(t, "src.png")
	cases := []struct {
		src, golden string
		r           float64
	}{{"src.png", "blur-0.5.png", 0.5}, {"src.png", "blur-2.png", 2}, {"src.png", "blur-4.png", 4},
		{"src.png", "blur-7.5.png", 7.5}, {"small.png", "small-blur-6.png", 6}}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.golden), func(t *testing.T) {
			in, iw, ih := src, w, h
			if c.src != "src.png" {
				in, iw, ih = readGreyPNG(t, c.src)
			}
			want, _, _ := readGreyPNG(t, c.golden)
			got := gaussianBlurGrey(in, iw, ih, c.r)
			diff := 0
			for i := range want {
				if got[i] != want[i] {
					diff++
					if diff < 5 {
						t.Errorf("pixel (%d, %d): %d, Pillow %d", i%iw, i/iw, got[i], want[i])
					}
				}
			}
			if diff > 0 {
				t.Errorf("%d of %d pixels differ from Pillow", diff, len(want))
			}
		})
	}
}
