package pipeline

import (
	"context"
	"testing"

	"github.com/rflowrt/rflow/internal/ort/orttest"
	"github.com/rflowrt/rflow/vae"
)

// TestDecoderTiles: the decoder tiles only latents larger than 128 (the diffusers tiles of SD3 and
// FLUX, whose sample_size is 1024) by default, and larger than 64 with LowMem.
func TestDecoderTiles(t *testing.T) {
	sd3 := vae.TileOptions{Tile: 128, Overlap: 32}
	for _, c := range []struct {
		vaeTiles vae.TileOptions
		lowMem   bool
		want     vae.TileOptions
	}{
		{sd3, false, sd3},
		{vae.TileOptions{Tile: 256, Overlap: 64}, false, vae.TileOptions{Tile: 256, Overlap: 64}},
		{vae.TileOptions{Tile: 32, Overlap: 8}, false, vae.TileOptions{Tile: 128}}, // small sample_size: not below 128
		{vae.TileOptions{}, false, vae.TileOptions{Tile: 128}},
		{sd3, true, vae.TileOptions{Tile: 64}},
	} {
		if got := decoderTiles(c.vaeTiles, c.lowMem); got != c.want {
			t.Errorf("decoderTiles(%+v, lowMem %v) = %+v, want %+v", c.vaeTiles, c.lowMem, got, c.want)
		}
	}
	m, err := OpenDemo("demo-sd3")
	if err != nil {
		t.Fatal(err)
	}
	for _, lowMem := range []bool{false, true} {
		so := orttest.Options()
		so.LowMem = lowMem
		p := New(m, Options{Session: so})
		dec, err := p.ms.decoder(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := map[bool]int{false: vae.AutoTileLatents, true: vae.LowMemTileLatents}[lowMem]
		if got := dec.AutoTiling().Tile; got != want {
			t.Errorf("lowMem %v: the loaded decoder tiles above %d latents, want %d", lowMem, got, want)
		}
		p.Close()
	}
}
