package vae

import (
	"context"
	"fmt"
)

// Default tile geometry, in latent pixels, for a TileOptions left zero: 64 latents (512 pixels for an
// 8× VAE) with a quarter of the tile shared between neighbours, diffusers' tile_overlap_factor 0.25.
// Config.TileOptions gives diffusers' tiles for a VAE (128 latents for SD3 and FLUX).
const (
	DefaultTile    = 64
	DefaultOverlap = DefaultTile / 4
)

// TileOptions sets the tiles of DecodeTiled, in latent pixels. The zero value is Tile 64, Overlap 16.
// diffusers derives its tiles from the VAE config's sample_size (Config.TileOptions): for SD3 and FLUX
// (1024) they are Tile 128, Overlap 32; with a Tile divisible by 4 and Overlap Tile/4 the geometry is
// diffusers' (overlap_size = int(0.75·Tile), blend_extent = int(0.25·Tile·S)).
type TileOptions struct {
	// Tile is the side of a square tile; 0 means DefaultTile (64).
	Tile int
	// Overlap is how many latent rows/columns neighbouring tiles share; 0 means Tile/4 (diffusers'
	// tile_overlap_factor), a negative value means none (tiles abut, seams show). It must be < Tile.
	Overlap int
}

func (o TileOptions) normalized() (TileOptions, error) {
	if o.Tile == 0 {
		o.Tile = DefaultTile
	}
	switch {
	case o.Overlap == 0:
		o.Overlap = o.Tile / 4
	case o.Overlap < 0:
		o.Overlap = 0
	}
	if o.Tile < 1 || o.Overlap >= o.Tile {
		return o, fmt.Errorf("tile %d with overlap %d: want tile ≥ 1 and overlap < tile", o.Tile, o.Overlap)
	}
	return o, nil
}

// DecodeTiled is Decode in tiles, for images whose full decode needs more memory than there is: the
// decoder's activations are bounded by one tile. It follows diffusers' AutoencoderKL.tiled_decode:
// tiles of Tile×Tile latents start every Tile−Overlap latents (the last ones in a row or column may
// be smaller), each is decoded on its own, blended into the tile above and the tile to the left over
// Overlap·S pixels (S the spatial factor) with linear ramps (blend_v, blend_h: weights
// float32(1 − k/extent) and float32(k/extent), products and sum rounded to float32), and cropped to
// (Tile−Overlap)·S pixels. When the latents fit in one tile (h, w ≤ Tile) it is exactly Decode, as in
// diffusers. Otherwise the result differs from Decode where the decoder looks beyond a tile:
// GroupNorm statistics and attention in a real VAE, small colour shifts that the ramps hide. The
// result equals diffusers' bit for bit given the same tile decodes, quirk included: diffusers blends
// tiles in place, so where four tiles overlap the first row of a new tile row has been blended
// horizontally twice (weight w² instead of w), a small step of at most |Δ|/4 where neighbouring
// tiles disagree by Δ. Only two rows of decoded tiles are held at a time.
func (d *Decoder) DecodeTiled(ctx context.Context, latents []float32, b, h, w int, o TileOptions) ([]float32, error) {
	o, err := o.normalized()
	if err != nil {
		return nil, fmt.Errorf("vae tiled decode: %w", err)
	}
	if h <= o.Tile && w <= o.Tile {
		return d.decodeWhole(ctx, latents, b, h, w)
	}
	if err := d.checkInput(latents, b, h, w); err != nil {
		return nil, err
	}
	t := tiler{d: d, z: latents, b: b, h: h, w: w, opt: o}
	out, err := t.run(ctx)
	if err != nil {
		return nil, err
	}
	if err := CheckFinite(StageDecode, out); err != nil {
		return nil, err
	}
	return out, nil
}

// tiler decodes one latent batch [b, C, h, w] tile by tile, keeping two rows of decoded tiles.
type tiler struct {
	d       *Decoder
	z       []float32
	b, h, w int
	opt     TileOptions
}

// tile is one decoded tile, [b, 3, h, w] pixels, blended in place as diffusers does.
type tile struct {
	data []float32
	h, w int
}

func (t *tiler) run(ctx context.Context) ([]float32, error) {
	sf := t.d.cfg.ScaleFactor
	step := t.opt.Tile - t.opt.Overlap
	blend, limit := t.opt.Overlap*sf, step*sf // diffusers' blend_extent and row_limit
	H, W := t.h*sf, t.w*sf
	out := make([]float32, t.b*3*H*W)
	var above []tile
	for i := 0; i < t.h; i += step {
		row := make([]tile, 0, (t.w+step-1)/step)
		for j := 0; j < t.w; j += step {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			cur, err := t.decodeTile(ctx, i, j)
			if err != nil {
				return nil, err
			}
			if above != nil {
				blendV(above[len(row)], cur, t.b*3, blend)
			}
			if len(row) > 0 {
				blendH(row[len(row)-1], cur, t.b*3, blend)
			}
			paste(out, H, W, cur, t.b*3, i*sf, j*sf, limit)
			row = append(row, cur)
		}
		above = row
	}
	return out, nil
}

// decodeTile decodes the latents [:, :, i:i+Tile, j:j+Tile].
func (t *tiler) decodeTile(ctx context.Context, i, j int) (tile, error) {
	th, tw := min(t.opt.Tile, t.h-i), min(t.opt.Tile, t.w-j)
	planes := t.b * t.d.cfg.LatentChannels
	sub := make([]float32, 0, planes*th*tw)
	for p := range planes {
		for y := i; y < i+th; y++ {
			off := (p*t.h+y)*t.w + j
			sub = append(sub, t.z[off:off+tw]...)
		}
	}
	data, err := t.d.decode(ctx, sub, t.b, th, tw)
	if err != nil {
		return tile{}, fmt.Errorf("tile at latent (%d, %d): %w", i, j, err)
	}
	sf := t.d.cfg.ScaleFactor
	return tile{data: data, h: th * sf, w: tw * sf}, nil
}

// ramp returns diffusers' blend weights for position k of extent n: float32(1 − k/n), float32(k/n)
// (Python floats cast to the tensor's float32).
func ramp(k, n int) (float32, float32) {
	f := float64(k) / float64(n)
	return float32(1 - f), float32(f)
}

// blendV is diffusers' blend_v(a, b, extent): b's first rows fade in from a's last rows.
func blendV(a, b tile, planes, extent int) {
	ext := min(a.h, b.h, extent)
	for p := range planes {
		pa, pb := a.data[p*a.h*a.w:(p+1)*a.h*a.w], b.data[p*b.h*b.w:(p+1)*b.h*b.w]
		for y := range ext {
			wa, wb := ramp(y, ext)
			ra, rb := pa[(a.h-ext+y)*a.w:][:b.w], pb[y*b.w:][:b.w]
			for x, v := range rb {
				rb[x] = float32(ra[x]*wa) + float32(v*wb)
			}
		}
	}
}

// blendH is diffusers' blend_h(a, b, extent): b's first columns fade in from a's last columns.
func blendH(a, b tile, planes, extent int) {
	ext := min(a.w, b.w, extent)
	wa, wb := make([]float32, ext), make([]float32, ext)
	for x := range ext {
		wa[x], wb[x] = ramp(x, ext)
	}
	for p := range planes {
		pa, pb := a.data[p*a.h*a.w:(p+1)*a.h*a.w], b.data[p*b.h*b.w:(p+1)*b.h*b.w]
		for y := range b.h {
			ra, rb := pa[y*a.w+a.w-ext:][:ext], pb[y*b.w:][:ext]
			for x := range ext {
				rb[x] = float32(ra[x]*wa[x]) + float32(rb[x]*wb[x])
			}
		}
	}
}

// paste copies the tile's top-left limit×limit pixels (fewer at the image's edge) to out [.., H, W]
// at (y0, x0).
func paste(out []float32, H, W int, t tile, planes, y0, x0, limit int) {
	ch, cw := min(limit, t.h), min(limit, t.w)
	for p := range planes {
		src, dst := t.data[p*t.h*t.w:], out[p*H*W:]
		for y := range ch {
			copy(dst[(y0+y)*W+x0:][:cw], src[y*t.w:][:cw])
		}
	}
}
