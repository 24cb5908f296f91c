package arch

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rflowrt/rflow/internal/benchutil"
	"github.com/rflowrt/rflow/internal/ort"
)

// benchWeights makes any parameter on demand, deterministic per name: rank ≥ 2 weights N(0, 1/fan_in),
// norm scales 1, other vectors N(0, 0.02²) — activations stay near unit size, which is all a timing
// needs.
type benchWeights struct{}

func (benchWeights) Shape(string) ([]int64, bool) { return nil, true }

func (benchWeights) Float32(name string, shape []int64) ([]float32, error) {
	h := fnv.New64a()
	h.Write([]byte(name))
	rng := rand.New(rand.NewPCG(1, h.Sum64()))
	n, fanIn := 1, 1
	for i, d := range shape {
		n *= int(d)
		if i > 0 {
			fanIn *= int(d)
		}
	}
	mean, std := 0.0, 0.02
	switch {
	case len(shape) >= 2:
		std = 1 / math.Sqrt(float64(fanIn))
	case strings.Contains(name, "norm") && strings.HasSuffix(name, ".weight"):
		mean, std = 1, 0
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(mean + rng.NormFloat64()*std)
	}
	return v, nil
}

// benchSD3Config is testmodels.BenchSD3 (the SD3 bench fixture's transformer): width 384, 8 blocks,
// 6 heads of 64, the real 4096-d context and 2048-d pooled inputs.
func benchSD3Config() SD3Config {
	c, err := ParseSD3Config(Config{"num_layers": 8.0, "attention_head_dim": 64.0, "num_attention_heads": 6.0,
		"joint_attention_dim": 4096.0, "caption_projection_dim": 384.0, "pooled_projection_dim": 2048.0,
		"in_channels": 16.0, "out_channels": 16.0, "patch_size": 2.0, "pos_embed_max_size": 96.0,
		"sample_size": 64.0, "qk_norm": nil, "dual_attention_layers": []any{}})
	if err != nil {
		panic(err) // a constant configuration
	}
	c.NoSkipLayers = true
	return c
}

// attentionChildEnv names the environment variable that makes TestAttentionBenchChild run one
// measurement: "kind,model-path,pixels,threads,runs,warmup".
const attentionChildEnv = "RFLOW_ATTENTION_BENCH_CHILD"

// BenchmarkAttention measures the SD3 bench transformer (CFG batch 2, 333 text tokens) with each
// attention operator at 512² and 1024² px on 1 and 2 intra-op threads (no spinning). Each measurement
// runs in its own child process, so its peak RSS (getrusage ru_maxrss) is that session's alone:
// loading the model, a warm-up Run and the timed Runs (peak-MiB), and the Runs alone (run-peak-MiB,
// VmHWM after clearing it once the session is loaded). CPU time per Run (cpu-ms/run, all threads) is
// steadier than wall time on a shared machine. The configurations run interleaved, round by
// round (RFLOW_BENCH_ROUNDS, default 1; each round rotates the operator order), and each reports its
// median ms per Run and its largest peak RSS. RFLOW_BENCH_SIZES (e.g. "512") and RFLOW_BENCH_OPS
// (e.g. "unfused,fused") narrow the set.
//
//	go test -run '^$' -bench Attention -benchtime 1x ./internal/compiler/arch/
func BenchmarkAttention(b *testing.B) {
	ops := []AttentionOp{UnfusedAttention, FusedAttention, ONNXAttention}
	if s := os.Getenv("RFLOW_BENCH_OPS"); s != "" {
		ops = nil
		for _, name := range strings.Split(s, ",") {
			op, err := ParseAttentionOp(name)
			if err != nil {
				b.Fatal(err)
			}
			ops = append(ops, op)
		}
	}
	sizes := []int{512, 1024}
	if s := os.Getenv("RFLOW_BENCH_SIZES"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			px, err := strconv.Atoi(f)
			if err != nil {
				b.Fatal(err)
			}
			sizes = append(sizes, px)
		}
	}
	rounds := 1
	if s := os.Getenv("RFLOW_BENCH_ROUNDS"); s != "" {
		var err error
		if rounds, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	dir := b.TempDir()
	paths := map[AttentionOp]string{}
	for _, op := range ops {
		m, err := BuildSD3(benchWeights{}, benchSD3Config(), IO{Attention: op})
		if err != nil {
			b.Fatal(err)
		}
		data, err := m.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		paths[op] = filepath.Join(dir, op.String()+".onnx")
		if err := os.WriteFile(paths[op], data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	type key struct {
		op          AttentionOp
		px, threads int
	}
	res := map[key][]childResult{}
	for r := range rounds {
		for _, px := range sizes {
			for _, threads := range []int{1, 2} {
				for i := range ops {
					op := ops[(i+r)%len(ops)]
					runs := 2
					if px > 768 {
						runs = 1
					}
					r, err := attentionChild("sd3", paths[op], px, threads, runs, true)
					if err != nil {
						b.Fatalf("%v %dpx %d threads: %v", op, px, threads, err)
					}
					k := key{op, px, threads}
					res[k] = append(res[k], r)
				}
			}
		}
	}
	for _, px := range sizes {
		for _, threads := range []int{1, 2} {
			for _, op := range ops {
				k := key{op, px, threads}
				b.Run(fmt.Sprintf("%s/%dpx/%dthreads", op, px, threads), func(b *testing.B) {
					var ms, cpu []float64
					var peak, runPeak float64
					for _, r := range res[k] {
						ms, cpu = append(ms, r.ms), append(cpu, r.cpuMS)
						peak, runPeak = max(peak, r.peak), max(runPeak, r.runPeak)
					}
					b.ReportMetric(benchutil.Median(ms), "ms/run")
					b.ReportMetric(benchutil.Median(cpu), "cpu-ms/run")
					b.ReportMetric(peak, "peak-MiB")
					b.ReportMetric(runPeak, "run-peak-MiB")
					b.ReportMetric(float64(len(ms)), "samples")
				})
			}
		}
	}
}

// attentionChild runs TestAttentionBenchChild in a child process: runs timed Runs of the model at
// path (kind sd3 or vae), after a warm-up Run if warm.
func attentionChild(kind, path string, px, threads, runs int, warm bool) (childResult, error) {
	w := 0
	if warm {
		w = 1
	}
	out, peak, err := benchutil.RunChild("TestAttentionBenchChild",
		fmt.Sprintf("%s=%s,%s,%d,%d,%d,%d", attentionChildEnv, kind, path, px, threads, runs, w))
	if err != nil {
		return childResult{}, err
	}
	res := childResult{peak: peak}
	_, rest, ok := strings.Cut(out, "attention-bench-ms=")
	if !ok {
		return res, fmt.Errorf("no result in the child's output:\n%s", out)
	}
	if _, err := fmt.Sscanf(rest, "%g cpu-ms=%g run-peak-MiB=%g", &res.ms, &res.cpuMS, &res.runPeak); err != nil {
		return res, fmt.Errorf("child's result %q: %w", rest, err)
	}
	return res, nil
}

// childResult is one child's measurement: wall and CPU ms per Run (median), peak RSS of the whole
// process and of the Runs alone, in MiB.
type childResult struct{ ms, cpuMS, peak, runPeak float64 }

// TestAttentionBenchChild is BenchmarkAttention's child process; it skips unless attentionChildEnv
// is set.
func TestAttentionBenchChild(t *testing.T) {
	spec := os.Getenv(attentionChildEnv)
	if spec == "" {
		t.Skip("runs only as BenchmarkAttention's child process")
	}
	f := strings.Split(spec, ",")
	if len(f) != 6 {
		t.Fatalf("%s=%q: want kind,model,pixels,threads,runs,warmup", attentionChildEnv, spec)
	}
	kind := f[0]
	px, _ := strconv.Atoi(f[2])
	threads, _ := strconv.Atoi(f[3])
	runs, _ := strconv.Atoi(f[4])
	warm := f[5] == "1"
	ctx := context.Background()
	s, err := ort.NewSession(ctx, f[1], ort.SessionOptions{IntraOpThreads: threads, NoSpinning: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const batch, textTokens = 2, 333
	lat := int64(px / 8)
	rng := rand.New(rand.NewPCG(2, 3))
	shapes := map[string][]int64{
		"hidden_states":         {batch, 16, lat, lat},
		"encoder_hidden_states": {batch, textTokens, 4096},
		"pooled_projections":    {batch, 2048},
		"timestep":              {batch},
		"latent_sample":         {1, 16, lat, lat},
	}
	outName, outShape := "out_hidden_states", []int64{batch, 16, lat, lat}
	if kind == "vae" {
		outName, outShape = "sample", []int64{1, 3, int64(px), int64(px)}
	}
	var ins []*ort.Tensor
	for _, info := range s.Inputs() {
		shape := shapes[info.Name]
		x, err := s.NewInput(info.Name, shape...)
		if err != nil {
			t.Fatal(err)
		}
		defer x.Destroy()
		v := make([]float32, x.Len())
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		if info.Name == "timestep" {
			for i := range v {
				v[i] = 500
			}
		}
		if err := x.SetFloat32(v); err != nil {
			t.Fatal(err)
		}
		ins = append(ins, x)
	}
	out, err := s.NewOutput(outName, outShape...)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Destroy()
	// from here on VmHWM is the peak of the Runs alone (loading the model peaks higher at 512²)
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatal(err)
	}
	var times, cpu []float64
	first := 0
	if warm {
		first = 1 // the first Run is a warm-up
	}
	for i := range runs + first {
		start, cpu0 := time.Now(), benchutil.CPUMillis()
		if err := s.Run(ctx, ins, []*ort.Tensor{out}); err != nil {
			t.Fatal(err)
		}
		if i >= first {
			times = append(times, float64(time.Since(start).Microseconds())/1e3)
			cpu = append(cpu, benchutil.CPUMillis()-cpu0)
		}
	}
	hwm, err := benchutil.StatusMiB("VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float32, out.Len())
	if err := out.ReadFloat32(v); err != nil {
		t.Fatal(err)
	}
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			t.Fatalf("output has %v", x)
		}
	}
	fmt.Printf("attention-bench-ms=%.1f cpu-ms=%.1f run-peak-MiB=%.1f\n", benchutil.Median(times), benchutil.Median(cpu), hwm)
}

// BenchmarkAttentionVAE decodes a 1024² px image (latent 128²) with the SD3 bench fixture's VAE
// decoder (testmodels.BenchVAE: widths 64, 128, 256, 256, two ResNets per block) fused and unfused, one
// cold Run per child process on RFLOW_BENCH_THREADS threads (default 1), RFLOW_BENCH_ROUNDS rounds:
// whether the mid-block attention or the convolutions set the decoder's peak memory.
func BenchmarkAttentionVAE(b *testing.B) {
	rounds, threads := benchutil.EnvInt(b, "RFLOW_BENCH_ROUNDS", 1), benchutil.EnvInt(b, "RFLOW_BENCH_THREADS", 1)
	ops := []AttentionOp{UnfusedAttention, FusedAttention}
	cfg := Config{"latent_channels": 16.0, "in_channels": 3.0, "out_channels": 3.0,
		"block_out_channels": []any{64.0, 128.0, 256.0, 256.0}, "layers_per_block": 2.0, "norm_num_groups": 32.0,
		"down_block_types": []any{"DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"},
		"up_block_types":   []any{"UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"}}
	dir := b.TempDir()
	paths := map[AttentionOp]string{}
	for _, op := range ops {
		m, err := VAEDecoder(benchWeights{}, cfg, IO{Attention: op})
		if err != nil {
			b.Fatal(err)
		}
		data, err := m.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		paths[op] = filepath.Join(dir, op.String()+".onnx")
		if err := os.WriteFile(paths[op], data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	res := map[AttentionOp][]childResult{}
	for r := range rounds {
		for i := range ops {
			op := ops[(i+r)%len(ops)]
			c, err := attentionChild("vae", paths[op], 1024, threads, 1, false)
			if err != nil {
				b.Fatalf("vae %v: %v", op, err)
			}
			res[op] = append(res[op], c)
		}
	}
	for _, op := range ops {
		b.Run(fmt.Sprintf("%s/1024px/%dthreads", op, threads), func(b *testing.B) {
			var ms, cpu []float64
			var peak, runPeak float64
			for _, r := range res[op] {
				ms, cpu = append(ms, r.ms), append(cpu, r.cpuMS)
				peak, runPeak = max(peak, r.peak), max(runPeak, r.runPeak)
			}
			b.ReportMetric(benchutil.Median(ms), "ms/run")
			b.ReportMetric(benchutil.Median(cpu), "cpu-ms/run")
			b.ReportMetric(peak, "peak-MiB")
			b.ReportMetric(runPeak, "run-peak-MiB")
		})
	}
}
