package compare

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"strings"
	"testing"
)

func uniform(w, h int, c color.NRGBA) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	return img
}

func TestPSNRHandComputed(t *testing.T) {
	a := uniform(2, 2, color.NRGBA{100, 100, 100, 255})
	b := uniform(2, 2, color.NRGBA{100, 100, 100, 255})
	if v, err := PSNR(a, b); err != nil || !math.IsInf(v, 1) {
		t.Fatalf("identical: PSNR %v (%v), want +Inf", v, err)
	}
	b.SetNRGBA(1, 0, color.NRGBA{110, 100, 100, 255}) // one channel of one pixel off by 10: MSE = 100/12
	want := 10 * math.Log10(255*255*12/100.0)
	if v, err := PSNR(a, b); err != nil || math.Abs(v-want) > 1e-9 {
		t.Errorf("PSNR %v (%v), want %v", v, err, want)
	}
	if _, err := PSNR(a, uniform(3, 2, color.NRGBA{})); err == nil {
		t.Error("different sizes accepted")
	}
}

func TestSSIMHandComputed(t *testing.T) {
	a := uniform(4, 3, color.NRGBA{100, 50, 200, 255})
	if v, err := SSIM(a, a); err != nil || v != 1 {
		t.Fatalf("identical: SSIM %v (%v), want exactly 1", v, err)
	}
	// Constant images: σ = 0, so SSIM = (2ab + C1)/(a² + b² + C1) per channel.
	b := uniform(4, 3, color.NRGBA{120, 50, 100, 255})
	l := func(x, y float64) float64 { return (2*x*y + ssimC1) / (x*x + y*y + ssimC1) }
	want := (l(100, 120) + l(50, 50) + l(200, 100)) / 3
	if v, err := SSIM(a, b); err != nil || math.Abs(v-want) > 1e-12 {
		t.Errorf("constant images: SSIM %v (%v), want %v", v, err, want)
	}
	// Structure matters: a checkerboard against its inverse (same means and variances) is
	// anti-correlated, SSIM < 0.
	c, d := image.NewNRGBA(image.Rect(0, 0, 8, 8)), image.NewNRGBA(image.Rect(0, 0, 8, 8))
	for y := range 8 {
		for x := range 8 {
			v := uint8(255 * ((x + y) % 2))
			c.SetNRGBA(x, y, color.NRGBA{v, v, v, 255})
			d.SetNRGBA(x, y, color.NRGBA{255 - v, 255 - v, 255 - v, 255})
		}
	}
	if v, _ := SSIM(c, d); v > -0.9 {
		t.Errorf("checkerboard vs inverse: SSIM %v, want ≈ −1", v)
	}
}

func inkIn(img *image.NRGBA, r image.Rectangle) int {
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if img.NRGBAAt(x, y) != Background {
				n++
			}
		}
	}
	return n
}

func TestRenderGrids(t *testing.T) {
	red := uniform(64, 64, color.NRGBA{255, 0, 0, 255})
	g := Grid{Title: "block one", ColLabels: []string{"8 steps", "16 steps"}, RowLabels: []string{"euler", "heun", "dpmpp_2m"},
		Cells: [][]image.Image{{red, red}, {red, nil}, {red, red}}}
	img, layouts := RenderGrids([]Grid{g, g}, 40)
	labelW := textWidth("dpmpp_2m") + 2*gridPad
	blockW := labelW + 2*(40+gridPad) + gridPad
	blockH := 2*gridLineH + 3*(40+gridPad) + gridPad
	// two narrow blocks sit side by side
	if img.Bounds().Dx() != 2*blockW || img.Bounds().Dy() != gridPad+blockH {
		t.Fatalf("grid is %v, want %dx%d", img.Bounds().Size(), 2*blockW, gridPad+blockH)
	}
	if layouts[1].Title.Min.X != blockW+gridPad || layouts[1].Title.Min.Y != layouts[0].Title.Min.Y {
		t.Errorf("second block's title at %v, want beside the first's at %v", layouts[1].Title.Min, layouts[0].Title.Min)
	}
	// many blocks wrap into rows no wider than GridMaxWidth
	many := make([]Grid, 30)
	for i := range many {
		many[i] = g
	}
	big, _ := RenderGrids(many, 128)
	if w, h := big.Bounds().Dx(), big.Bounds().Dy(); w > GridMaxWidth || h > 10*(2*gridLineH+3*(128+gridPad)+gridPad) {
		t.Errorf("30 blocks render %dx%d, want wrapped rows at most %d wide", w, h, GridMaxWidth)
	}
	l := layouts[1]
	if len(l.ColLabels) != 2 || len(l.RowLabels) != 3 || len(l.Cells) != 3 {
		t.Fatalf("layout %+v", l)
	}
	for i, r := range append(append([]image.Rectangle{l.Title}, l.ColLabels...), l.RowLabels...) {
		if inkIn(img, r) < 10 {
			t.Errorf("label %d at %v has no text drawn", i, r)
		}
	}
	if c := img.NRGBAAt(l.Cells[0][0].Min.X+20, l.Cells[0][0].Min.Y+20); c.R < 200 || c.G > 50 {
		t.Errorf("cell (0,0) centre is %v, want the red thumbnail", c)
	}
	if n := inkIn(img, l.Cells[1][1].Inset(2)); n != 0 {
		t.Errorf("the empty cell has %d drawn pixels", n)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
}

func TestScatter(t *testing.T) {
	pts := []float64{0, 0, 1, 1, -1, -1, 50, 50} // the last one clamps to the corner
	b := ScatterBounds(pts[:6], 2)
	img := Scatter(pts, nil, 2, b, 32, color.NRGBA{0, 0, 255, 255})
	if img.Bounds().Dx() != 32 {
		t.Fatalf("size %v", img.Bounds())
	}
	if c := img.NRGBAAt(31, 0); c.B != 255 || c.R != 0 {
		t.Errorf("an out-of-window point is not clamped to the top-right corner: %v", c)
	}
}

func TestCSVHeaderAndFits(t *testing.T) {
	var buf bytes.Buffer
	rows := []Row{
		{Sampler: "euler", Scheduler: "simple", Shift: 3, Steps: 8, NFE: 8, RMSE: 0.1, PSNR: math.Inf(1), SSIM: math.NaN(), Path: "linear", Prompt: "a, \"b\"", Wasserstein: math.NaN()},
		{Sampler: "euler", Scheduler: "simple", Shift: 3, Steps: 16, NFE: 16, RMSE: 0.05, PSNR: 30, SSIM: 0.9, Path: "linear"},
	}
	if err := WriteCSV(&buf, rows); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(buf.String(), "\n")
	if !strings.HasPrefix(lines[0], "sampler,scheduler,shift,steps,nfe,seconds,rmse,max_abs,psnr,ssim,straightness,") {
		t.Errorf("header %q", lines[0])
	}
	if !strings.Contains(lines[1], ",inf,,") || !strings.Contains(lines[1], `"a, ""b"""`) {
		t.Errorf("row %q: want inf PSNR, empty SSIM, quoted prompt", lines[1])
	}
	fits := FitOrders(rows, func(r Row) float64 { return r.RMSE })
	if len(fits) != 1 || math.Abs(fits[0].Fit.Order-1) > 1e-12 || fits[0].MinSteps != 8 || fits[0].MaxSteps != 16 {
		t.Errorf("fits %+v, want one of order 1 over steps 8–16", fits)
	}
}

func TestLogLogPlot(t *testing.T) {
	data, err := LogLogPlot("t", "x", "y", []Series{{Name: "a", X: []float64{1, 10, 100}, Y: []float64{1, 0.1, 0}}}, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil || img.Bounds().Dx() <= 3*96 || img.Bounds().Dy() != 2*96 {
		t.Fatalf("plot: %v, %v; want a 3×2 inch plot area and a legend to its right", err, img.Bounds())
	}
	ink := 0 // the legend lives right of the plot area
	for y := range img.Bounds().Dy() {
		for x := 3 * 96; x < img.Bounds().Dx(); x++ {
			if r, g, b, _ := img.At(x, y).RGBA(); r < 0x8000 || g < 0x8000 || b < 0x8000 {
				ink++
			}
		}
	}
	if ink < 20 {
		t.Errorf("%d dark pixels right of the plot area, want the legend there", ink)
	}
	if lo, hi := decades(0.03, 250); math.Abs(lo/0.01-1) > 1e-8 || math.Abs(hi/1000-1) > 1e-8 {
		t.Errorf("decades(0.03, 250) = %v, %v; want 0.01, 1000", lo, hi)
	}
	if _, err := LogLogPlot("t", "x", "y", []Series{{Name: "a", X: []float64{1}, Y: []float64{0}}}, 3, 2); err == nil {
		t.Error("a plot with no positive point was drawn")
	}
}

// One step count, or equal errors, give an axis of zero width: the plot is drawn over the decade
// around the value instead of panicking in gonum's log ticks.
func TestLogLogPlotSingleValueAxes(t *testing.T) {
	for _, c := range []struct{ x, y []float64 }{
		{[]float64{8}, []float64{0.1}},          // one cell: both axes degenerate
		{[]float64{8, 8}, []float64{0.1, 0.2}},  // one NFE, several errors
		{[]float64{8, 16}, []float64{0.3, 0.3}}, // equal errors
		{[]float64{10}, []float64{1}},           // powers of ten
	} {
		data, err := LogLogPlot("t", "x", "y", []Series{{Name: "a", X: c.x, Y: c.y}}, 3, 2)
		if err != nil {
			t.Errorf("x %v, y %v: %v", c.x, c.y, err)
			continue
		}
		if _, err := png.Decode(bytes.NewReader(data)); err != nil {
			t.Errorf("x %v, y %v: not a PNG: %v", c.x, c.y, err)
		}
	}
	for _, c := range [][3]float64{{8, 8, 1}, {10, 10, 1}, {0.1, 0.1, 0.01}, {0.3, 0.3, 0.1}, {2, 50, 2}} {
		lo, hi := logRange(c[0], c[1])
		if lo != c[2] || !(hi > lo) || lo > c[0] || hi < c[1] {
			t.Errorf("logRange(%v, %v) = [%v, %v], want it to start at %v and contain the data", c[0], c[1], lo, hi, c[2])
		}
	}
}
