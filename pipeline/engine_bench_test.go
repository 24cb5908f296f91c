package pipeline

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rflowrt/rflow/internal/testmodels"
)

// BenchmarkEngineThroughput draws 16 demo images (256×256, 8 steps, each its own prompt and seed)
// per iteration: sequentially through one Pipeline with its models kept, and through an Engine from 1, 4
// and 8 concurrent clients. images/s is the figure to compare; runs/op counts the engine's transformer
// runs (16 without batching). With RFLOW_BENCH_FIXTURE=1, bench-sd3 does the same with the bench
// fixture (components of hundreds of MB, where batching can pay): 8 images of 256×256, 4 steps — about
// 20 s an image on 2 busy cores with the tests' one thread per session, hence opt-in.
//
//	go test -run '^$' -bench EngineThroughput -benchtime 3x ./pipeline
func BenchmarkEngineThroughput(b *testing.B) {
	names := []string{"demo-sd3", "demo-flux"}
	if os.Getenv("RFLOW_BENCH_FIXTURE") == "1" {
		names = append(names, "bench-sd3")
	}
	for _, name := range names {
		var m *Model
		var err error
		images, steps := 16, 8
		if name == "bench-sd3" {
			m, err = Open(testmodels.Cached(b, testmodels.Options{Kind: testmodels.KindSD3, Size: testmodels.SizeBench}))
			images, steps = 8, 4
		} else {
			m, err = OpenDemo(name)
		}
		if err != nil {
			b.Fatal(err)
		}
		req := func(i int) Request {
			return Request{Prompt: fmt.Sprintf("a red circle %d", i), Seed: uint64(i), Width: 256, Height: 256, Steps: steps}
		}
		b.Run(name+"/sequential", func(b *testing.B) {
			p := newTestPipeline(b, m, true)
			if _, err := p.Generate(context.Background(), req(0), nil); err != nil { // load the sessions
				b.Fatal(err)
			}
			start := time.Now()
			for b.Loop() {
				for i := range images {
					if _, err := p.Generate(context.Background(), req(i), nil); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(images*b.N)/time.Since(start).Seconds(), "images/s")
		})
		for _, clients := range []int{1, 4, 8} {
			b.Run(fmt.Sprintf("%s/engine-%dclients", name, clients), func(b *testing.B) {
				e := newTestEngine(b, m, EngineOptions{MaxBatch: 8})
				if _, err := e.Generate(context.Background(), req(0), nil); err != nil {
					b.Fatal(err)
				}
				runs0 := e.Stats().Runs
				start := time.Now()
				for b.Loop() {
					var next atomic.Int64
					var wg sync.WaitGroup
					for range clients {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for i := int(next.Add(1)) - 1; i < images; i = int(next.Add(1)) - 1 {
								if _, err := e.Generate(context.Background(), req(i), nil); err != nil {
									b.Error(err)
									return
								}
							}
						}()
					}
					wg.Wait()
				}
				b.ReportMetric(float64(images*b.N)/time.Since(start).Seconds(), "images/s")
				b.ReportMetric(float64(e.Stats().Runs-runs0)/float64(b.N), "runs/op")
			})
		}
	}
}

// BenchmarkBatchedTransformer isolates what batching saves: the transformer time per image of a lone
// run against that of one run of 4 items (Request.Items, what the Engine sends), with the per-image text
// encoding and decode reported beside it. With RFLOW_BENCH_FIXTURE=1 it also measures the bench fixture
// (128×128, 4 steps).
//
//	RFLOW_BENCH_FIXTURE=1 go test -run '^$' -bench BatchedTransformer -benchtime 1x ./pipeline
func BenchmarkBatchedTransformer(b *testing.B) {
	names := []string{"demo-sd3", "demo-flux"}
	if os.Getenv("RFLOW_BENCH_FIXTURE") == "1" {
		names = append(names, "bench-sd3")
	}
	for _, name := range names {
		b.Run(name, func(b *testing.B) {
			var m *Model
			var err error
			size, steps := 256, 8
			if name == "bench-sd3" {
				m, err = Open(testmodels.Cached(b, testmodels.Options{Kind: testmodels.KindSD3, Size: testmodels.SizeBench}))
				size, steps = 128, 4
			} else {
				m, err = OpenDemo(name)
			}
			if err != nil {
				b.Fatal(err)
			}
			p := newTestPipeline(b, m, true)
			base := Request{Prompt: "a red circle", Width: size, Height: size, Steps: steps}
			if _, err := p.Generate(context.Background(), base, nil); err != nil { // load the sessions
				b.Fatal(err)
			}
			var lone, batched, encode, decode time.Duration
			for b.Loop() {
				res, err := p.Generate(context.Background(), base, nil)
				if err != nil {
					b.Fatal(err)
				}
				lone += res.Timings.Transformer
				r := base
				for i := range 4 {
					r.Items = append(r.Items, BatchItem{Prompt: fmt.Sprintf("a red circle %d", i), Seed: uint64(i)})
				}
				res, err = p.Generate(context.Background(), r, nil)
				if err != nil {
					b.Fatal(err)
				}
				batched += res.Timings.Transformer / 4
				encode += (res.Timings.Tokenize + res.Timings.Encode) / 4
				decode += res.Timings.Decode / 4
			}
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
			b.ReportMetric(ms(lone), "transformer-ms/image-lone")
			b.ReportMetric(ms(batched), "transformer-ms/image-batch4")
			b.ReportMetric(ms(encode), "encode-ms/image")
			b.ReportMetric(ms(decode), "decode-ms/image")
		})
	}
}
