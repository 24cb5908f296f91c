package vae

import (
	"context"
	"image"
	"testing"

	"github.com/rflowrt/rflow/assets"
)

// BenchmarkDecodeDemo256 decodes one 32×32 demo latent to a 256×256 picture (scaling, the analytic
// decoder graph on ORT, the finiteness checks).
func BenchmarkDecodeDemo256(b *testing.B) {
	d := demoDecoder(b)
	z := assets.ComponentLatent(demoComponents[0], 32, 32)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Decode(ctx, z, 1, 32, 32); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeTiledDemo512 decodes a 64×64 demo latent in 32-latent tiles overlapping by 8.
func BenchmarkDecodeTiledDemo512(b *testing.B) {
	d := demoDecoder(b)
	z := assets.ComponentLatent(demoComponents[0], 64, 64)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.DecodeTiled(ctx, z, 1, 64, 64, TileOptions{Tile: 32, Overlap: 8}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkToImages converts one 1024×1024 decoder output to an 8-bit image.
func BenchmarkToImages(b *testing.B) {
	const side = 1024
	x := randLatents(1, 3*side*side, 0.6)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ToImages(x, 1, side, side); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(side*side), "ns/pixel")
}

// BenchmarkFromImage resizes a 1536×1024 picture to cover 1024×1024 (ResizeCrop) and converts it.
func BenchmarkFromImage(b *testing.B) {
	src := image.NewNRGBA(image.Rect(0, 0, 1536, 1024))
	for i := range src.Pix {
		src.Pix[i] = uint8(i * 7)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := FromImage(src, 1024, 1024, ResizeCrop); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPreview128 draws the preview of a 128×128 latent (a 1024² image).
func BenchmarkPreview128(b *testing.B) {
	x := randLatents(2, 16*128*128, 1)
	f := SD3PreviewFactors()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Preview(x, 16, 128, 128, f); err != nil {
			b.Fatal(err)
		}
	}
}
