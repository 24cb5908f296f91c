package vae

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/rflowrt/rflow/assets"
	"github.com/rflowrt/rflow/internal/onnx"
)

func TestTileOptions(t *testing.T) {
	for _, c := range []struct{ in, want TileOptions }{
		{TileOptions{}, TileOptions{64, 16}},
		{TileOptions{Tile: 32}, TileOptions{32, 8}},
		{TileOptions{Tile: 32, Overlap: 5}, TileOptions{32, 5}},
		{TileOptions{Tile: 32, Overlap: -1}, TileOptions{32, 0}},
		{TileOptions{Tile: 3}, TileOptions{3, 0}},
	} {
		got, err := c.in.normalized()
		if err != nil || got != c.want {
			t.Errorf("%+v: %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	d := loadDecoder(t, echoDecoder(t, onnx.Float), echoConfig(1, 0, 3))
	for _, bad := range []TileOptions{{Tile: -4}, {Tile: 8, Overlap: 8}, {Tile: 8, Overlap: 9}} {
		if _, err := d.DecodeTiled(context.Background(), make([]float32, 3*16*16), 1, 16, 16, bad); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

// TestDecodeTiledOneTile: latents that fit one tile are decoded exactly as Decode does.
func TestDecodeTiledOneTile(t *testing.T) {
	ctx := context.Background()
	d := demoDecoder(t)
	for _, c := range []struct {
		h, w int
		o    TileOptions
	}{{32, 32, TileOptions{Tile: 32, Overlap: 8}}, {40, 24, TileOptions{}}, {5, 64, TileOptions{}}} {
		z := randLatents(9, 2*16*c.h*c.w, 0.5)
		want, err := d.Decode(ctx, z, 2, c.h, c.w)
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.DecodeTiled(ctx, z, 2, c.h, c.w, c.o)
		if err != nil {
			t.Fatal(err)
		}
		if m := maxAbsDiff(got, want); m != 0 {
			t.Errorf("%d×%d in one tile %+v: differs from Decode by %g", c.h, c.w, c.o, m)
		}
	}
}

// TestDecodeTiledLocal: with a pointwise decoder every tile agrees with the full decode, so tiled
// equals untiled up to the blend's float32 rounding; this checks where tiles go and how they are cut
// (partial tiles at the edges, odd sizes, several overlaps).
func TestDecodeTiledLocal(t *testing.T) {
	ctx := context.Background()
	const c, sf = 4, 8
	d := loadDecoder(t, localDecoder(t, c, sf), Config{ScalingFactor: 1.5, ShiftFactor: 0.1, LatentChannels: c, ScaleFactor: sf})
	for _, s := range []struct {
		h, w int
		o    TileOptions
	}{
		{50, 37, TileOptions{Tile: 16, Overlap: 4}},
		{50, 37, TileOptions{Tile: 16, Overlap: 5}},
		{33, 17, TileOptions{Tile: 16, Overlap: -1}},
		{13, 10, TileOptions{Tile: 6, Overlap: 5}},
		{9, 70, TileOptions{Tile: 8}},
	} {
		z := randLatents(uint64(s.h*s.w), 2*c*s.h*s.w, 1)
		want, err := d.Decode(ctx, z, 2, s.h, s.w)
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.DecodeTiled(ctx, z, 2, s.h, s.w, s.o)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if e := math.Abs(float64(got[i] - want[i])); e > 1e-6*math.Max(1, math.Abs(float64(want[i]))) {
				t.Fatalf("%d×%d %+v: pixel value %d is %v, untiled %v", s.h, s.w, s.o, i, got[i], want[i])
			}
		}
	}
}

// tensor4 is a [b, c, h, w] tensor for the transliteration of diffusers below.
type tensor4 struct {
	data       []float32
	b, c, h, w int
}

func (x tensor4) at(b, c, y, i int) *float32 { return &x.data[((b*x.c+c)*x.h+y)*x.w+i] }

// diffusersTiledDecode transliterates diffusers' AutoencoderKL.tiled_decode, blend_v and blend_h
// (tile_latent_min_size = tile, overlap_size = tile − overlap, blend_extent = overlap·8,
// row_limit = tile·8 − blend_extent), decoding every tile with Decode and blending in place.
func diffusersTiledDecode(t *testing.T, d *Decoder, z []float32, b, h, w, tile, overlap int) []float32 {
	const sf = 8
	overlapSize, blendExtent := tile-overlap, overlap*sf
	rowLimit := tile*sf - blendExtent
	var rows [][]tensor4
	for i := 0; i < h; i += overlapSize {
		var row []tensor4
		for j := 0; j < w; j += overlapSize {
			sub := crop4(tensor4{z, b, 16, h, w}, i, j, min(tile, h-i), min(tile, w-j))
			dec, err := d.Decode(context.Background(), sub.data, b, sub.h, sub.w)
			if err != nil {
				t.Fatal(err)
			}
			row = append(row, tensor4{dec, b, 3, sub.h * sf, sub.w * sf})
		}
		rows = append(rows, row)
	}
	out := tensor4{make([]float32, b*3*h*sf*w*sf), b, 3, h * sf, w * sf}
	oy := 0
	for i, row := range rows {
		ox, rh := 0, 0
		for j, tl := range row {
			if i > 0 {
				blendVRef(rows[i-1][j], tl, blendExtent)
			}
			if j > 0 {
				blendHRef(row[j-1], tl, blendExtent)
			}
			kept := crop4(tl, 0, 0, min(rowLimit, tl.h), min(rowLimit, tl.w)) // tile[:, :, :row_limit, :row_limit]
			put4(out, kept, oy, ox)
			ox, rh = ox+kept.w, kept.h
		}
		if ox != w*sf {
			t.Fatalf("row %d is %d wide, want %d", i, ox, w*sf)
		}
		oy += rh
	}
	if oy != h*sf {
		t.Fatalf("the tiles are %d high, want %d", oy, h*sf)
	}
	return out.data
}

// crop4 copies x[:, :, i:i+h, j:j+w].
func crop4(x tensor4, i, j, h, w int) tensor4 {
	out := tensor4{make([]float32, x.b*x.c*h*w), x.b, x.c, h, w}
	for bi := range x.b {
		for c := range x.c {
			for y := range h {
				for k := range w {
					*out.at(bi, c, y, k) = *x.at(bi, c, i+y, j+k)
				}
			}
		}
	}
	return out
}

// put4 writes src into dst at (y0, x0).
func put4(dst, src tensor4, y0, x0 int) {
	for bi := range src.b {
		for c := range src.c {
			for y := range src.h {
				for k := range src.w {
					*dst.at(bi, c, y0+y, x0+k) = *src.at(bi, c, y, k)
				}
			}
		}
	}
}

// blendVRef is blend_v: b[:, :, y, :] = a[:, :, −ext + y, :]·(1 − y/ext) + b[:, :, y, :]·(y/ext), the
// Python-float weights cast to float32 and every tensor operation rounded to float32.
func blendVRef(a, x tensor4, ext int) {
	ext = min(a.h, x.h, ext)
	for y := range ext {
		wa, wb := float32(1-float64(y)/float64(ext)), float32(float64(y)/float64(ext))
		for bi := range x.b {
			for c := range x.c {
				for k := range x.w {
					p := x.at(bi, c, y, k)
					*p = float32(*a.at(bi, c, a.h-ext+y, k)*wa) + float32(*p*wb)
				}
			}
		}
	}
}

// blendHRef is blend_h: b[:, :, :, k] = a[:, :, :, −ext + k]·(1 − k/ext) + b[:, :, :, k]·(k/ext).
func blendHRef(a, x tensor4, ext int) {
	ext = min(a.w, x.w, ext)
	for k := range ext {
		wa, wb := float32(1-float64(k)/float64(ext)), float32(float64(k)/float64(ext))
		for bi := range x.b {
			for c := range x.c {
				for y := range x.h {
					p := x.at(bi, c, y, k)
					*p = float32(*a.at(bi, c, y, a.w-ext+k)*wa) + float32(*p*wb)
				}
			}
		}
	}
}

// TestDecodeTiledMatchesDiffusers: on the demo decoder, whose output depends on the tile's size
// (its edge sharpness scales with min(h, w)), so that tiles really disagree, DecodeTiled equals the
// transliteration of diffusers bit for bit.
func TestDecodeTiledMatchesDiffusers(t *testing.T) {
	d := demoDecoder(t)
	for _, s := range []struct{ b, h, w, tile, overlap int }{
		{1, 64, 64, 32, 8}, {2, 41, 70, 24, 6}, {1, 50, 33, 16, 4}, {1, 20, 45, 16, 5},
	} {
		t.Run(fmt.Sprintf("%dx%d_tile%d_overlap%d", s.h, s.w, s.tile, s.overlap), func(t *testing.T) {
			z := randLatents(uint64(s.h+s.w), s.b*16*s.h*s.w, 0.6)
			want := diffusersTiledDecode(t, d, z, s.b, s.h, s.w, s.tile, s.overlap)
			got, err := d.DecodeTiled(context.Background(), z, s.b, s.h, s.w, TileOptions{Tile: s.tile, Overlap: s.overlap})
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("value %d: %v, diffusers' tiled_decode gives %v", i, got[i], want[i])
				}
			}
		})
	}
}

// TestDecodeTiledDemo compares tiled and untiled decodes of demo pictures at 64×64 latents
// (512×512) with 32-latent tiles overlapping by 8. The demo decoder is local (bilinear ×8) except
// for its edge sharpness k = min(h, w), which a 32×32 tile halves and a 32×16 or 16×16 edge tile
// quarters: colours away from the shapes' outlines agree to float rounding (≤ 1e-5), outlines are
// softer in the tiled picture (measured on a triangle and a ring: max |Δ| 0.41 on an outline, mean
// |Δ| 0.005). Seams must not show: at a tile join no jump may exceed twice the jumps beside it by
// more than one 8-bit level (2/255). One exception is diffusers' own: where four tiles overlap, the
// first row of a new tile row has been blended horizontally twice (the tile above was blended in
// place before the vertical blend copied it), weight w² instead of w, a step of at most
// (w − w²)·|Δ| ≤ |Δ|/4 between disagreeing tiles; rflow keeps it for parity (measured here: jump
// 0.043 where the rows beside move 0.017, an excess of 0.011) and bounds it.
func TestDecodeTiledDemo(t *testing.T) {
	const h, w, H, W = 64, 64, 512, 512
	ctx := context.Background()
	d := demoDecoder(t)
	cs := []assets.Component{{Shape: "triangle", Color: "black", Background: "white"}, {Shape: "ring", Color: "green", Background: "orange"}}
	z := demoLatents(cs, h, w)
	full, err := d.Decode(ctx, z, len(cs), h, w)
	if err != nil {
		t.Fatal(err)
	}
	tiled, err := d.DecodeTiled(ctx, z, len(cs), h, w, TileOptions{Tile: 32, Overlap: 8})
	if err != nil {
		t.Fatal(err)
	}
	worst, mean := maxAbsDiff(tiled, full), meanAbsDiff(tiled, full)
	far, nFar := 0.0, 0 // where the shape field is saturated (|field| ≥ 0.95 at the 2×2 latents around)
	for b := range cs {
		field := z[b*16*h*w : b*16*h*w+h*w]
		for y := range H {
			for x := range W {
				if !saturated(field, h, w, y, x) {
					continue
				}
				nFar++
				for c := range 3 {
					i := ((b*3+c)*H+y)*W + x
					far = max(far, math.Abs(float64(tiled[i]-full[i])))
				}
			}
		}
	}
	t.Logf("tiled vs untiled: max |Δ| %.4f, mean |Δ| %.5f; away from outlines (%.0f%% of pixels) max |Δ| %.2g",
		worst, mean, 100*float64(nFar)/float64(len(cs)*H*W), far)
	if far > 1e-5 || mean > 0.01 || worst > 0.5 {
		t.Errorf("tiled decode differs from untiled: max %.4f (want ≤ 0.5), mean %.5f (≤ 0.01), away from outlines %.2g (≤ 1e-5)", worst, mean, far)
	}
	quirk := 0.0
	for _, line := range []int{24 * 8, 32 * 8, 48 * 8, 56 * 8} { // crop joins and ramp ends
		msg, q := seam(tiled, len(cs)*3, H, W, line, 24*8, 8*8)
		if msg != "" {
			t.Error(msg)
		}
		quirk = max(quirk, q)
	}
	t.Logf("diffusers' double horizontal blend at row joins in corner overlaps: largest excess jump %.4f", quirk)
	if quirk > 0.03 {
		t.Errorf("excess jump at row joins in corner overlaps %.4f > 0.03 (measured 0.011)", quirk)
	}
	// The seam check can fail: tiles that abut without blending show theirs.
	abut, err := d.DecodeTiled(ctx, z, len(cs), h, w, TileOptions{Tile: 32, Overlap: -1})
	if err != nil {
		t.Fatal(err)
	}
	if msg, _ := seam(abut, len(cs)*3, H, W, 32*8, 32*8, 0); msg == "" {
		t.Error("abutting tiles show no seam at 256: the seam check is blind")
	}
}

// saturated reports whether output pixel (y, x) of an 8× decode lies where the bilinear ×8 field
// is at least 0.95 in magnitude: all latents the interpolation reads are.
func saturated(field []float32, h, w, y, x int) bool {
	ly, lx := (float64(y)+0.5)/8-0.5, (float64(x)+0.5)/8-0.5
	y0, x0 := max(0, int(math.Floor(ly))), max(0, int(math.Floor(lx)))
	for yy := y0; yy <= min(h-1, y0+1); yy++ {
		for xx := x0; xx <= min(w-1, x0+1); xx++ {
			if math.Abs(float64(field[yy*w+xx])) < 0.95 {
				return false
			}
		}
	}
	return true
}

// seam looks for a discontinuity across row line−1/line and column line−1/line of planes [n, H, W]:
// a jump more than twice the larger jump one pixel before and after it plus one 8-bit level (2/255).
// It returns a description of the first one, or "". Row joins inside a horizontal overlap (columns
// [k·step, k·step + blend) for k ≥ 1, in pixels) are left out of the check: there diffusers blends
// twice (see TestDecodeTiledDemo); quirk is the largest excess jump found there.
func seam(x []float32, n, H, W, line, step, blend int) (msg string, quirk float64) {
	inCorner := func(k int) bool { return blend > 0 && k >= step && k%step < blend }
	for p := range n {
		pl := x[p*H*W : (p+1)*H*W]
		row := func(k, l int) float64 { return math.Abs(float64(pl[l*W+k] - pl[(l-1)*W+k])) }
		col := func(k, l int) float64 { return math.Abs(float64(pl[k*W+l] - pl[k*W+l-1])) }
		for k := range W {
			for _, c := range []struct {
				name   string
				jump   func(k, l int) float64
				corner bool
			}{{"row", row, inCorner(k)}, {"column", col, false}} {
				j, around := c.jump(k, line), max(c.jump(k, line-1), c.jump(k, line+1))
				excess := j - 2*around
				if c.corner {
					quirk = max(quirk, excess)
					continue
				}
				if excess > 2.0/255 && msg == "" {
					msg = fmt.Sprintf("plane %d: seam at %s %d, position %d: jump %.4f, jumps beside it %.4f", p, c.name, line, k, j, around)
				}
			}
		}
	}
	return msg, quirk
}

// TestDecodeAutoTiling: with SetAutoTiling, Decode of latents larger than a tile is DecodeTiled with
// those tiles, bit for bit (on the demo decoder, whose tiles disagree), and latents that fit one tile
// are decoded whole; a zero TileOptions turns it off, and bad tiles are an error.
func TestDecodeAutoTiling(t *testing.T) {
	ctx := context.Background()
	d := demoDecoder(t)
	o := TileOptions{Tile: 24, Overlap: 6}
	if err := d.SetAutoTiling(o); err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct{ h, w int }{{41, 30}, {24, 24}, {16, 20}} {
		z := randLatents(uint64(s.h*s.w), 16*s.h*s.w, 0.6)
		got, err := d.Decode(ctx, z, 1, s.h, s.w)
		if err != nil {
			t.Fatal(err)
		}
		tiled, err := d.DecodeTiled(ctx, z, 1, s.h, s.w, o)
		if err != nil {
			t.Fatal(err)
		}
		whole, err := d.decodeWhole(ctx, z, 1, s.h, s.w)
		if err != nil {
			t.Fatal(err)
		}
		fits := s.h <= o.Tile && s.w <= o.Tile
		if !slices.Equal(got, tiled) {
			t.Errorf("%dx%d: auto-tiled Decode differs from DecodeTiled", s.h, s.w)
		}
		if slices.Equal(got, whole) != fits {
			t.Errorf("%dx%d: equal to the whole decode = %v, want %v", s.h, s.w, !fits, fits)
		}
	}
	if err := d.SetAutoTiling(TileOptions{}); err != nil || d.AutoTiling() != (TileOptions{}) {
		t.Fatalf("turning auto tiling off: %v %+v", err, d.AutoTiling())
	}
	if err := d.SetAutoTiling(TileOptions{Tile: 8, Overlap: 8}); err == nil {
		t.Fatal("overlap = tile accepted")
	}
}
