package server

import (
	"fmt"
	"image"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rflowrt/rflow/pipeline"
)

// loadCase is one distinct request of the load test.
type loadCase struct {
	prompt string
	seed   int64
}

// runLoad sends total requests from clients goroutines over loopback, alternating OpenAI and A1111,
// cycling over cases; it checks every answer against want and returns how many were right.
func runLoad(t testing.TB, url string, c *http.Client, total, clients int, cases []loadCase, want map[loadCase]*image.NRGBA,
	after func(done int)) int64 {
	var next, ok atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				lc := cases[i%len(cases)]
				var got string
				if i%2 == 0 {
					var out openAIResponse
					code, _ := post(t, c, url+"/v1/images/generations", "", map[string]any{"prompt": lc.prompt, "seed": lc.seed,
						"size": "64x64", "steps": 3}, &out)
					if code == 200 && len(out.Data) == 1 {
						got = out.Data[0].B64JSON
					} else {
						t.Errorf("request %d: %d, %d images", i, code, len(out.Data))
					}
				} else {
					var out struct{ Images []string }
					code, _ := post(t, c, url+"/sdapi/v1/txt2img", "", map[string]any{"prompt": lc.prompt, "seed": lc.seed,
						"width": 64, "height": 64, "steps": 3}, &out)
					if code == 200 && len(out.Images) == 1 {
						got = out.Images[0]
					} else {
						t.Errorf("request %d: %d, %d images", i, code, len(out.Images))
					}
				}
				if got != "" {
					if samePixels(decodeB64PNG(t, got), want[lc]) {
						ok.Add(1)
					} else {
						t.Errorf("request %d (%q, seed %d): the image is not its own", i, lc.prompt, lc.seed)
					}
				}
				if after != nil {
					after(i)
				}
			}
		}()
	}
	wg.Wait()
	return ok.Load()
}

// rssBytes is the process's resident set size now (Linux), or 0.
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

func heapBytes() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// TestLoad sends 200 requests (-short or -race: 48) from 8 concurrent clients to the demo model over loopback:
// every request gets an answer, each image is the lone run's image of its own prompt and seed (the
// CLI's image), and memory is flat: RSS and Go heap after the second half are within bounds of their
// values after the first half.
func TestLoad(t *testing.T) {
	total := 200
	if testing.Short() || raceEnabled {
		total = 48
	}
	s, hs := testServer(t, Options{MaxQueue: 64})
	l := newLone(t)
	var cases []loadCase
	for i := range 20 {
		cases = append(cases, loadCase{prompt: fmt.Sprintf("a red circle number %d", i%5), seed: int64(1000 + 37*i)})
	}
	want := map[loadCase]*image.NRGBA{}
	for _, lc := range cases {
		want[lc] = l.image(t, pipeline.Request{Prompt: lc.prompt, Seed: uint64(lc.seed), Width: 64, Height: 64, Steps: 3})
	}
	start := time.Now()
	var mu sync.Mutex
	var rssHalf, heapHalf int64
	ok := runLoad(t, hs.URL, hs.Client(), total, 8, cases, want, func(i int) {
		if i == total/2 {
			mu.Lock()
			rssHalf, heapHalf = rssBytes(), heapBytes()
			mu.Unlock()
		}
	})
	elapsed := time.Since(start)
	rssEnd, heapEnd := rssBytes(), heapBytes()
	if ok != int64(total) {
		t.Fatalf("%d of %d answers right", ok, total)
	}
	st := s.engine.Stats()
	t.Logf("%d requests from 8 clients in %v (%.0f images/s); %d denoise runs, %d images batched, largest batch %d; "+
		"RSS %.1f → %.1f MiB, Go heap %.1f → %.1f MiB (half → end)", total, elapsed.Round(time.Millisecond),
		float64(total)/elapsed.Seconds(), st.Runs, st.BatchedRequests, st.LargestBatch,
		float64(rssHalf)/(1<<20), float64(rssEnd)/(1<<20), float64(heapHalf)/(1<<20), float64(heapEnd)/(1<<20))
	if len(s.jobs.list()) != 0 {
		t.Errorf("%d jobs kept after synchronous requests", len(s.jobs.list()))
	}
	if rssHalf > 0 && rssEnd-rssHalf > 64<<20 {
		t.Errorf("RSS grew by %.1f MiB over the second half of the load", float64(rssEnd-rssHalf)/(1<<20))
	}
	if heapEnd-heapHalf > 16<<20 {
		t.Errorf("Go heap grew by %.1f MiB over the second half of the load", float64(heapEnd-heapHalf)/(1<<20))
	}
}

// BenchmarkServerLoad is TestLoad's long variant: 2000 requests from 8 clients per iteration.
//
//	go test -run '^$' -bench ServerLoad -benchtime 1x ./server
func BenchmarkServerLoad(b *testing.B) {
	s, hs := testServer(b, Options{MaxQueue: 64})
	l := newLone(b)
	var cases []loadCase
	for i := range 20 {
		cases = append(cases, loadCase{prompt: fmt.Sprintf("a red circle number %d", i%5), seed: int64(1000 + 37*i)})
	}
	want := map[loadCase]*image.NRGBA{}
	for _, lc := range cases {
		want[lc] = l.image(b, pipeline.Request{Prompt: lc.prompt, Seed: uint64(lc.seed), Width: 64, Height: 64, Steps: 3})
	}
	const total = 2000
	rss0 := rssBytes()
	start := time.Now()
	for b.Loop() {
		if ok := runLoad(b, hs.URL, hs.Client(), total, 8, cases, want, nil); ok != total {
			b.Fatalf("%d of %d answers right", ok, total)
		}
	}
	b.ReportMetric(float64(total*b.N)/time.Since(start).Seconds(), "requests/s")
	b.ReportMetric(float64(rssBytes()-rss0)/(1<<20), "RSS-growth-MiB")
	b.ReportMetric(float64(s.engine.Stats().BatchedRequests)/float64(total*b.N), "batched-fraction")
}
