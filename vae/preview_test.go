package vae

import (
	"bufio"
	"errors"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestPreviewFactorsSpotCheck(t *testing.T) {
	sd3, flux := SD3PreviewFactors(), FluxPreviewFactors()
	for _, c := range []struct {
		got, want [3]float32
		what      string
	}{
		{sd3.RGB[0], [3]float32{-0.0922, -0.0175, 0.0749}, "SD3 row 0"},
		{sd3.RGB[7], [3]float32{-0.0042, 0.1038, 0.1358}, "SD3 row 7"},
		{sd3.RGB[15], [3]float32{-0.1448, -0.1463, -0.1189}, "SD3 row 15"},
		{sd3.Bias, [3]float32{0.2394, 0.2135, 0.1925}, "SD3 bias"},
		{flux.RGB[0], [3]float32{-0.0346, 0.0244, 0.0681}, "FLUX row 0"},
		{flux.RGB[8], [3]float32{-0.0245, 0.0250, 0.1180}, "FLUX row 8"},
		{flux.RGB[13], [3]float32{-0.1264, -0.0522, -0.1103}, "FLUX row 13"},
		{flux.Bias, [3]float32{-0.0329, -0.0718, -0.0851}, "FLUX bias"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}
}

// TestPreviewFactorsMatchConventions reads every factor from shared/spec/peers-and-conventions.md
// §4.3 (the ComfyUI values) and compares.
func TestPreviewFactorsMatchConventions(t *testing.T) {
	path := filepath.Join("..", "..", "shared", "spec", "peers-and-conventions.md")
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("shared/spec not found beside the module (%v); it is there in CI", err)
	}
	defer f.Close()
	tables := map[string][][]float32{} // "SD3", "FLUX": 16 rows then the bias
	cur := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "- **SD3 latent_rgb_factors**"):
			cur = "SD3"
		case strings.HasPrefix(line, "- **FLUX latent_rgb_factors**"):
			cur = "FLUX"
		case cur != "" && strings.HasPrefix(line, "["), cur != "" && strings.HasPrefix(line, "latent_rgb_factors_bias"):
			row, err := parseRow(line[strings.Index(line, "[")+1 : strings.Index(line, "]")])
			if err != nil {
				t.Fatalf("%s: %q: %v", path, line, err)
			}
			tables[cur] = append(tables[cur], row)
			if strings.HasPrefix(line, "latent_rgb_factors_bias") {
				cur = ""
			}
		}
	}
	for name, f := range map[string]PreviewFactors{"SD3": SD3PreviewFactors(), "FLUX": FluxPreviewFactors()} {
		tab := tables[name]
		if len(tab) != 17 {
			t.Fatalf("%s: found %d rows in %s, want 16 and the bias", name, len(tab), path)
		}
		for r := range 16 {
			if [3]float32(tab[r]) != f.RGB[r] {
				t.Errorf("%s row %d: %v, the conventions file says %v", name, r, f.RGB[r], tab[r])
			}
		}
		if [3]float32(tab[16]) != f.Bias {
			t.Errorf("%s bias: %v, the conventions file says %v", name, f.Bias, tab[16])
		}
	}
}

func parseRow(s string) ([]float32, error) {
	var row []float32
	for _, part := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(part), 32)
		if err != nil {
			return nil, err
		}
		row = append(row, float32(v))
	}
	if len(row) != 3 {
		return nil, errors.New("want 3 values")
	}
	return row, nil
}

// comfyByte is ComfyUI's preview_to_image in float64 for a value computed in float64: truncation of
// ((v + 1)/2 clamped)·255.
func comfyByte(v float64) uint8 {
	return uint8(math.Floor(math.Min(math.Max((v+1)/2, 0), 1) * 255))
}

// TestPreviewConstant: a constant latent gives one colour, bias + value·(column sums), truncated
// as ComfyUI does (a zero SD3 latent: (158, 154, 152); rounding would give 155 for green).
func TestPreviewConstant(t *testing.T) {
	for _, c := range []struct {
		name  string
		f     PreviewFactors
		value float32
		want  color.NRGBA // 0 when computed
	}{
		{"sd3 zero", SD3PreviewFactors(), 0, color.NRGBA{158, 154, 152, 255}},
		{"flux zero", FluxPreviewFactors(), 0, color.NRGBA{123, 118, 116, 255}},
		{"sd3 0.75", SD3PreviewFactors(), 0.75, color.NRGBA{}},
		{"flux −1.5", FluxPreviewFactors(), -1.5, color.NRGBA{}},
		{"sd3 40", SD3PreviewFactors(), 40, color.NRGBA{}}, // clamps
	} {
		const h, w = 3, 4
		x := make([]float32, 2*16*h*w) // two batch items; the second is ignored
		for i := range 16 * h * w {
			x[i] = c.value
		}
		for i := 16 * h * w; i < len(x); i++ {
			x[i] = 100
		}
		want := c.want
		if want.A == 0 {
			want.A = 255
			for j := range 3 {
				s := float64(c.f.Bias[j])
				for r := range 16 {
					s += float64(c.value) * float64(c.f.RGB[r][j])
				}
				*[]*uint8{&want.R, &want.G, &want.B}[j] = comfyByte(s)
			}
		}
		img, err := Preview(x, 16, h, w, c.f)
		if err != nil {
			t.Fatal(err)
		}
		if img.Bounds().Dx() != w || img.Bounds().Dy() != h {
			t.Fatalf("%s: preview is %v, want %d×%d", c.name, img.Bounds(), w, h)
		}
		for y := range h {
			for k := range w {
				if got := img.NRGBAAt(k, y); got != want {
					t.Fatalf("%s: pixel (%d, %d) is %v, want %v", c.name, k, y, got, want)
				}
			}
		}
	}
}

// TestPreviewLayout: one latent channel set at one position changes that pixel only, by that
// channel's factors.
func TestPreviewLayout(t *testing.T) {
	const h, w = 4, 6
	f := SD3PreviewFactors()
	x := make([]float32, 16*h*w)
	x[2*h*w+1*w+4] = 3 // channel 2, row 1, column 4
	img, err := Preview(x, 16, h, w, f)
	if err != nil {
		t.Fatal(err)
	}
	base := img.NRGBAAt(0, 0)
	for y := range h {
		for k := range w {
			got := img.NRGBAAt(k, y)
			if y == 1 && k == 4 {
				want := color.NRGBA{A: 255}
				for j, p := range []*uint8{&want.R, &want.G, &want.B} {
					*p = comfyByte(float64(f.Bias[j]) + 3*float64(f.RGB[2][j]))
				}
				if got != want {
					t.Errorf("the set pixel is %v, want %v", got, want)
				}
			} else if got != base {
				t.Errorf("pixel (%d, %d) is %v, want the background %v", k, y, got, base)
			}
		}
	}
}

func TestPreviewErrors(t *testing.T) {
	f := FluxPreviewFactors()
	if _, err := Preview(make([]float32, 4*2*2), 4, 2, 2, f); err == nil {
		t.Error("4 channels: no error")
	}
	if _, err := Preview(make([]float32, 16*2*2-1), 16, 2, 2, f); err == nil {
		t.Error("short latent: no error")
	}
	if _, err := Preview(make([]float32, 16), 16, 0, 1, f); err == nil {
		t.Error("height 0: no error")
	}
	x := make([]float32, 16*2*2)
	x[9] = float32(math.Inf(1))
	var nf *NonFiniteError
	if _, err := Preview(x, 16, 2, 2, f); !errors.As(err, &nf) || nf.Stage != "preview" || nf.Index != 9 {
		t.Errorf("Inf: error %v", err)
	}
}

func TestCheckFinite(t *testing.T) {
	if err := CheckFinite("x", []float32{0, -1, math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32}); err != nil {
		t.Errorf("finite values: %v", err)
	}
	if err := CheckFinite("x", nil); err != nil {
		t.Errorf("no values: %v", err)
	}
	x := []float32{1, float32(math.Inf(-1)), 2, float32(math.NaN()), 3}
	err := CheckFinite("stage", x)
	var nf *NonFiniteError
	if !errors.As(err, &nf) || nf.Stage != "stage" || nf.Index != 1 || nf.Count != 2 || nf.Len != 5 || !math.IsInf(float64(nf.Value), -1) {
		t.Fatalf("error %#v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "stage") || !strings.Contains(msg, "2 of 5") || !strings.Contains(msg, "index 1") {
		t.Errorf("message %q", msg)
	}
}
