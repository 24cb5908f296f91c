package scheduler

import (
	"context"
	"testing"
)

// benchLatent is one SD3/FLUX 1024² latent, 1×16×128×128 float32 values.
const benchLatent = 16 * 128 * 128

// benchSteps runs b.N steps of fn in one sampler call, so the per-call scratch (allocated once)
// rounds to 0 allocs/op and ns/op is the cost of one step, the trivial model's pass included.
// bytesPerValue is the latent traffic of one step: every float32 the model and the sampler read or
// write per latent value.
func benchSteps(b *testing.B, fn SamplerFunc, bytesPerValue int64) {
	x := normalDraws(1, benchLatent)
	sig := uniformSigmas(1, 0, b.N)
	b.SetBytes(bytesPerValue * benchLatent)
	b.ReportAllocs()
	b.ResetTimer()
	if err := fn(context.Background(), halfModel{}, x, sig, Options{}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkEulerStep: model reads x, writes v (8 B); the step reads x, v and writes x (12 B).
func BenchmarkEulerStep(b *testing.B) { benchSteps(b, Euler, 20) }

// BenchmarkDPMPP2MStep: model 8 B; x0 = x − σ·v reads x, v, writes m0 (12 B); the update reads x,
// m0, m1 and writes x (16 B).
func BenchmarkDPMPP2MStep(b *testing.B) { benchSteps(b, DPMPP2M, 36) }
