package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/ort/orttest"
	"github.com/rflowrt/rflow/internal/testmodels"
	"github.com/rflowrt/rflow/vae"
)

// TestDecoderTiles: a whole-graph decoder tiles only latents larger than 128 (the diffusers tiles of
// SD3 and FLUX, whose sample_size is 1024) by default, a streamed one none; both tile latents larger
// than 64 with LowMem.
func TestDecoderTiles(t *testing.T) {
	sd3 := vae.TileOptions{Tile: 128, Overlap: 32}
	for _, c := range []struct {
		vaeTiles         vae.TileOptions
		lowMem, streamed bool
		want             vae.TileOptions
	}{
		{sd3, false, false, sd3},
		{vae.TileOptions{Tile: 256, Overlap: 64}, false, false, vae.TileOptions{Tile: 256, Overlap: 64}},
		{vae.TileOptions{Tile: 32, Overlap: 8}, false, false, vae.TileOptions{Tile: 128}}, // small sample_size: not below 128
		{vae.TileOptions{}, false, false, vae.TileOptions{Tile: 128}},
		{sd3, true, false, vae.TileOptions{Tile: 64}},
		{sd3, false, true, vae.TileOptions{}},
		{sd3, true, true, vae.TileOptions{Tile: 64}},
	} {
		if got := decoderTiles(c.vaeTiles, c.lowMem, c.streamed); got != c.want {
			t.Errorf("decoderTiles(%+v, lowMem %v, streamed %v) = %+v, want %+v", c.vaeTiles, c.lowMem, c.streamed, got, c.want)
		}
	}
	dir := testmodels.Cached(t, testmodels.Options{Kind: testmodels.KindSD3})
	fixture, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := New(fixture, Options{Session: orttest.Options()})
	dec, err := p.ms.decoder(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !dec.Streamed() || dec.AutoTiling() != (vae.TileOptions{}) {
		t.Errorf("the compiled fixture's decoder: streamed %v, tiles %+v; want streamed, untiled", dec.Streamed(), dec.AutoTiling())
	}
	p.Close()
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

// TestMemoryTiles: a whole decode whose estimate exceeds nine tenths of the available memory falls
// back to the low-memory tiles with a warning naming both figures; enough memory, unknown memory or
// an image no larger than one tile decode whole.
func TestMemoryTiles(t *testing.T) {
	sd3 := vae.Config{ScaleFactor: 8, FullResChannels: 256, ImageChannels: 128}
	need := sd3.WholeDecodeBytes(1, 1024, 1024)
	if gb := float64(need) / 1e9; gb < 4.45 || gb > 7 { // the real SD3/FLUX VAE at 1024², whole: +4246 MiB measured
		t.Errorf("whole 1024² decode of the SD3 VAE estimated at %.2f GB", gb)
	}
	if gb := float64(sd3.StreamedDecodeBytes(1, 1024, 1024)) / 1e9; gb < 1.41 || gb > 2 { // streamed: +1341 MiB measured
		t.Errorf("streamed 1024² decode of the SD3 VAE estimated at %.2f GB", gb)
	}
	for _, c := range []struct {
		batch, side int
		avail       int64
		known       bool
		tiles       bool
	}{
		{1, 1024, need * 2, true, false},
		{1, 1024, need, true, true}, // under the 10 % margin
		{2, 1024, need * 3 / 2, true, true},
		{1, 1024, 0, false, false},
		{1, 512, 1, true, false}, // one low-memory tile already
		{1, 768, 1, true, true},
	} {
		tiles, warning := memoryTiles(sd3, sd3.WholeDecodeBytes(c.batch, c.side, c.side), c.side, c.side, c.avail, c.known)
		if got := tiles.Tile != 0; got != c.tiles || got != (warning != "") || got && tiles.Tile != vae.LowMemTileLatents {
			t.Errorf("batch %d %d², %d bytes available (known %v): tiles %+v, warning %q", c.batch, c.side, c.avail, c.known, tiles, warning)
		}
		if c.tiles && !strings.Contains(warning, fmt.Sprintf("%dx%d", c.side, c.side)) {
			t.Errorf("warning %q does not name the size", warning)
		}
	}
}

// TestDecodeFallsBackToTiles: with the available memory made short, Generate decodes in the
// low-memory tiles — the image --low-mem gives, bit for bit — and reports it as a warning; with
// memory to spare it decodes whole, as before.
func TestDecodeFallsBackToTiles(t *testing.T) {
	m, err := OpenDemo("demo-sd3")
	if err != nil {
		t.Fatal(err)
	}
	req := Request{Prompt: "a green star", Width: 640, Height: 640, Steps: 2, Seed: 3}
	run := func(lowMem bool, avail int64) Result {
		so := orttest.Options()
		so.LowMem = lowMem
		p := New(m, Options{Session: so})
		defer p.Close()
		p.ms.available = func() (int64, bool) { return avail, true }
		res, err := p.Generate(context.Background(), req, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	whole, short, lowMem := run(false, 1<<40), run(false, 1<<20), run(true, 1<<40)
	if len(whole.Warnings) != 0 || len(short.Warnings) != 1 || !strings.Contains(short.Warnings[0].Message, "tiles") {
		t.Fatalf("warnings: ample memory %v, short %v", whole.Warnings, short.Warnings)
	}
	if !bytes.Equal(short.Images[0].Pix, lowMem.Images[0].Pix) {
		t.Error("the fallback's image differs from --low-mem's")
	}
	if bytes.Equal(short.Images[0].Pix, whole.Images[0].Pix) {
		t.Error("the fallback's image equals the whole decode's: it did not tile")
	}
}
