package compiler_test

import (
	"context"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rflowrt/rflow/compare"
	"github.com/rflowrt/rflow/internal/benchutil"
	"github.com/rflowrt/rflow/internal/compiler"
	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/internal/testmodels"
	"github.com/rflowrt/rflow/pipeline"
)

// BenchmarkQuant compiles the bench SD3 checkpoint (testmodels.WriteCheckpoint, SizeBench) with each
// transformer weight kind — fp32, int8, q8, q4; text encoders and VAE fp32 — and measures, in one run:
//
//		go test -run '^$' -bench Quant -benchtime 1x -timeout 60m ./internal/compiler
//
//	  - the transformer's size on disk (model.onnx + external data);
//	  - its time per step at 512² with CFG (batch 2: 1024 image tokens, 333 text tokens; 2 ORT threads,
//	    no spinning), the kinds interleaved over RFLOW_QUANT_ROUNDS rounds (default 3) so that a loaded
//	    machine slows each alike — the median, the spread (max/min − 1, the noise) and the ratio to fp32;
//	  - its output's SNR against fp32 on the same random inputs;
//	  - the final image's PSNR against fp32's (txt2img 512², RFLOW_QUANT_STEPS steps (default 4), CFG 7,
//	    the same seed), and the final latents' SNR.
//
// RFLOW_QUANT_KIND=flux-dev measures FLUX instead (no standalone step timing: the pipeline's transformer
// time per step, not interleaved); RFLOW_QUANT_KINDS (e.g. "fp32,q4") narrows the weight kinds.
func BenchmarkQuant(b *testing.B) {
	needORT(b)
	ctx := context.Background()
	family := testmodels.KindSD3
	if s := os.Getenv("RFLOW_QUANT_KIND"); s != "" {
		k, err := testmodels.ParseKind(s)
		if err != nil {
			b.Fatal(err)
		}
		family = k
	}
	kinds := []string{"fp32", "int8", "q8", "q4"}
	if s := os.Getenv("RFLOW_QUANT_KINDS"); s != "" {
		kinds = slices.DeleteFunc(splitComma(s), func(k string) bool { return k == "fp32" })
		kinds = append([]string{"fp32"}, kinds...)
	}
	rounds, steps := benchutil.EnvInt(b, "RFLOW_QUANT_ROUNDS", 3), benchutil.EnvInt(b, "RFLOW_QUANT_STEPS", 4)
	root := b.TempDir()
	ckpt := filepath.Join(root, "checkpoint")
	start := time.Now()
	if err := testmodels.WriteCheckpoint(ckpt, testmodels.Options{Kind: family, Size: testmodels.SizeBench, ExternalData: true}); err != nil {
		b.Fatal(err)
	}
	progress("checkpoint written in %.1f s", time.Since(start).Seconds())

	type result struct {
		dir                 string
		compileS, sizeMB    float64
		times, cpus         []float64
		stepSNR             float64
		psnr, latSNR, pipMS float64
	}
	res := make([]*result, len(kinds))
	for i, k := range kinds {
		c, err := compiler.Open(compiler.Source{Model: ckpt})
		if err != nil {
			b.Fatal(err)
		}
		r := &result{dir: filepath.Join(root, k)}
		start := time.Now()
		err = compiler.Write(ctx, c, r.dir, compiler.Options{Weights: k})
		c.Close()
		if err != nil {
			b.Fatal(err)
		}
		r.compileS = time.Since(start).Seconds()
		r.sizeMB = float64(fileSize(b, r.dir, "transformer", "model.onnx")+fileSize(b, r.dir, "transformer", "model.onnx_data")) / 1e6
		res[i] = r
		progress("compiled %s in %.1f s: transformer %.1f MB", k, r.compileS, r.sizeMB)
	}

	if !family.IsFlux() {
		sts := make([]*sd3Step, len(kinds))
		for i, r := range res {
			sts[i] = newSD3Step(b, filepath.Join(r.dir, "transformer", "model.onnx"))
			sts[i].run(b) // warm-up
		}
		var ref []float32
		for round := range rounds {
			for i, st := range sts {
				d, c, y := st.run(b)
				res[i].times = append(res[i].times, ms(d))
				res[i].cpus = append(res[i].cpus, ms(c))
				if i == 0 {
					ref = y
				}
				res[i].stepSNR = benchutil.SNRdB(y, ref)
				progress("round %d %s: %.0f ms wall, %.0f ms CPU", round, kinds[i], ms(d), ms(c))
			}
		}
		for _, st := range sts {
			st.close()
		}
	}

	var refImg *image.NRGBA
	var refLat []float32
	for i, r := range res {
		m, err := pipeline.Open(r.dir)
		if err != nil {
			b.Fatal(err)
		}
		p := pipeline.New(m, pipeline.Options{Session: ort.SessionOptions{IntraOpThreads: 2, NoSpinning: true}})
		out, err := p.Generate(ctx, pipeline.Request{Prompt: "a lighthouse on a cliff at dawn, oil painting",
			Width: 512, Height: 512, Steps: steps, Seed: 42}, nil)
		p.Close()
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			refImg, refLat = out.Images[0], out.Latents
		}
		if r.psnr, err = compare.PSNR(out.Images[0], refImg); err != nil {
			b.Fatal(err)
		}
		r.latSNR = benchutil.SNRdB(out.Latents, refLat)
		r.pipMS = float64(out.Timings.Transformer.Microseconds()) / 1e3 / float64(out.Timings.Steps)
		progress("generated %s: transformer %.0f ms/step, decode %.1f s, PSNR %.1f dB", kinds[i], r.pipMS, out.Timings.Decode.Seconds(), r.psnr)
	}

	b.Logf("%s bench, 512², %d steps, %d interleaved timing rounds", family, steps, rounds)
	b.Logf("%-5s %8s %7s %6s %8s %7s %6s %7s %6s %8s %8s %8s %8s", "kind", "wall ms", "spread", "×fp32", "CPU ms", "spread", "×fp32",
		"MB", "×fp32", "step SNR", "lat SNR", "img PSNR", "pipe ms")
	base := res[0]
	for i, r := range res {
		w, ws, wr, c, cs, cr := math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN()
		if len(r.times) > 0 {
			w, ws, wr = benchutil.Median(r.times), spread(r.times), benchutil.Median(r.times)/benchutil.Median(base.times)
			c, cs, cr = benchutil.Median(r.cpus), spread(r.cpus), benchutil.Median(r.cpus)/benchutil.Median(base.cpus)
		}
		b.Logf("%-5s %8.0f %6.0f%% %6.2f %8.0f %6.0f%% %6.2f %7.1f %6.2f %8.1f %8.1f %8.1f %8.0f", kinds[i], w, 100*ws, wr, c, 100*cs, cr,
			r.sizeMB, r.sizeMB/base.sizeMB, r.stepSNR, r.latSNR, r.psnr, r.pipMS)
		if i > 0 {
			b.ReportMetric(cr, kinds[i]+"-cpu-x")
			b.ReportMetric(wr, kinds[i]+"-wall-x")
			b.ReportMetric(r.sizeMB/base.sizeMB, kinds[i]+"-size-x")
			b.ReportMetric(r.psnr, kinds[i]+"-PSNR-dB")
		}
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }

// spread is max/min − 1 of the rounds: how noisy the measurement was.
func spread(v []float64) float64 { return slices.Max(v)/slices.Min(v) - 1 }

// sd3Step is one run of a compiled SD3 transformer at 512² with CFG on fixed random inputs.
type sd3Step struct {
	s   *ort.Session
	ins []*ort.Tensor
	out *ort.Tensor
}

func newSD3Step(b *testing.B, path string) *sd3Step {
	b.Helper()
	s, err := ort.NewSession(context.Background(), path, ort.SessionOptions{IntraOpThreads: 2, NoSpinning: true})
	if err != nil {
		b.Fatal(err)
	}
	st := &sd3Step{s: s}
	rng := rand.New(rand.NewPCG(11, 12))
	shapes := map[string][]int64{"hidden_states": {2, 16, 64, 64}, "encoder_hidden_states": {2, 333, 4096},
		"pooled_projections": {2, 2048}, "timestep": {2}, "skip_layers": {1}}
	for _, info := range s.Inputs() {
		shape := shapes[info.Name]
		for i, d := range info.Shape {
			if d > 0 && i < len(shape) {
				shape[i] = d // widths from the model (the fixture's text width is its T5's)
			}
		}
		x, err := s.NewInput(info.Name, shape...)
		if err != nil {
			b.Fatal(err)
		}
		if info.Name == "skip_layers" {
			x.Int64s()[0] = -1 // no block skipped (the pipeline's value outside skip-layer passes)
			st.ins = append(st.ins, x)
			continue
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
	if st.out, err = s.NewOutput(s.Outputs()[0].Name, 2, 16, 64, 64); err != nil {
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

func fileSize(b *testing.B, parts ...string) int64 {
	st, err := os.Stat(filepath.Join(parts...))
	if err != nil {
		return 0
	}
	return st.Size()
}

func splitComma(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != ',' {
			i++
		}
		if i > 0 {
			out = append(out, s[:i])
		}
		s = s[min(i+1, len(s)):]
	}
	return out
}

// progress prints a line to stderr while a long benchmark runs.
func progress(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "quant: "+format+"\n", a...)
}
