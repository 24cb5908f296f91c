package rng

import "testing"

// latent1x16x128x128 is the noise of one 1024×1024 SD3/FLUX image (16 channels, 128×128).
const latent1x16x128x128 = 1 * 16 * 128 * 128

// BenchmarkTorchCPU1x16x128x128 draws one SD3/FLUX 1024² latent. The target is ≤ 20 ms with -cpu 1
// (pass -cpu 1 on its own: with "-cpu 1,2" the first run was seen to keep GOMAXPROCS 2).
func BenchmarkTorchCPU1x16x128x128(b *testing.B) {
	dst := make([]float32, latent1x16x128x128)
	b.SetBytes(4 * latent1x16x128x128)
	b.ReportAllocs()
	for b.Loop() {
		NewTorchCPU(0).Randn(dst)
	}
	reportPerValue(b, latent1x16x128x128)
}

func BenchmarkPhilox1x16x128x128(b *testing.B) {
	dst := make([]float32, latent1x16x128x128)
	b.SetBytes(4 * latent1x16x128x128)
	b.ReportAllocs()
	for b.Loop() {
		NewPhilox(0).Randn(dst)
	}
	reportPerValue(b, latent1x16x128x128)
}

// reportPerValue adds ms/op and ns/value to a benchmark's output.
func reportPerValue(b *testing.B, n int) {
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(ns/1e6, "ms/op")
	b.ReportMetric(ns/float64(n), "ns/value")
}
