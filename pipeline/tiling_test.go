package pipeline

import (
	"bytes"
	"context"
	"testing"

	"github.com/rflowrt/rflow/vae"
)

// TestVAETilingFromConfig: VAETiling decodes with the tiles diffusers' enable_tiling takes from the VAE
// config (demo: sample_size 256, so 32-latent tiles) and only for latents larger than a tile: at 256²
// (32 latents) the image is the untiled one, at 320² (40 latents, more than one tile but less than
// the fixed 64-latent tile rflow used before) it is decoded in tiles and differs.
func TestVAETilingFromConfig(t *testing.T) {
	m, err := OpenDemo("demo-sd3")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.VAE.TileOptions(), (vae.TileOptions{Tile: 32, Overlap: 8}); got != want {
		t.Fatalf("demo tiles %+v, want %+v (sample_size 256 / 8)", got, want)
	}
	p := newTestPipeline(t, m, true)
	for _, c := range []struct {
		size  int
		tiled bool
	}{{256, false}, {320, true}} {
		req := Request{Prompt: "a red circle", Width: c.size, Height: c.size, Steps: 1, Seed: 3}
		plain, err := p.Generate(context.Background(), req, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.VAETiling = true
		tiled, err := p.Generate(context.Background(), req, nil)
		if err != nil {
			t.Fatal(err)
		}
		if differ := !bytes.Equal(imageBytes(plain), imageBytes(tiled)); differ != c.tiled {
			t.Errorf("%d²: tiled image differs from the untiled one: %v, want %v", c.size, differ, c.tiled)
		}
	}
}
