package vae

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestReadConfigRealModels(t *testing.T) {
	root := filepath.Join("..", "..", "shared", "model-configs")
	if _, err := os.Stat(root); err != nil {
		t.Skipf("shared/model-configs not found beside the module (%v); it is there in CI", err)
	}
	for _, c := range []struct {
		dir          string
		scale, shift float64
	}{
		{"stabilityai/stable-diffusion-3-medium-diffusers/vae", 1.5305, 0.0609},
		{"black-forest-labs/FLUX.1-dev/vae", 0.3611, 0.1159},
		{"black-forest-labs/FLUX.1-schnell/vae", 0.3611, 0.1159},
	} {
		got, err := ReadConfig(filepath.Join(root, filepath.FromSlash(c.dir)))
		if err != nil {
			t.Fatal(err)
		}
		want := Config{ScalingFactor: c.scale, ShiftFactor: c.shift, LatentChannels: 16, ScaleFactor: 8, SampleSize: 1024, FullResChannels: 256, ImageChannels: 128}
		if got != want {
			t.Errorf("%s: %+v, want %+v", c.dir, got, want)
		}
	}
}

func TestReadConfigDemo(t *testing.T) {
	got, err := ReadConfig(filepath.Join(demoDir(t), "vae_decoder"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Config{ScalingFactor: 1, LatentChannels: 16, ScaleFactor: 8, SampleSize: 256, FullResChannels: 32, ImageChannels: 32}); got != want {
		t.Errorf("demo vae config %+v, want %+v", got, want)
	}
}

func TestReadConfigShift(t *testing.T) {
	for _, body := range []string{
		`{"scaling_factor": 0.13025, "shift_factor": null, "latent_channels": 4, "block_out_channels": [128, 256, 512, 512]}`,
		`{"scaling_factor": 0.13025, "latent_channels": 4, "block_out_channels": [128, 256, 512, 512]}`,
	} {
		got, err := ReadConfig(writeConfig(t, body))
		if err != nil {
			t.Fatal(err)
		}
		if want := (Config{ScalingFactor: 0.13025, LatentChannels: 4, ScaleFactor: 8, SampleSize: 32, FullResChannels: 256, ImageChannels: 128}); got != want { // AutoencoderKL's default sample_size
			t.Errorf("%s: %+v, want %+v", body, got, want)
		}
	}
}

func TestReadConfigErrors(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{`{"latent_channels": 16, "block_out_channels": [1, 2]}`, "no scaling_factor"},
		{`{"scaling_factor": null, "latent_channels": 16, "block_out_channels": [1, 2]}`, "no scaling_factor"},
		{`{"scaling_factor": 1.5, "block_out_channels": [1, 2]}`, "no latent_channels"},
		{`{"scaling_factor": 1.5, "latent_channels": 16}`, "no block_out_channels"},
		{`{"scaling_factor": 1.5, "latent_channels": 16, "block_out_channels": []}`, "no block_out_channels"},
		{`{"scaling_factor": 0, "latent_channels": 16, "block_out_channels": [1]}`, "scaling_factor 0"},
		{`{"scaling_factor": -1, "latent_channels": 16, "block_out_channels": [1]}`, "scaling_factor -1"},
		{`{"scaling_factor": 1e300, "latent_channels": 16, "block_out_channels": [1]}`, "scaling_factor"},
		{`{"scaling_factor": 1, "latent_channels": 0, "block_out_channels": [1]}`, "latent_channels 0"},
		{`{"scaling_factor": 1, "latent_channels": 16.5, "block_out_channels": [1]}`, "config.json"},
		{`{"scaling_factor": "1", "latent_channels": 16, "block_out_channels": [1]}`, "config.json"},
		{`{"scaling_factor": 1, "latent_channels": 16, "block_out_channels": [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]}`, "not a VAE"},
		{`{`, "config.json"},
	} {
		_, err := ReadConfig(writeConfig(t, c.body))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.body, err, c.want)
		}
	}
	if _, err := ReadConfig(t.TempDir()); err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("missing file: error %v, want one naming config.json", err)
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{ScalingFactor: 1.5305, ShiftFactor: 0.0609, LatentChannels: 16, ScaleFactor: 8}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Config{
		{ScalingFactor: 1, LatentChannels: 16, ScaleFactor: 0},
		{ScalingFactor: 1, LatentChannels: 16, ScaleFactor: 6},
		{ScalingFactor: 1, LatentChannels: 0, ScaleFactor: 8},
		{ScalingFactor: 1e-50, LatentChannels: 16, ScaleFactor: 8}, // 0 in float32
		{ScalingFactor: 1, ShiftFactor: 1e39, LatentChannels: 16, ScaleFactor: 8},
		{},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

func TestScaleUnscaleFloat32(t *testing.T) {
	cfg := Config{ScalingFactor: 1.5305, ShiftFactor: 0.0609, LatentChannels: 16, ScaleFactor: 8}
	z := randLatents(1, 1000, 1.5)
	u := make([]float32, len(z))
	cfg.Unscale(u, z)
	s, sh := float32(1.5305), float32(0.0609)
	for i, v := range z {
		q := v / s
		if want := q + sh; u[i] != want {
			t.Fatalf("Unscale(%v) = %v, want %v", v, u[i], want)
		}
	}
	back := make([]float32, len(u))
	cfg.Scale(back, u)
	for i, v := range u {
		d := v - sh
		if want := d * s; back[i] != want {
			t.Fatalf("Scale(%v) = %v, want %v", v, back[i], want)
		}
	}
	if m := maxAbsDiff(back, z); m > 1e-6 {
		t.Errorf("Scale(Unscale(z)) differs from z by %g", m)
	}
}

// TestTileOptionsFromConfig: the tiles are diffusers' AutoencoderKL tiles: tile_latent_min_size =
// int(sample_size / 2^(len(block_out_channels)−1)), a step of int(tile·0.75), so an overlap of the rest;
// sample_size may be a list (its first entry counts) or absent (AutoencoderKL's default 32).
func TestTileOptionsFromConfig(t *testing.T) {
	for _, c := range []struct {
		sampleSize string
		blocks     string
		want       TileOptions
	}{
		{`1024`, `[128, 256, 512, 512]`, TileOptions{Tile: 128, Overlap: 32}}, // SD3, FLUX
		{`[512, 512]`, `[128, 256, 512, 512]`, TileOptions{Tile: 64, Overlap: 16}},
		{`128`, `[32, 32, 32, 32]`, TileOptions{Tile: 16, Overlap: 4}},
		{`40`, `[32, 32, 32, 32]`, TileOptions{Tile: 5, Overlap: 2}}, // step int(3.75) = 3
		{`256`, `[32, 32]`, TileOptions{Tile: 128, Overlap: 32}},     // spatial factor 2
		{`null`, `[32, 32, 32, 32]`, TileOptions{Tile: 4, Overlap: 1}},
	} {
		cfg, err := ReadConfig(writeConfig(t, `{"scaling_factor": 1, "latent_channels": 16, "block_out_channels": `+c.blocks+
			`, "sample_size": `+c.sampleSize+`}`))
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.TileOptions(); got != c.want {
			t.Errorf("sample_size %s, blocks %s: %+v, want %+v", c.sampleSize, c.blocks, got, c.want)
		}
	}
	if got := (Config{ScalingFactor: 1, LatentChannels: 16, ScaleFactor: 8}).TileOptions(); got != (TileOptions{}) {
		t.Errorf("a Config without SampleSize: %+v, want the zero TileOptions (DefaultTile)", got)
	}
	for _, bad := range []string{`0`, `"big"`, `[]`, `12.5`} {
		if _, err := ReadConfig(writeConfig(t, `{"scaling_factor": 1, "latent_channels": 16, "block_out_channels": [1, 2], "sample_size": `+bad+`}`)); err == nil {
			t.Errorf("sample_size %s accepted", bad)
		}
	}
}
