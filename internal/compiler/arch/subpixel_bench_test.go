package arch

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/benchutil"
	"github.com/rflowrt/rflow/internal/ort"
)

// benchVAEConfig is testmodels.BenchVAE (the SD3 bench fixture's VAE): widths 64, 128, 256, 256, two
// ResNets per encoder block (three per decoder block), 32 groups, 16 latent channels, no quant convs.
func benchVAEConfig() Config {
	blocks := func(t string) []any { return []any{t, t, t, t} }
	return Config{"latent_channels": 16.0, "in_channels": 3.0, "out_channels": 3.0,
		"block_out_channels": []any{64.0, 128.0, 256.0, 256.0}, "layers_per_block": 2.0, "norm_num_groups": 32.0,
		"down_block_types": blocks("DownEncoderBlock2D"), "up_block_types": blocks("UpDecoderBlock2D"),
		"use_quant_conv": false, "use_post_quant_conv": false}
}

// subPixelChildEnv makes TestSubPixelBenchChild run one decode: "model-path,pixels,threads,output-path".
const subPixelChildEnv = "RFLOW_SUBPIXEL_BENCH_CHILD"

// BenchmarkSubPixelVAE decodes one latent with the SD3 bench fixture's VAE decoder (fused attention)
// built with Resize + 3×3 conv upsamplers and with sub-pixel ones, the same weights, each decode a
// cold Run in its own child process (as a CLI decode is) on RFLOW_BENCH_THREADS threads (default 1).
// It reports CPU ms of the Run, the child's peak RSS (peak-MiB, loading included) and the Run's own
// (run-peak-MiB), and logs the largest |Δ| between the two forms' images. The forms alternate within
// each of RFLOW_BENCH_ROUNDS rounds (default 1), the order turning each round; RFLOW_BENCH_SIZES
// picks the sizes (default 512,1024; a 1024² decode is about 40 s of CPU):
//
//	go test -run '^$' -bench SubPixelVAE -benchtime 1x -v ./internal/compiler/arch/
//
// Measured on the shared 2-core CI machine, one thread, medians of 4 and 3 interleaved rounds: 512²
// 12.2 → 10.6 s CPU (rounds 10.8–13.8 s against 10.5–10.8 s), 1024² 54.6 → 49.7 s; run peak RSS
// 667 → 686 MiB and 2263 → 2281 MiB, a constant +18 MiB from the larger folded weights; images
// within 3e-6.
func BenchmarkSubPixelVAE(b *testing.B) {
	sizes := benchutil.EnvInts(b, "RFLOW_BENCH_SIZES", []int{512, 1024})
	rounds, threads := benchutil.EnvInt(b, "RFLOW_BENCH_ROUNDS", 1), benchutil.EnvInt(b, "RFLOW_BENCH_THREADS", 1)
	forms := []string{"resize", "subpixel"}
	dir := b.TempDir()
	paths := map[string]string{}
	for _, form := range forms {
		m, err := vaeDecoder(benchWeights{}, benchVAEConfig(), IO{}, form == "resize")
		if err != nil {
			b.Fatal(err)
		}
		data, err := m.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		paths[form] = filepath.Join(dir, form+".onnx")
		if err := os.WriteFile(paths[form], data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	type key struct {
		form string
		px   int
	}
	res := map[key][]childResult{}
	images := map[key][]float32{}
	for r := range rounds {
		for _, px := range sizes {
			for i := range forms {
				k := key{forms[(i+r)%len(forms)], px}
				img := filepath.Join(dir, fmt.Sprintf("%s-%d.f32", k.form, px))
				out, peak, err := benchutil.RunChild("TestSubPixelBenchChild",
					fmt.Sprintf("%s=%s,%d,%d,%s", subPixelChildEnv, paths[k.form], px, threads, img))
				if err != nil {
					b.Fatal(err)
				}
				c := childResult{peak: peak}
				_, rest, ok := strings.Cut(out, "subpixel-bench-cpu-ms=")
				if !ok {
					b.Fatalf("no result in the child's output:\n%s", out)
				}
				if _, err := fmt.Sscanf(rest, "%g run-peak-MiB=%g", &c.cpuMS, &c.runPeak); err != nil {
					b.Fatalf("child's result %q: %v", rest, err)
				}
				res[k] = append(res[k], c)
				if images[k], err = readFloats(img); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	for _, px := range sizes {
		a, s := images[key{"resize", px}], images[key{"subpixel", px}]
		var d, m float64
		for i := range a {
			d, m = max(d, math.Abs(float64(a[i]-s[i]))), max(m, math.Abs(float64(a[i])))
		}
		b.Logf("%d²: max |Δ| %.3g between the forms' images (max |pixel| %.3g)", px, d, m)
		for _, form := range forms {
			b.Run(fmt.Sprintf("%s/%dpx/%dthreads", form, px, threads), func(b *testing.B) {
				var cpu []float64
				var peak, runPeak float64
				for _, r := range res[key{form, px}] {
					cpu = append(cpu, r.cpuMS)
					peak, runPeak = max(peak, r.peak), max(runPeak, r.runPeak)
				}
				b.Logf("CPU ms per round: %.0f", cpu) // the spread says how noisy the machine was
				b.ReportMetric(benchutil.Median(cpu), "cpu-ms/run")
				b.ReportMetric(peak, "peak-MiB")
				b.ReportMetric(runPeak, "run-peak-MiB")
			})
		}
	}
}

// TestSubPixelBenchChild is BenchmarkSubPixelVAE's child process; it skips unless subPixelChildEnv
// is set.
func TestSubPixelBenchChild(t *testing.T) {
	spec := os.Getenv(subPixelChildEnv)
	if spec == "" {
		t.Skip("runs only as BenchmarkSubPixelVAE's child process")
	}
	f := strings.Split(spec, ",")
	if len(f) != 4 {
		t.Fatalf("%s=%q: want model,pixels,threads,output", subPixelChildEnv, spec)
	}
	px, _ := strconv.Atoi(f[1])
	threads, _ := strconv.Atoi(f[2])
	ctx := context.Background()
	s, err := ort.NewSession(ctx, f[0], ort.SessionOptions{IntraOpThreads: threads, NoSpinning: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	lat := int64(px / 8)
	x, err := s.NewInput("latent_sample", 1, 16, lat, lat)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Destroy()
	rng := rand.New(rand.NewPCG(2, 3))
	z := make([]float32, x.Len())
	for i := range z {
		z[i] = float32(rng.NormFloat64())
	}
	if err := x.SetFloat32(z); err != nil {
		t.Fatal(err)
	}
	out, err := s.NewOutput("sample", 1, 3, int64(px), int64(px))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Destroy()
	// from here on VmHWM is the peak of the Run alone
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatal(err)
	}
	cpu0 := benchutil.CPUMillis()
	if err := s.Run(ctx, []*ort.Tensor{x}, []*ort.Tensor{out}); err != nil {
		t.Fatal(err)
	}
	cpu := benchutil.CPUMillis() - cpu0
	hwm, err := benchutil.StatusMiB("VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float32, out.Len())
	if err := out.ReadFloat32(v); err != nil {
		t.Fatal(err)
	}
	if err := writeFloatFile(f[3], v); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("subpixel-bench-cpu-ms=%.1f run-peak-MiB=%.1f\n", cpu, hwm)
}

func writeFloatFile(path string, v []float32) error {
	buf := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
	}
	return os.WriteFile(path, buf, 0o644)
}

func readFloats(path string) ([]float32, error) {
	buf, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	v := make([]float32, len(buf)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:]))
	}
	return v, nil
}
