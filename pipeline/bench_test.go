package pipeline

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/internal/testmodels"
	"github.com/rflowrt/rflow/scheduler"
)

// benchDenoiser sets up the transformer passes of a 512×512 run on a bench fixture (zero conditioning
// of the real shapes; SD3 with its default CFG, so two rows per run).
func benchDenoiser(b *testing.B, kind testmodels.Kind) (*denoiser, *plan) {
	b.Helper()
	m, err := Open(testmodels.Cached(b, testmodels.Options{Kind: kind, Size: testmodels.SizeBench}))
	if err != nil {
		b.Fatal(err)
	}
	p := New(m, Options{Session: ort.SessionOptions{NoSpinning: true}})
	b.Cleanup(func() { p.Close() })
	pl, err := p.resolve(Request{Prompt: "x", Width: 512, Height: 512})
	if err != nil {
		b.Fatal(err)
	}
	cond := conditioning{rows: pl.batch, seqLen: pl.maxSeq, dim: m.JointDim, pooledDim: m.PooledDim}
	if !pl.flux {
		cond.seqLen += 77
		if pl.doCFG {
			cond.rows *= 2
		}
	}
	cond.embeds = make([]float32, cond.rows*cond.seqLen*cond.dim)
	cond.pooled = make([]float32, cond.rows*cond.pooledDim)
	sess, err := p.ms.transformer(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	d, err := p.newDenoiser(sess, pl, cond)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.close() })
	return d, pl
}

// BenchmarkStepOverhead compares one pipeline step (timestep lookup, latents copied or packed into the
// input, transformer run, NaN check, CFG combination, unpacking, Euler update) with the bare transformer
// Run on the same tensors, at 512×512 on the bench SD3 and FLUX.1-dev fixtures. go-µs/step is the Go
// work of a step, measured directly (step time minus time inside Run), and go-% its share.
func BenchmarkStepOverhead(b *testing.B) {
	for _, kind := range []testmodels.Kind{testmodels.KindSD3, testmodels.KindFluxDev} {
		b.Run(string(kind), func(b *testing.B) {
			d, pl := benchDenoiser(b, kind)
			ctx := context.Background()
			x := make([]float32, d.n)
			for i := range x {
				x[i] = float32(i%7) * 0.1
			}
			v := make([]float32, d.n)
			b.Run("pipeline", func(b *testing.B) {
				d.transformer, d.inModel = 0, 0
				var euler time.Duration
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					k := i % pl.steps()
					e := scheduler.Eval{Index: k, Total: pl.steps(), Sigma: pl.sigmas[k], SigmaNext: pl.sigmas[k+1], T: pl.sigmas[k]}
					if err := d.Velocity(ctx, v, x, e); err != nil {
						b.Fatal(err)
					}
					start := time.Now()
					eulerRef(x, v, 0.5, 0.5) // dt = 0: the Euler arithmetic without drifting x
					euler += time.Since(start)
				}
				b.StopTimer()
				goWork := d.inModel - d.transformer + euler
				b.ReportMetric(float64(goWork.Microseconds())/float64(b.N), "go-µs/step")
				b.ReportMetric(100*float64(goWork)/float64(d.inModel+euler), "go-%")
				b.ReportMetric(float64(d.transformer.Milliseconds())/float64(b.N), "run-ms/step")
			})
			b.Run("bare", func(b *testing.B) {
				b.ReportAllocs()
				for range b.N {
					if err := d.sess.Run(ctx, d.main.in, d.main.out); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkDemo256 is txt2img end to end on demo-sd3 at 256×256 with 28 Euler steps: lean loads every
// session in each run (the default policy), keep reuses them.
func BenchmarkDemo256(b *testing.B) {
	m, err := OpenDemo("demo-sd3")
	if err != nil {
		b.Fatal(err)
	}
	for _, keep := range []bool{false, true} {
		name := map[bool]string{false: "lean", true: "keep"}[keep]
		b.Run(name, func(b *testing.B) {
			p := New(m, Options{KeepModels: keep})
			defer p.Close()
			req := Request{Prompt: "a green star on a black background", Steps: 28}
			var denoise time.Duration
			for i := range b.N {
				req.Seed = uint64(i)
				res, err := p.Generate(context.Background(), req, nil)
				if err != nil {
					b.Fatal(err)
				}
				denoise += res.Timings.Denoise
			}
			b.ReportMetric(float64(denoise.Milliseconds())/float64(b.N), "denoise-ms")
		})
	}
}

// rssChildEnv names the memory policy a child process of BenchmarkPeakRSS runs.
const rssChildEnv = "RFLOW_PIPELINE_RSS_CHILD"

// TestPeakRSSChild is BenchmarkPeakRSS's child: one 512×512, 2-step txt2img on the bench SD3 fixture
// under the policy the environment names, then its peak RSS on stdout. It does nothing otherwise.
func TestPeakRSSChild(t *testing.T) {
	policy := os.Getenv(rssChildEnv)
	if policy == "" {
		t.Skip("run by BenchmarkPeakRSS")
	}
	m, err := Open(testmodels.Cached(t, testmodels.Options{Kind: testmodels.KindSD3, Size: testmodels.SizeBench}))
	if err != nil {
		t.Fatal(err)
	}
	p := New(m, Options{KeepModels: policy == "keep"})
	defer p.Close()
	res, err := p.Generate(context.Background(), Request{Prompt: "a cat", Width: 512, Height: 512, Steps: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("peak-rss %d load-ms %d\n", res.Timings.PeakRSSBytes, res.Timings.Load.Milliseconds())
}

// BenchmarkPeakRSS reports the process peak RSS of a bench SD3 txt2img under the default (lean) memory
// policy and under KeepModels, each in its own process so maxrss is the policy's own.
func BenchmarkPeakRSS(b *testing.B) {
	testmodels.Cached(b, testmodels.Options{Kind: testmodels.KindSD3, Size: testmodels.SizeBench}) // written once, outside the children
	for _, policy := range []string{"lean", "keep"} {
		b.Run(policy, func(b *testing.B) {
			var peak float64
			for range b.N {
				cmd := exec.Command(os.Args[0], "-test.run=^TestPeakRSSChild$", "-test.v")
				cmd.Env = append(os.Environ(), rssChildEnv+"="+policy)
				out, err := cmd.CombinedOutput()
				if err != nil {
					b.Fatalf("child: %v\n%s", err, out)
				}
				peak = max(peak, parsePeak(b, out))
			}
			b.ReportMetric(peak/(1<<20), "peak-MiB")
		})
	}
}

func parsePeak(b *testing.B, out []byte) float64 {
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "peak-rss" {
			v, err := strconv.ParseFloat(f[1], 64)
			if err == nil {
				return v
			}
		}
	}
	b.Fatalf("child printed no peak RSS:\n%s", out)
	return 0
}
