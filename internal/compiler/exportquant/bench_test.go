package exportquant

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rflowrt/rflow/internal/benchutil"
	"github.com/rflowrt/rflow/internal/compiler/arch"
	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/internal/testmodels"
)

// benchSD3Config is testmodels.BenchSD3 (the SD3 bench fixture's transformer) as a diffusers config.
func benchSD3Config(t testing.TB) arch.SD3Config {
	c, err := arch.ParseSD3Config(arch.Config{"num_layers": 8.0, "attention_head_dim": 64.0, "num_attention_heads": 6.0,
		"joint_attention_dim": 4096.0, "caption_projection_dim": 384.0, "pooled_projection_dim": 2048.0,
		"in_channels": 16.0, "out_channels": 16.0, "patch_size": 2.0, "pos_embed_max_size": 96.0,
		"sample_size": 64.0, "qk_norm": nil, "dual_attention_layers": []any{}})
	if err != nil {
		t.Fatal(err)
	}
	c.NoSkipLayers = true
	return c
}

// benchChildEnv makes TestExportBenchChild run one measurement: "model-path,pixels,threads,runs"
// (a step: one warm-up Run, then runs timed Runs), or "rewrite,src,dst,kind" (QuantizeFolder).
const benchChildEnv = "RFLOW_EXPORTQUANT_BENCH_CHILD"

// BenchmarkExportVariants measures the SD3 bench transformer written as torch.onnx exports it
// (unfused attention, fp32 weights) against what rflow quantize makes of it: attention fused, and
// int8, q8 and q4 weights (with fusion). Per variant: CFG-batch-2 transformer wall and CPU ms per
// step at 512² and 1024² (RFLOW_BENCH_SIZES), peak RSS of each measuring process (a child per
// measurement, so the peak is that session's: load, warm-up and timed Runs), size on disk, output SNR
// against the unfused fp32 export at 512², and the peak RSS of the rewrite itself. Variants run
// interleaved, round by round (RFLOW_BENCH_ROUNDS, default 1), rotating the order; the medians are
// reported. Threads: RFLOW_BENCH_THREADS (default 2); RFLOW_BENCH_VARIANTS (e.g.
// "fp32-unfused,fp32-fused") narrows the set.
//
//	go test -run '^$' -bench ExportVariants -benchtime 1x ./internal/compiler/exportquant/
func BenchmarkExportVariants(b *testing.B) {
	sizes := benchutil.EnvInts(b, "RFLOW_BENCH_SIZES", []int{512, 1024})
	rounds := benchutil.EnvInt(b, "RFLOW_BENCH_ROUNDS", 1)
	threads := benchutil.EnvInt(b, "RFLOW_BENCH_THREADS", 2)
	dir := b.TempDir()
	m, err := arch.BuildSD3(testmodels.RandomWeights{Seed: 0x5d3b}, benchSD3Config(b), arch.IO{Attention: arch.UnfusedAttention})
	if err != nil {
		b.Fatal(err)
	}
	src := filepath.Join(dir, "export")
	writeModel(b, m, filepath.Join(src, "transformer"))
	if err := os.WriteFile(filepath.Join(src, "model_index.json"), []byte("{}\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	type variant struct {
		name        string
		path        string
		size        int64
		rewritePeak float64
	}
	variants := []*variant{{name: "fp32-unfused", path: filepath.Join(src, "transformer", modelFile)}}
	for _, v := range []struct {
		name string
		kind arch.WeightKind
	}{{"fp32-fused", arch.FP32}, {"int8-fused", arch.Int8}, {"q8-fused", arch.Q8}, {"q4-fused", arch.Q4}} {
		if names := os.Getenv("RFLOW_BENCH_VARIANTS"); names != "" && !slices.Contains(strings.Split(names, ","), v.name) {
			continue
		}
		out := filepath.Join(dir, v.name)
		peak, err := benchChild(fmt.Sprintf("rewrite,%s,%s,%s", src, out, v.kind))
		if err != nil {
			b.Fatalf("%s: %v", v.name, err)
		}
		variants = append(variants, &variant{name: v.name, path: filepath.Join(out, "transformer", modelFile), rewritePeak: peak.peak})
	}
	if names := os.Getenv("RFLOW_BENCH_VARIANTS"); names != "" {
		variants = slices.DeleteFunc(variants, func(v *variant) bool { return !slices.Contains(strings.Split(names, ","), v.name) })
	}
	for _, v := range variants {
		for _, f := range []string{modelFile, dataFile} {
			if st, err := os.Stat(filepath.Join(filepath.Dir(v.path), f)); err == nil {
				v.size += st.Size()
			}
		}
	}
	ref := runModel(b, filepath.Join(src, "transformer", modelFile), 9)["out_hidden_states"]
	type key struct {
		v  string
		px int
	}
	res := map[key][]childResult{}
	for r := range rounds {
		for _, px := range sizes {
			for i := range variants {
				v := variants[(i+r)%len(variants)]
				out, err := benchChild(fmt.Sprintf("%s,%d,%d,%d", v.path, px, threads, 1))
				if err != nil {
					b.Fatalf("%s %dpx: %v", v.name, px, err)
				}
				res[key{v.name, px}] = append(res[key{v.name, px}], out)
			}
		}
	}
	for _, v := range variants {
		s := benchutil.SNRdB(runModel(b, v.path, 9)["out_hidden_states"], ref)
		for _, px := range sizes {
			b.Run(fmt.Sprintf("%s/%dpx", v.name, px), func(b *testing.B) {
				var ms, cpu []float64
				var peak float64
				for _, r := range res[key{v.name, px}] {
					ms, cpu, peak = append(ms, r.ms), append(cpu, r.cpuMS), max(peak, r.peak)
				}
				b.ReportMetric(benchutil.Median(ms), "ms/step")
				b.ReportMetric(benchutil.Median(cpu), "cpu-ms/step")
				b.ReportMetric(peak, "peak-MiB")
				b.ReportMetric(float64(v.size)/(1<<20), "disk-MiB")
				b.ReportMetric(min(s, 999), "SNR-dB")
				if v.rewritePeak > 0 {
					b.ReportMetric(v.rewritePeak, "rewrite-peak-MiB")
				}
			})
		}
	}
}

// childResult is one child's measurement: wall and CPU ms per Run, and the process's peak RSS (MiB).
type childResult struct{ ms, cpuMS, peak float64 }

// benchChild runs TestExportBenchChild with spec and returns its measurement and peak RSS.
func benchChild(spec string) (childResult, error) {
	out, peak, err := benchutil.RunChild("TestExportBenchChild", benchChildEnv+"="+spec)
	if err != nil {
		return childResult{}, err
	}
	res := childResult{peak: peak}
	if _, rest, ok := strings.Cut(out, "export-bench-ms="); ok {
		if _, err := fmt.Sscanf(rest, "%g cpu-ms=%g", &res.ms, &res.cpuMS); err != nil {
			return res, fmt.Errorf("child's result %q: %w", rest, err)
		}
	}
	return res, nil
}

// TestExportBenchChild is BenchmarkExportVariants' child process; it skips unless benchChildEnv is set.
func TestExportBenchChild(t *testing.T) {
	spec := os.Getenv(benchChildEnv)
	if spec == "" {
		t.Skip("runs only as BenchmarkExportVariants' child process")
	}
	f := strings.Split(spec, ",")
	ctx := context.Background()
	if f[0] == "rewrite" {
		kind, err := ParseKind(f[3])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := QuantizeFolder(ctx, f[1], f[2], FolderOptions{Options: Options{Kind: kind, FuseAttention: true}}); err != nil {
			t.Fatal(err)
		}
		return
	}
	px, _ := strconv.Atoi(f[1])
	threads, _ := strconv.Atoi(f[2])
	runs, _ := strconv.Atoi(f[3])
	s, err := ort.NewSession(ctx, f[0], ort.SessionOptions{IntraOpThreads: threads, NoSpinning: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const batch, textTokens = 2, 333
	lat := int64(px / 8)
	shapes := map[string][]int64{"hidden_states": {batch, 16, lat, lat}, "encoder_hidden_states": {batch, textTokens, 4096},
		"pooled_projections": {batch, 2048}, "timestep": {batch}}
	rng := rand.New(rand.NewPCG(2, 3))
	var ins []*ort.Tensor
	for _, info := range s.Inputs() {
		x, err := s.NewInput(info.Name, shapes[info.Name]...)
		if err != nil {
			t.Fatal(err)
		}
		defer x.Destroy()
		v := x.Float32s()
		for i := range v {
			v[i] = float32(rng.NormFloat64())
			if info.Name == "timestep" {
				v[i] = 500
			}
		}
		ins = append(ins, x)
	}
	out, err := s.NewOutput("out_hidden_states", batch, 16, lat, lat)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Destroy()
	var times, cpu []float64
	for i := range runs + 1 { // the first Run is a warm-up
		start, cpu0 := time.Now(), benchutil.CPUMillis()
		if err := s.Run(ctx, ins, []*ort.Tensor{out}); err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			times = append(times, float64(time.Since(start).Microseconds())/1e3)
			cpu = append(cpu, benchutil.CPUMillis()-cpu0)
		}
	}
	fmt.Printf("export-bench-ms=%.1f cpu-ms=%.1f\n", benchutil.Median(times), benchutil.Median(cpu))
}
