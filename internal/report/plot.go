package report

import (
	"bytes"
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Series is one line of a plot.
type Series struct {
	Name   string
	X, Y   []float64
	Dashed bool // e.g. the second probability path of a comparison
	// Color picks the palette entry (plotutil.Color); series of one sampler share it.
	Color int
}

// LogLogPlot renders the series on log–log axes as a PNG (width×height inches at 96 dpi) and
// returns its bytes. Points with a non-positive or non-finite coordinate are left out (they have no
// place on a log axis); a series with no point left is dropped, and no series at all is an error.
func LogLogPlot(title, xLabel, yLabel string, series []Series, width, height float64) ([]byte, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text, p.Y.Label.Text = xLabel, yLabel
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	p.Legend.Top, p.Legend.Left = false, true
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
			return nil, fmt.Errorf("report: plot %q: %w", s.Name, err)
		}
		line.Color, dots.Color = plotutil.Color(s.Color), plotutil.Color(s.Color)
		line.Width = vg.Points(1.5)
		dots.Shape = plotutil.Shape(s.Color)
		if s.Dashed {
			line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		p.Add(line, dots)
		p.Legend.Add(s.Name, line, dots)
		drawn++
	}
	if drawn == 0 {
		return nil, errors.New("report: plot " + title + ": no positive finite points to draw")
	}
	wt, err := p.WriterTo(vg.Length(width)*vg.Inch, vg.Length(height)*vg.Inch, "png")
	if err != nil {
		return nil, fmt.Errorf("report: plot %q: %w", title, err)
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("report: plot %q: %w", title, err)
	}
	return buf.Bytes(), nil
}

func positiveFinite(v float64) bool { return v > 0 && !math.IsInf(v, 0) }
