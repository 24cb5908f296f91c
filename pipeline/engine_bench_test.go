package pipeline

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkEngineThroughput draws 16 demo images (256×256, 8 steps, each its own prompt and seed)
// per iteration: sequentially through one Pipeline with its models kept, and through an Engine from 1, 4
// and 8 concurrent clients. images/s is the figure to compare; runs/op counts the engine's transformer
// runs (16 without batching).
//
//	go test -run '^$' -bench EngineThroughput -benchtime 3x ./pipeline
func BenchmarkEngineThroughput(b *testing.B) {
	for _, name := range []string{"demo-sd3", "demo-flux"} {
		m, err := OpenDemo(name)
		if err != nil {
			b.Fatal(err)
		}
		const images = 16
		req := func(i int) Request {
			return Request{Prompt: fmt.Sprintf("a red circle %d", i), Seed: uint64(i), Width: 256, Height: 256, Steps: 8}
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
