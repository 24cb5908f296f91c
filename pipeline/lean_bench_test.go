//go:build unix

package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rflowrt/rflow/internal/benchutil"
	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/internal/testmodels"
)

// leanChildEnv carries the settings of one TestLeanChild run: comma-separated key=value pairs
// (size, threads, spin, lowmem, noarena, tiling, dyn), e.g. "size=1024,threads=1,lowmem=1".
const leanChildEnv = "RFLOW_LEAN_CHILD"

type leanSettings struct {
	size, threads, dyn            int
	spin, lowMem, noArena, tiling bool
}

func parseLean(s string) (leanSettings, error) {
	l := leanSettings{size: 512}
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.Atoi(v)
		if err != nil {
			return l, fmt.Errorf("%s: %w", kv, err)
		}
		switch k {
		case "size":
			l.size = n
		case "threads":
			l.threads = n
		case "dyn":
			l.dyn = n
		case "spin":
			l.spin = n != 0
		case "lowmem":
			l.lowMem = n != 0
		case "noarena":
			l.noArena = n != 0
		case "tiling":
			l.tiling = n != 0
		default:
			return l, fmt.Errorf("unknown setting %q", k)
		}
	}
	return l, nil
}

// TestLeanChild is BenchmarkLeanSessions' child: one txt2img (1 step, CFG on) on the bench SD3 fixture
// with the settings the environment names, then wall and CPU milliseconds of the transformer stage
// (its load included) and the VAE decode, and the peak RSS after each, on stdout.
func TestLeanChild(t *testing.T) {
	env := os.Getenv(leanChildEnv)
	if env == "" {
		t.Skip("run by BenchmarkLeanSessions")
	}
	l, err := parseLean(env)
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("RFLOW_LEAN_MODEL") // another model folder, e.g. the same weights with unfused attention
	if dir == "" {
		dir = testmodels.Cached(t, testmodels.Options{Kind: testmodels.KindSD3, Size: testmodels.SizeBench})
	}
	m, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	so := ort.SessionOptions{IntraOpThreads: l.threads, Spinning: l.spin, LowMem: l.lowMem, NoArena: l.noArena,
		DynamicBlockBase: l.dyn}
	p := New(m, Options{Session: so})
	defer p.Close()
	var transStart, decStart time.Duration
	var transWall, decWall time.Time
	var transCPU, decCPU, transDur, decDur time.Duration
	var transPeak int64
	onEvent := func(e Event) {
		switch {
		case e.Stage == StageLoad && e.Component == compTransformer:
			transStart, transWall = benchutil.CPUTime(), time.Now()
		case e.Stage == StageDenoise && e.Step == e.Total:
			transCPU, transDur, transPeak = benchutil.CPUTime()-transStart, time.Since(transWall), peakRSS()
		case e.Stage == StageLoad && e.Component == compVAEDecoder:
			decStart, decWall = benchutil.CPUTime(), time.Now()
		case e.Stage == StageDecode && e.Step == 1:
			decCPU, decDur = benchutil.CPUTime()-decStart, time.Since(decWall)
		}
	}
	req := Request{Prompt: "a cat", Width: l.size, Height: l.size, Steps: 1, VAETiling: l.tiling}
	res, err := p.Generate(context.Background(), req, onEvent)
	if err != nil {
		t.Fatal(err)
	}
	if out := os.Getenv("RFLOW_LEAN_OUT"); out != "" && len(res.Images) > 0 { // raw RGBA, for PSNR between settings
		name := filepath.Join(out, strings.NewReplacer(",", "_", "=", "").Replace(env)+".rgba")
		if err := os.WriteFile(name, res.Images[0].Pix, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Printf("lean trans-ms %d trans-cpu-ms %d trans-peak %d dec-ms %d dec-cpu-ms %d peak %d\n",
		transDur.Milliseconds(), transCPU.Milliseconds(), transPeak, decDur.Milliseconds(), decCPU.Milliseconds(),
		res.Timings.PeakRSSBytes)
}

// BenchmarkLeanSessions runs a whole txt2img (bench SD3, 1 step, CFG on) per session setting, each in
// its own process, interleaved over RFLOW_BENCH_ROUNDS rounds (default 1), and reports the median
// transformer and decode wall and CPU time and the peak RSS. RFLOW_LEAN_SIZE sets the side (default
// 512); RFLOW_LEAN_SETS replaces the settings (semicolon-separated TestLeanChild strings);
// RFLOW_LEAN_MODEL runs another SD3 model folder.
//
//	RFLOW_LEAN_SIZE=1024 go test -run '^$' -bench LeanSessions -benchtime 1x -timeout 60m ./pipeline
func BenchmarkLeanSessions(b *testing.B) {
	testmodels.Cached(b, testmodels.Options{Kind: testmodels.KindSD3, Size: testmodels.SizeBench})
	size := os.Getenv("RFLOW_LEAN_SIZE")
	if size == "" {
		size = "512"
	}
	sets := []string{"threads=2,spin=1", "threads=2", "threads=2,lowmem=1", "threads=2,noarena=1", "threads=2,lowmem=1,noarena=1", "threads=1"}
	if s := os.Getenv("RFLOW_LEAN_SETS"); s != "" {
		sets = strings.Split(s, ";")
	}
	rounds := benchutil.EnvInt(b, "RFLOW_BENCH_ROUNDS", 1)
	results := make([][][]float64, len(sets)) // set → round → metrics
	for r := range rounds {
		for i, s := range sets {
			out, _, err := benchutil.RunChild("TestLeanChild", leanChildEnv+"=size="+size+","+s)
			if err != nil {
				b.Fatalf("child %s: %v", s, err)
			}
			results[i] = append(results[i], parseLeanOut(b, []byte(out)))
			b.Logf("round %d %s: %v", r, s, results[i][len(results[i])-1])
		}
	}
	names := []string{"trans-ms", "trans-cpu-ms", "trans-peak-MiB", "dec-ms", "dec-cpu-ms", "peak-MiB"}
	for i, s := range sets {
		b.Run(strings.ReplaceAll(s, ",", "_"), func(b *testing.B) {
			for k, name := range names {
				vals := make([]float64, 0, rounds)
				for _, r := range results[i] {
					vals = append(vals, r[k])
				}
				b.ReportMetric(benchutil.Median(vals), name)
			}
		})
	}
}

func parseLeanOut(b *testing.B, out []byte) []float64 {
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 13 || f[0] != "lean" {
			continue
		}
		v := make([]float64, 0, 6)
		for k := 2; k < 13; k += 2 {
			x, err := strconv.ParseFloat(f[k], 64)
			if err != nil {
				b.Fatal(err)
			}
			v = append(v, x)
		}
		v[2], v[5] = v[2]/(1<<20), v[5]/(1<<20)
		return v
	}
	b.Fatalf("child printed no result:\n%s", out)
	return nil
}
