package compare

import (
	"image"
	"image/color"

	"golang.org/x/image/draw"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Grid is one labelled block of thumbnails: Cells[row][col] (nil leaves a blank cell), a title
// above, column labels above the cells and row labels left of them.
type Grid struct {
	Title     string
	ColLabels []string
	RowLabels []string
	Cells     [][]image.Image
}

// GridLayout says where RenderGrids put each part of one block (for tests and for callers that
// annotate further).
type GridLayout struct {
	Title     image.Rectangle
	ColLabels []image.Rectangle
	RowLabels []image.Rectangle
	Cells     [][]image.Rectangle
}

// Grid geometry: the 7×13 basic font, padding, label line height.
const (
	gridPad     = 6
	gridLineH   = 18
	gridCharW   = 7
	gridMinCell = 16
)

// Background and Ink are the grid's colours.
var (
	Background = color.NRGBA{255, 255, 255, 255}
	Ink        = color.NRGBA{20, 20, 20, 255}
)

// GridMaxWidth is the widest a rendered grid gets before its blocks wrap to a new row (pixels).
const GridMaxWidth = 2400

// RenderGrids draws the blocks left to right, wrapping to a new row of blocks when the next would pass
// GridMaxWidth (so many blocks make a sheet, not one tall column), every cell cell×cell pixels
// (thumbnails are scaled to fit, keeping their aspect ratio, with Catmull–Rom filtering). Every block
// has the same width; a row of blocks is as tall as its tallest. Text uses the 7×13 font of
// golang.org/x/image/font/basicfont.
func RenderGrids(blocks []Grid, cell int) (*image.NRGBA, []GridLayout) {
	cell = max(cell, gridMinCell)
	labelW, cols := 0, 1
	for _, g := range blocks {
		for _, l := range g.RowLabels {
			labelW = max(labelW, textWidth(l))
		}
		cols = max(cols, len(g.ColLabels))
		for _, r := range g.Cells {
			cols = max(cols, len(r))
		}
	}
	labelW += 2 * gridPad
	blockW := labelW + cols*(cell+gridPad) + gridPad
	for _, g := range blocks {
		blockW = max(blockW, textWidth(g.Title)+2*gridPad)
	}
	perRow := max(1, min(len(blocks), GridMaxWidth/blockW))
	blockH := func(g Grid) int { return 2*gridLineH + len(g.RowLabels)*(cell+gridPad) + gridPad }
	var rowH []int
	for b, g := range blocks {
		if b%perRow == 0 {
			rowH = append(rowH, 0)
		}
		rowH[len(rowH)-1] = max(rowH[len(rowH)-1], blockH(g))
	}
	height := gridPad
	for _, h := range rowH {
		height += h
	}
	img := image.NewNRGBA(image.Rect(0, 0, perRow*blockW, height))
	draw.Draw(img, img.Bounds(), image.NewUniform(Background), image.Point{}, draw.Src)
	layouts := make([]GridLayout, len(blocks))
	y := gridPad
	for b, g := range blocks {
		layouts[b] = drawBlock(img, g, (b%perRow)*blockW, y, labelW, cell)
		if b%perRow == perRow-1 {
			y += rowH[b/perRow]
		}
	}
	return img, layouts
}

// drawBlock draws one block with its top left corner at (x0, y).
func drawBlock(img *image.NRGBA, g Grid, x0, y, labelW, cell int) GridLayout {
	var l GridLayout
	l.Title = image.Rect(x0+gridPad, y, x0+gridPad+textWidth(g.Title), y+gridLineH)
	drawText(img, g.Title, l.Title.Min)
	y += gridLineH
	for c, s := range g.ColLabels {
		x := x0 + labelW + c*(cell+gridPad)
		r := image.Rect(x, y, x+min(textWidth(s), cell), y+gridLineH)
		drawText(img, s, r.Min)
		l.ColLabels = append(l.ColLabels, r)
	}
	y += gridLineH
	for row, s := range g.RowLabels {
		top := y + row*(cell+gridPad)
		r := image.Rect(x0+gridPad, top+cell/2-gridLineH/2, x0+gridPad+textWidth(s), top+cell/2+gridLineH/2)
		drawText(img, s, r.Min)
		l.RowLabels = append(l.RowLabels, r)
		var rects []image.Rectangle
		for c := range max(len(g.ColLabels), rowLen(g.Cells, row)) {
			x := x0 + labelW + c*(cell+gridPad)
			cr := image.Rect(x, top, x+cell, top+cell)
			rects = append(rects, cr)
			if c < rowLen(g.Cells, row) && g.Cells[row][c] != nil {
				drawFit(img, cr, g.Cells[row][c])
			}
		}
		l.Cells = append(l.Cells, rects)
	}
	return l
}

func rowLen(cells [][]image.Image, row int) int {
	if row < len(cells) {
		return len(cells[row])
	}
	return 0
}

// drawFit scales src into r keeping its aspect ratio, centred, with a thin frame.
func drawFit(dst *image.NRGBA, r image.Rectangle, src image.Image) {
	sb := src.Bounds()
	if sb.Empty() {
		return
	}
	w, h := r.Dx(), r.Dy()
	if sb.Dx()*h > sb.Dy()*w {
		h = max(1, sb.Dy()*w/sb.Dx())
	} else {
		w = max(1, sb.Dx()*h/sb.Dy())
	}
	off := image.Pt(r.Min.X+(r.Dx()-w)/2, r.Min.Y+(r.Dy()-h)/2)
	target := image.Rectangle{Min: off, Max: off.Add(image.Pt(w, h))}
	draw.CatmullRom.Scale(dst, target, src, sb, draw.Over, nil)
	frame := color.NRGBA{200, 200, 200, 255}
	for x := r.Min.X; x < r.Max.X; x++ {
		dst.SetNRGBA(x, r.Min.Y, frame)
		dst.SetNRGBA(x, r.Max.Y-1, frame)
	}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		dst.SetNRGBA(r.Min.X, y, frame)
		dst.SetNRGBA(r.Max.X-1, y, frame)
	}
}

// textWidth is the advance of s in the basic font.
func textWidth(s string) int { return font.MeasureString(basicfont.Face7x13, s).Ceil() }

// drawText draws s with its line box's top-left corner at p.
func drawText(img *image.NRGBA, s string, p image.Point) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(Ink), Face: basicfont.Face7x13,
		Dot: fixed.P(p.X, p.Y+gridLineH-5)}
	d.DrawString(s)
}
