package vae

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rflowrt/rflow/internal/benchutil"
	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/internal/testmodels"
)

// decodePeakChildEnv makes TestDecodePeakChild decode one latent: "side,threads,optlevel,noarena,nopattern,whole,dir".
const decodePeakChildEnv = "RFLOW_DECODE_PEAK_CHILD"

// BenchmarkDecodePeak measures what a decode adds to a process's peak RSS: for each image side in
// RFLOW_VAE_SIZES (default 256,512,768,1024) and each mode in RFLOW_VAE_MODES (default
// "whole,streamed", interleaved) a child process loads the bench SD3 fixture's VAE decoder
// (RFLOW_THREADS threads, default 2) and decodes one latent, and the benchmark logs the peak RSS
// after loading, after the decode, and the difference per output pixel — the figure WholeDecodeBytes
// and StreamedDecodeBytes are fitted to.
//
//	go test -run '^$' -bench DecodePeak -benchtime 1x -v ./vae
//
// RFLOW_VAE_OPT=1 (no NCHWc layout), RFLOW_VAE_NOARENA=1 and RFLOW_VAE_NOPATTERN=1 change the session;
// RFLOW_VAE_REAL=1 decodes with a random-weight VAE of the real SD3/FLUX widths (realSizeVAE) instead.
// Measured at 1024² on a 2-core EPYC (2 threads): +2133 MiB by default, +2124 without the NCHWc
// layout, +1974 without the arena (at 1.8× the CPU time) with or without the memory pattern: the
// whole decode's live tensors, not ORT's allocators, set its peak.
func BenchmarkDecodePeak(b *testing.B) {
	threads := benchutil.EnvInt(b, "RFLOW_THREADS", 2)
	opt := benchutil.EnvInt(b, "RFLOW_VAE_OPT", 0)       // an ortopts.OptLevel: 0 all, 1 extended (no NCHWc layout)
	noArena := os.Getenv("RFLOW_VAE_NOARENA") == "1"     // ORT's CPU arena off
	noPattern := os.Getenv("RFLOW_VAE_NOPATTERN") == "1" // its memory pattern off
	dir, cfg := benchFixtureDir(b)
	if os.Getenv("RFLOW_VAE_REAL") == "1" {
		dir, cfg = realSizeVAE(b)
	}
	modes := strings.Split(cmp.Or(os.Getenv("RFLOW_VAE_MODES"), "whole,streamed"), ",")
	for _, side := range benchutil.EnvInts(b, "RFLOW_VAE_SIZES", []int{256, 512, 768, 1024}) {
		for _, mode := range modes {
			whole := mode == "whole"
			out, _, err := benchutil.RunChild("TestDecodePeakChild", fmt.Sprintf("%s=%d,%d,%d,%t,%t,%t,%s", decodePeakChildEnv, side, threads, opt, noArena, noPattern, whole, dir))
			if err != nil {
				b.Fatalf("%d²: %v", side, err)
			}
			var loaded, peak, cpuMS, wallMS float64
			if _, err := fmt.Sscanf(lastLine(out, "decode-peak "), "decode-peak %g %g %g %g", &loaded, &peak, &cpuMS, &wallMS); err != nil {
				b.Fatalf("%d²: %v in %q", side, err, out)
			}
			px := float64(side * side)
			est := cfg.WholeDecodeBytes(1, side, side)
			if !whole {
				est = cfg.StreamedDecodeBytes(1, side, side)
			}
			b.Logf("%5d² %-8s: peak after load %6.0f MiB, after decode %6.0f MiB: +%6.0f MiB = %5.0f bytes/pixel (estimate %5.0f); decode %5.0f ms CPU, %5.0f ms wall",
				side, mode, loaded, peak, peak-loaded, (peak-loaded)*(1<<20)/px, float64(est)/px, cpuMS, wallMS)
		}
	}
	for b.Loop() {
	}
}

// lastLine is the last line of out that starts with prefix.
func lastLine(out, prefix string) string {
	line := ""
	for l := range strings.Lines(out) {
		if strings.HasPrefix(l, prefix) {
			line = strings.TrimSpace(l)
		}
	}
	return line
}

// TestDecodePeakChild is BenchmarkDecodePeak's child process.
func TestDecodePeakChild(t *testing.T) {
	spec := os.Getenv(decodePeakChildEnv)
	if spec == "" {
		t.Skip("run by BenchmarkDecodePeak")
	}
	var side, threads, opt int
	var noArena, noPattern, whole bool
	f := strings.SplitN(spec, ",", 7)
	if len(f) != 7 {
		t.Fatalf("%s=%q: want side,threads,opt,noarena,nopattern,whole,dir", decodePeakChildEnv, spec)
	}
	if _, err := fmt.Sscanf(strings.Join(f[:6], " "), "%d %d %d %t %t %t", &side, &threads, &opt, &noArena, &noPattern, &whole); err != nil {
		t.Fatal(err)
	}
	d := benchDecoder(t, f[6], ort.SessionOptions{IntraOpThreads: threads, OptLevel: ort.OptLevel(opt), NoArena: noArena, LowMem: noPattern}, whole)
	defer d.Close()
	loaded, err := benchutil.StatusMiB("VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	h := side / d.cfg.ScaleFactor
	z := benchLatents(d.cfg.LatentChannels * h * h)
	start, wall := benchutil.CPUTime(), time.Now()
	if _, err := d.Decode(context.Background(), z, 1, h, h); err != nil {
		t.Fatal(err)
	}
	cpu, elapsed := benchutil.CPUTime()-start, time.Since(wall)
	peak, err := benchutil.StatusMiB("VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("decode-peak", strconv.FormatFloat(loaded, 'f', 1, 64), strconv.FormatFloat(peak, 'f', 1, 64), cpu.Milliseconds(), elapsed.Milliseconds())
}

// realSizeVAE writes a vae_decoder folder with the real SD3/FLUX AutoencoderKL layout (block_out_channels
// [128, 256, 512, 512], two ResNets per block, 32 groups; 49M random weights) and returns it.
func realSizeVAE(b *testing.B) (string, Config) {
	b.Helper()
	m, err := testmodels.VAEDecoder(testmodels.VAEConfig{LatentChannels: 16, BlockOut: []int{128, 256, 512, 512},
		LayersPerBlock: 2, NormGroups: 32})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	if err := m.WriteFile(filepath.Join(dir, "model.onnx"), onnx.WriteOptions{}); err != nil {
		b.Fatal(err)
	}
	types := func(t string) []string { return []string{t, t, t, t} }
	conf, err := json.Marshal(map[string]any{
		"_class_name": "AutoencoderKL", "in_channels": 3, "out_channels": 3, "latent_channels": 16,
		"block_out_channels": []int{128, 256, 512, 512}, "layers_per_block": 2, "norm_num_groups": 32,
		"act_fn": "silu", "down_block_types": types("DownEncoderBlock2D"), "up_block_types": types("UpDecoderBlock2D"),
		"mid_block_add_attention": true, "use_quant_conv": false, "use_post_quant_conv": false,
		"scaling_factor": 1.5305, "shift_factor": 0.0609, "sample_size": 1024,
	})
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "config.json"), conf, 0o644)
	}
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := ReadConfig(dir)
	if err != nil {
		b.Fatal(err)
	}
	return dir, cfg
}
