package compare

import (
	"bytes"
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Series is one line of a plot.
type Series struct {
	Name   string
	X, Y   []float64
	Dashed bool // e.g. the second probability path of a comparison
	// Color picks the palette entry (plotutil.Color); series of one sampler share it.
	Color int
}

// LogLogPlot renders the series on log–log axes as a PNG and returns its bytes: the plot area is
// width×height inches (96 dpi) and the legend sits to its right, outside the lines, widening the
// image. Both axes span whole decades, so every decade carries a labelled tick. Points with a
// non-positive or non-finite coordinate are left out (they have no place on a log axis); a series
// with no point left is dropped, and no series at all is an error.
func LogLogPlot(title, xLabel, yLabel string, series []Series, width, height float64) ([]byte, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text, p.Y.Label.Text = xLabel, yLabel
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	legend := plot.NewLegend()
	legend.Top, legend.Left = true, true
	var names []string
	drawn := 0
	for _, s := range series {
		pts := make(plotter.XYs, 0, len(s.X))
		for i := range min(len(s.X), len(s.Y)) {
			if positiveFinite(s.X[i]) && positiveFinite(s.Y[i]) {
				pts = append(pts, plotter.XY{X: s.X[i], Y: s.Y[i]})
			}
		}
		if len(pts) == 0 {
			continue
		}
		line, dots, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, fmt.Errorf("compare: plot %q: %w", s.Name, err)
		}
		line.Color, dots.Color = plotutil.Color(s.Color), plotutil.Color(s.Color)
		line.Width = vg.Points(1.5)
		dots.Shape = plotutil.Shape(s.Color)
		if s.Dashed {
			line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		p.Add(line, dots)
		legend.Add(s.Name, line, dots)
		names = append(names, s.Name)
		drawn++
	}
	if drawn == 0 {
		return nil, errors.New("compare: plot " + title + ": no positive finite points to draw")
	}
	p.X.Min, p.X.Max = decades(logRange(p.X.Min, p.X.Max))
	p.Y.Min, p.Y.Max = decades(logRange(p.Y.Min, p.Y.Max))
	return render(p, legend, names, title, width, height)
}

// render draws p with the legend to its right as a PNG. gonum/plot panics on some ranges (a log axis
// reaching 0); that is turned into an error so that one bad plot cannot kill a whole comparison.
func render(p *plot.Plot, legend plot.Legend, names []string, title string, width, height float64) (data []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			data, err = nil, fmt.Errorf("compare: plot %q: %v", title, r)
		}
	}()
	var legendW vg.Length
	for _, n := range names {
		legendW = max(legendW, legend.TextStyle.Width(n))
	}
	legendW += legend.ThumbnailWidth + 3*legend.TextStyle.Font.Size
	plotW, h := vg.Length(width)*vg.Inch, vg.Length(height)*vg.Inch
	c := vgimg.NewWith(vgimg.UseWH(plotW+legendW, h), vgimg.UseDPI(96))
	dc := draw.New(c)
	p.Draw(draw.Crop(dc, 0, -legendW, 0, 0))
	legend.Draw(draw.Crop(dc, plotW+legend.TextStyle.Font.Size/2, 0, 0, -p.Title.TextStyle.Font.Size*2))
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("compare: plot %q: %w", title, err)
	}
	return buf.Bytes(), nil
}

// decades widens [lo, hi] (both > 0) to whole decades, so both ends are labelled powers of ten. The
// ends sit a hair outside the powers of ten: gonum's log ticks are computed as 10^k and would drop an
// end tick that rounds just outside the range.
func decades(lo, hi float64) (float64, float64) {
	return math.Pow(10, math.Floor(math.Log10(lo)+1e-9)) * (1 - 1e-9), math.Pow(10, math.Ceil(math.Log10(hi)-1e-9)) * (1 + 1e-9)
}

// logRange returns a log axis range for data in [lo, hi] (both > 0). A single value (one step count,
// one equal error) has no width, and gonum pads such a range linearly by ±1, which reaches 0 or
// below on a log axis; it becomes the decade around the value, [10^⌊log₁₀ v⌋, 10^⌈log₁₀ v⌉] (one
// decade either side for a power of ten), so both ends carry a labelled tick.
func logRange(lo, hi float64) (float64, float64) {
	if lo > 0 && hi > lo {
		return lo, hi
	}
	v := hi
	if !(v > 0) {
		v = lo
	}
	e := math.Log10(v)
	if r := math.Round(e); math.Abs(e-r) < 1e-9 { // a power of ten (0.1 is not one exactly in binary)
		return math.Pow(10, r-1), math.Pow(10, r+1)
	}
	return math.Pow(10, math.Floor(e)), math.Pow(10, math.Ceil(e))
}

func positiveFinite(v float64) bool { return v > 0 && !math.IsInf(v, 0) }
