package lora

import (
	"fmt"
	"testing"
)

// BenchmarkMatmul measures the up · down product of one FLUX.1-size module (3072 × 3072) at common ranks;
// it is the merge's cost (a rank-r LoRA on a model of P patched parameters takes 2·r·P flops):
//
//	go test -run '^$' -bench Matmul -benchtime 3x ./internal/compiler/lora
func BenchmarkMatmul(b *testing.B) {
	for _, r := range []int64{16, 64} {
		b.Run(fmt.Sprintf("rank%d", r), func(b *testing.B) {
			const n = 3072
			up, down := make([]float32, n*r), make([]float32, r*n)
			for i := range up {
				up[i], down[i] = float32(i%7)*0.1, float32(i%5)*0.1
			}
			for range b.N {
				matmul(up, down, n, r, n)
			}
			b.ReportMetric(float64(2*n*r*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
		})
	}
}
