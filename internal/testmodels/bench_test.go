package testmodels

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rflowrt/rflow/internal/ort"
)

// BenchmarkTransformerStep runs one transformer step of BenchSD3 and BenchFlux at 512×512 px (SD3:
// latent 64×64, 1024 image tokens + 333 text tokens; FLUX: 1024 packed tokens + 512 text tokens)
// with ORT's default threads (one per core). Run with -benchtime=3x; the ms/step metric is the result.
func BenchmarkTransformerStep(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	b.Run("sd3", func(b *testing.B) {
		c := BenchSD3()
		in, outs := sd3Feeds(rng, c, 1, 64, 64, 333)
		benchStep(b, mk(SD3Transformer(c)), in, outs)
	})
	for _, g := range []bool{true, false} {
		name := "flux-schnell"
		if g {
			name = "flux-dev"
		}
		b.Run(name, func(b *testing.B) {
			c := BenchFlux(g)
			in, outs := fluxFeeds(rng, c, 1, 32, 32, 512)
			benchStep(b, mk(FluxTransformer(c)), in, outs)
		})
	}
}

func benchStep(b *testing.B, m built, in map[string]feed, outs map[string][]int64) {
	start := time.Now()
	data := modelBytes(b, m)
	marshal := time.Since(start)
	r := newRunnerOpts(b, data, ort.SessionOptions{})
	r.run(in, outs) // warm-up: first-run allocations
	for b.Loop() {
		r.run(in, outs)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms/step")
	b.ReportMetric(float64(len(data))/1e6, "MB")
	b.ReportMetric(float64(marshal.Milliseconds()), "marshal-ms") // excludes the builder call itself
}
