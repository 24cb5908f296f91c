package arch_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rflowrt/rflow/internal/benchutil"
	"github.com/rflowrt/rflow/internal/compiler/arch"
	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/internal/testmodels"
)

// quantVariant is one way of storing the bench transformer's weights.
type quantVariant struct {
	name string
	kind arch.WeightKind
	q    arch.Quant
	f16  bool // the parameters left float stored as fp16
}

func benchSD3Model(b *testing.B, v quantVariant) []byte {
	b.Helper()
	c := testmodels.BenchSD3()
	if os.Getenv("RFLOW_QUANT_MODEL") == "large" {
		// width 1536: every Linear's input width is a whole number of 256-blocks (bench: 384, so a
		// 256 block falls back to 128 on all but the MLP output projections)
		c = testmodels.LargeSD3()
	}
	cfg := arch.Config{
		"num_layers": float64(c.Layers), "attention_head_dim": float64(c.Hidden / c.Heads),
		"num_attention_heads": float64(c.Heads), "joint_attention_dim": float64(c.JointDim),
		"caption_projection_dim": float64(c.Hidden), "pooled_projection_dim": float64(c.PooledDim),
		"in_channels": float64(c.InChannels), "out_channels": float64(c.InChannels),
		"patch_size": float64(c.PatchSize), "pos_embed_max_size": float64(c.PosEmbedMaxSize),
		"sample_size": float64(c.SampleSize), "qk_norm": nil, "dual_attention_layers": []any{},
	}
	sc, err := arch.ParseSD3Config(cfg)
	if err != nil {
		b.Fatal(err)
	}
	sc.NoSkipLayers = true
	var w arch.Weights = testmodels.RandomWeights{Seed: c.Seed}
	if v.kind.Quantized() {
		q := v.q
		q.Kind = v.kind
		w = arch.Quantized(w, q)
	}
	if v.f16 {
		w = arch.StoredAs(w, onnx.Float16)
	}
	m, err := arch.BuildSD3(w, sc, arch.IO{})
	if err != nil {
		b.Fatal(err)
	}
	data, err := m.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// sd3Step is one transformer run of the bench SD3 model at 512² with CFG (batch 2: 1024 image tokens,
// 333 text tokens), on fixed random inputs.
type sd3Step struct {
	s    *ort.Session
	ins  []*ort.Tensor
	out  *ort.Tensor
	size int
}

func newSD3Step(b *testing.B, data []byte) *sd3Step {
	b.Helper()
	threads := 2
	fmt.Sscan(os.Getenv("RFLOW_QUANT_THREADS"), &threads)
	s, err := ort.NewSessionFromBytes(context.Background(), "bench", data, "", ort.SessionOptions{IntraOpThreads: threads, NoSpinning: true})
	if err != nil {
		b.Fatal(err)
	}
	st := &sd3Step{s: s, size: len(data)}
	rng := rand.New(rand.NewPCG(11, 12))
	lat := int64(64) // latent side: 512² images; RFLOW_QUANT_PX sets another image side
	var px int64
	if fmt.Sscan(os.Getenv("RFLOW_QUANT_PX"), &px); px >= 16 {
		lat = px / 8
	}
	shapes := map[string][]int64{"hidden_states": {2, 16, lat, lat}, "encoder_hidden_states": {2, 333, 4096},
		"pooled_projections": {2, 2048}, "timestep": {2}}
	for _, info := range s.Inputs() {
		x, err := s.NewInput(info.Name, shapes[info.Name]...)
		if err != nil {
			b.Fatal(err)
		}
		v := x.Float32s()
		for i := range v {
			v[i] = float32(rng.NormFloat64())
			if info.Name == "timestep" {
				v[i] = 600
			}
		}
		st.ins = append(st.ins, x)
	}
	if st.out, err = s.NewOutput(s.Outputs()[0].Name, 2, 16, lat, lat); err != nil {
		b.Fatal(err)
	}
	return st
}

// run runs one step and returns its wall time, the process's CPU time (user + system) during it — the
// steadier measure on a shared machine — and the output.
func (st *sd3Step) run(b *testing.B) (wall, cpu time.Duration, y []float32) {
	start, cpu0 := time.Now(), benchutil.CPUTime()
	if err := st.s.Run(context.Background(), st.ins, []*ort.Tensor{st.out}); err != nil {
		b.Fatal(err)
	}
	wall, cpu = time.Since(start), benchutil.CPUTime()-cpu0
	y = make([]float32, st.out.Len())
	if err := st.out.ReadFloat32(y); err != nil {
		b.Fatal(err)
	}
	return wall, cpu, y
}

func (st *sd3Step) close() {
	for _, x := range st.ins {
		x.Destroy()
	}
	st.out.Destroy()
	st.s.Close()
}

// notIn quantizes the default layers except those whose name contains one of parts.
func notIn(parts ...string) func(string, int, int) bool {
	return func(name string, in, out int) bool {
		for _, p := range parts {
			if strings.Contains(name, p) {
				return false
			}
		}
		return arch.QuantizesLayer(name, in, out, 0)
	}
}

// BenchmarkWeightKindsTransformer measures the bench SD3 transformer (one CFG step at 512² — or
// RFLOW_QUANT_PX² —, 2 ORT
// threads, no spinning) for weight kinds and quantizer settings, interleaved over rounds so that a
// loaded machine slows every variant alike: ms/step (median of the rounds, and the spread), size, and
// the output's SNR against fp32. RFLOW_QUANT_VARIANTS (comma-separated names) narrows the list;
// RFLOW_QUANT_ROUNDS sets the rounds (default 3); RFLOW_QUANT_MODEL=large measures the ~530M-parameter
// testmodels.LargeSD3 (width 1536) instead of the bench transformer (width 384).
func BenchmarkWeightKindsTransformer(b *testing.B) {
	all := []quantVariant{
		{name: "fp32", kind: arch.FP32},
		{name: "int8", kind: arch.Int8},
		{name: "int8-full", kind: arch.Int8, q: arch.Quant{FullRange: true}},
		{name: "int8-noada", kind: arch.Int8, q: arch.Quant{Select: notIn("norm1")}, f16: true},
		{name: "int8-ffonly", kind: arch.Int8, q: arch.Quant{Select: onlyIn(".ff")}, f16: true},
		{name: "int8-f16", kind: arch.Int8, f16: true},
		{name: "q8-f16", kind: arch.Q8, f16: true},
		{name: "q8-b128-al0", kind: arch.Q8, q: arch.Quant{AccuracyLevel: 0, BlockSize: 128}, f16: true},
		{name: "q8-b64-al0-f16", kind: arch.Q8, q: arch.Quant{AccuracyLevel: 0, BlockSize: 64}, f16: true},
		{name: "q8-al0", kind: arch.Q8, q: arch.Quant{AccuracyLevel: 0}},
		{name: "q8-al1", kind: arch.Q8, q: arch.Quant{AccuracyLevel: 1}},
		{name: "q8-al4", kind: arch.Q8, q: arch.Quant{AccuracyLevel: 4}},
		{name: "q8-b64-al0", kind: arch.Q8, q: arch.Quant{AccuracyLevel: 0, BlockSize: 64}},
		{name: "q8-b64-al4", kind: arch.Q8, q: arch.Quant{AccuracyLevel: 4, BlockSize: 64}},
		{name: "q8-b128-al4", kind: arch.Q8, q: arch.Quant{AccuracyLevel: 4, BlockSize: 128}},
		{name: "q8-b256-al4", kind: arch.Q8, q: arch.Quant{AccuracyLevel: 4, BlockSize: 256}},
		{name: "q8-b32-al4", kind: arch.Q8, q: arch.Quant{AccuracyLevel: 4, BlockSize: 32}, f16: true},
		{name: "q8-b16-al4", kind: arch.Q8, q: arch.Quant{AccuracyLevel: 4, BlockSize: 16}, f16: true},
		{name: "q4-al0", kind: arch.Q4, q: arch.Quant{AccuracyLevel: 0}},
		{name: "q4-al1", kind: arch.Q4, q: arch.Quant{AccuracyLevel: 1}},
		{name: "q4-al4", kind: arch.Q4, q: arch.Quant{AccuracyLevel: 4}},
		{name: "q4-rtn", kind: arch.Q4, q: arch.Quant{AccuracyLevel: 4, RoundToNearest: true}},
		{name: "q4-b64", kind: arch.Q4, q: arch.Quant{AccuracyLevel: 4, BlockSize: 64}},
		{name: "q4-b32-al1", kind: arch.Q4, q: arch.Quant{AccuracyLevel: 1}},
		{name: "q4-b16", kind: arch.Q4, q: arch.Quant{AccuracyLevel: 4, BlockSize: 16}},
		{name: "q4-fp32ada", kind: arch.Q4, q: arch.Quant{AccuracyLevel: 4, Select: notIn("norm1")}},
		{name: "q4-fp32attn", kind: arch.Q4, q: arch.Quant{AccuracyLevel: 4, Select: notIn(".attn.")}},
		{name: "q4-fp32ff", kind: arch.Q4, q: arch.Quant{AccuracyLevel: 4, Select: notIn(".ff")}},
		{name: "q4-norm1-8", kind: arch.Q4, q: arch.Quant{AccuracyLevel: 4, Wide: func(n string) bool { return strings.Contains(n, "norm1") }}},
		{name: "q4-f16rest", kind: arch.Q4, q: arch.Quant{AccuracyLevel: 4}, f16: true},
		{name: "q4-everyLinear", kind: arch.Q4, q: arch.Quant{AccuracyLevel: 4, Select: func(string, int, int) bool { return true }}},
		// Bit allocations for q4 (the compiler's stores the float rest as fp16).
		{name: "q4-ada8", kind: arch.Q4, q: arch.Quant{AccuracyLevel: 4, Wide: arch.ModulationLayer}, f16: true},
		{name: "q4-b16-ada8", kind: arch.Q4, q: arch.Quant{AccuracyLevel: 4, BlockSize: 16, Wide: arch.ModulationLayer}, f16: true},
		{name: "q4-b16-ada8w128", kind: arch.Q4, q: arch.Quant{AccuracyLevel: 4, BlockSize: 16, Wide: arch.ModulationLayer, WideBlockSize: 128}, f16: true},
		{name: "q4-ada8-edge8", kind: arch.Q4, q: arch.Quant{AccuracyLevel: 4, Select: anyLinear, Wide: modulationOrEdge}, f16: true},
		{name: "q4-b16-ada8w128-edge8", kind: arch.Q4, q: arch.Quant{AccuracyLevel: 4, BlockSize: 16, Select: anyLinear, Wide: modulationOrEdge, WideBlockSize: 128}, f16: true},
		{name: "q4-ada8-out8", kind: arch.Q4, q: arch.Quant{AccuracyLevel: 4, Wide: wideAlso("to_out", "to_add_out")}, f16: true},
		{name: "q4-ada8-down8", kind: arch.Q4, q: arch.Quant{AccuracyLevel: 4, Wide: wideAlso(".net.2.")}, f16: true},
		{name: "q4-ada8-ctx8", kind: arch.Q4, q: arch.Quant{AccuracyLevel: 4, Wide: wideAlso("add_", "ff_context")}, f16: true},
		{name: "q4-ada8-qkv8", kind: arch.Q4, q: arch.Quant{AccuracyLevel: 4, Wide: wideAlso("to_q", "to_k", "to_v")}, f16: true},
		{name: "q4-ada8-ffup8", kind: arch.Q4, q: arch.Quant{AccuracyLevel: 4, Wide: wideAlso(".net.0.")}, f16: true},
		{name: "q4-attn8", kind: arch.Q4, q: arch.DefaultQuant(arch.Q4), f16: true},
		{name: "q4-attn8-al0", kind: arch.Q4, q: withLevel(arch.DefaultQuant(arch.Q4), 0), f16: true},
		{name: "q4-attn8-al1", kind: arch.Q4, q: withLevel(arch.DefaultQuant(arch.Q4), 1), f16: true},
		{name: "q4-attn8-al4", kind: arch.Q4, q: withLevel(arch.DefaultQuant(arch.Q4), 4), f16: true},
		{name: "q4-attn8-b32", kind: arch.Q4, q: arch.Quant{AccuracyLevel: 4, Wide: arch.Q4WideLayer}, f16: true},
		{name: "q4-attn8-ffup8", kind: arch.Q4, q: wideWith(".ff.net.0."), f16: true},
		{name: "q4-attn8-ffdown8", kind: arch.Q4, q: wideWith(".ff.net.2."), f16: true},
		{name: "q4-attn8-down8", kind: arch.Q4, q: arch.Quant{AccuracyLevel: 4, Wide: wideAlso("to_q", "to_k", "to_v", "to_out", ".net.2.")}, f16: true},
		// Every-layer-4-bit candidates for a ≤ 7 GB FLUX.1-dev (TestQuantFullSizeWeightBytes).
		{name: "q4-b64-al0", kind: arch.Q4, q: arch.Quant{BlockSize: 64}, f16: true},
		{name: "q4s", kind: arch.Q4S, q: arch.DefaultQuant(arch.Q4S), f16: true},
		{name: "q4s-al4", kind: arch.Q4S, q: withLevel(arch.DefaultQuant(arch.Q4S), 4), f16: true},
		{name: "q4-b128-attn8", kind: arch.Q4, q: arch.Quant{BlockSize: 128, Wide: arch.AttentionLayer, WideBlockSize: 128}, f16: true},
		{name: "q4-b128-al0", kind: arch.Q4, q: arch.Quant{BlockSize: 128}, f16: true},
		{name: "q4-ada8w128", kind: arch.Q4, q: arch.Quant{AccuracyLevel: 4, Wide: arch.ModulationLayer, WideBlockSize: 128}, f16: true},
	}
	vs := all
	if names := os.Getenv("RFLOW_QUANT_VARIANTS"); names != "" {
		vs = nil
		for _, v := range all {
			if v.name == "fp32" || slices.Contains(strings.Split(names, ","), v.name) {
				vs = append(vs, v)
			}
		}
	}
	rounds := 3
	fmt.Sscan(os.Getenv("RFLOW_QUANT_ROUNDS"), &rounds)
	steps := make([]*sd3Step, len(vs))
	for i, v := range vs {
		start := time.Now()
		steps[i] = newSD3Step(b, benchSD3Model(b, v))
		defer steps[i].close()
		fmt.Fprintf(os.Stderr, "built %s in %.1f s\n", v.name, time.Since(start).Seconds())
	}
	times := make([][]float64, len(vs))
	cpus := make([][]float64, len(vs))
	outs := make([][]float32, len(vs))
	for _, st := range steps {
		st.run(b) // warm-up
	}
	for r := 0; r < rounds; r++ {
		for i, st := range steps {
			d, c, y := st.run(b)
			fmt.Fprintf(os.Stderr, "round %d %s: %.0f ms wall, %.0f ms CPU\n", r, vs[i].name, ms(d), ms(c))
			times[i] = append(times[i], ms(d))
			cpus[i] = append(cpus[i], ms(c))
			outs[i] = y
		}
	}
	// The table goes to stderr: the testing package keeps only 10 lines of a benchmark's log.
	fmt.Fprintf(os.Stderr, "%-22s %8s %8s %7s %8s %8s %7s %7s %8s\n", "variant", "wall ms", "spread", "×fp32", "CPU ms", "spread", "×fp32", "MB", "SNR dB")
	base, cbase := benchutil.Median(times[0]), benchutil.Median(cpus[0])
	for i, v := range vs {
		t, c := times[i], cpus[i]
		fmt.Fprintf(os.Stderr, "%-22s %8.0f %7.0f%% %7.2f %8.0f %7.0f%% %7.2f %7.1f %8.1f\n", v.name, benchutil.Median(t), 100*spread(t), benchutil.Median(t)/base,
			benchutil.Median(c), 100*spread(c), benchutil.Median(c)/cbase, float64(steps[i].size)/1e6, benchutil.SNRdB(outs[i], outs[0]))
	}
}

// wideWith is DefaultQuant's q4 with also the layers whose name contains one of parts at 8 bits.
func wideWith(parts ...string) arch.Quant {
	q := arch.DefaultQuant(arch.Q4)
	q.Wide = func(name string) bool {
		for _, p := range parts {
			if strings.Contains(name, p) {
				return true
			}
		}
		return arch.Q4WideLayer(name)
	}
	return q
}

// withLevel is q at accuracy level al.
func withLevel(q arch.Quant, al int) arch.Quant {
	q.AccuracyLevel = al
	return q
}

// onlyIn quantizes the default layers whose name contains one of parts.
func onlyIn(parts ...string) func(string, int, int) bool {
	return func(name string, in, out int) bool {
		for _, p := range parts {
			if strings.Contains(name, p) {
				return arch.QuantizesLayer(name, in, out, 0)
			}
		}
		return false
	}
}

// anyLinear quantizes every Linear layer whose input width is a whole number of 16-blocks.
func anyLinear(_ string, in, out int) bool { return in%16 == 0 && in*out >= 4096 }

// modulationOrEdge keeps the modulation layers and the Linear layers outside the blocks at 8 bits.
func modulationOrEdge(name string) bool {
	return arch.ModulationLayer(name) || !arch.QuantizesLayer(name, 1<<20, 1<<20, 0)
}

// wideAlso keeps the modulation layers and those whose name contains one of parts at 8 bits.
func wideAlso(parts ...string) func(string) bool {
	return func(name string) bool {
		for _, p := range parts {
			if strings.Contains(name, p) {
				return true
			}
		}
		return arch.ModulationLayer(name)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }

// spread is max/min − 1 of the rounds: how noisy the measurement was.
func spread(v []float64) float64 { return slices.Max(v)/slices.Min(v) - 1 }
