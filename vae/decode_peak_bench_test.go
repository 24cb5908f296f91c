package vae

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/benchutil"
	"github.com/rflowrt/rflow/internal/ort"
)

// decodePeakChildEnv makes TestDecodePeakChild decode one latent: "side,threads,optlevel,noarena,nopattern,whole".
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
// RFLOW_VAE_OPT=1 (no NCHWc layout), RFLOW_VAE_NOARENA=1 and RFLOW_VAE_NOPATTERN=1 change the session.
// Measured at 1024² on a 2-core EPYC (2 threads): +2133 MiB by default, +2124 without the NCHWc
// layout, +1974 without the arena (at 1.8× the CPU time) with or without the memory pattern: the
// whole decode's live tensors, not ORT's allocators, set its peak.
func BenchmarkDecodePeak(b *testing.B) {
	threads := benchutil.EnvInt(b, "RFLOW_THREADS", 2)
	opt := benchutil.EnvInt(b, "RFLOW_VAE_OPT", 0)       // an ortopts.OptLevel: 0 all, 1 extended (no NCHWc layout)
	noArena := os.Getenv("RFLOW_VAE_NOARENA") == "1"     // ORT's CPU arena off
	noPattern := os.Getenv("RFLOW_VAE_NOPATTERN") == "1" // its memory pattern off
	_, cfg := benchFixtureDir(b)
	modes := strings.Split(cmp.Or(os.Getenv("RFLOW_VAE_MODES"), "whole,streamed"), ",")
	for _, side := range benchutil.EnvInts(b, "RFLOW_VAE_SIZES", []int{256, 512, 768, 1024}) {
		for _, mode := range modes {
			whole := mode == "whole"
			out, _, err := benchutil.RunChild("TestDecodePeakChild", fmt.Sprintf("%s=%d,%d,%d,%t,%t,%t", decodePeakChildEnv, side, threads, opt, noArena, noPattern, whole))
			if err != nil {
				b.Fatalf("%d²: %v", side, err)
			}
			var loaded, peak, cpuMS float64
			if _, err := fmt.Sscanf(lastLine(out, "decode-peak "), "decode-peak %g %g %g", &loaded, &peak, &cpuMS); err != nil {
				b.Fatalf("%d²: %v in %q", side, err, out)
			}
			px := float64(side * side)
			est := cfg.WholeDecodeBytes(1, side, side)
			if !whole {
				est = cfg.StreamedDecodeBytes(1, side, side)
			}
			b.Logf("%5d² %-8s: peak after load %6.0f MiB, after decode %6.0f MiB: +%6.0f MiB = %5.0f bytes/pixel (estimate %5.0f); decode %5.0f ms CPU",
				side, mode, loaded, peak, peak-loaded, (peak-loaded)*(1<<20)/px, float64(est)/px, cpuMS)
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
	if _, err := fmt.Sscanf(spec, "%d,%d,%d,%t,%t,%t", &side, &threads, &opt, &noArena, &noPattern, &whole); err != nil {
		t.Fatal(err)
	}
	d := benchFixtureDecoder(t, ort.SessionOptions{IntraOpThreads: threads, OptLevel: ort.OptLevel(opt), NoArena: noArena, LowMem: noPattern}, whole)
	if whole != (d.s == nil) {
		t.Fatalf("whole %t, but the decoder is streamed: %t", whole, d.s != nil)
	}
	defer d.Close()
	loaded, err := benchutil.StatusMiB("VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	h := side / d.cfg.ScaleFactor
	z := benchLatents(d.cfg.LatentChannels * h * h)
	start := benchutil.CPUTime()
	if _, err := d.Decode(context.Background(), z, 1, h, h); err != nil {
		t.Fatal(err)
	}
	cpu := benchutil.CPUTime() - start
	peak, err := benchutil.StatusMiB("VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("decode-peak", strconv.FormatFloat(loaded, 'f', 1, 64), strconv.FormatFloat(peak, 'f', 1, 64), cpu.Milliseconds())
}
