package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/rflowrt/rflow/internal/benchutil"
	"github.com/rflowrt/rflow/internal/ort/orttest"
)

// BenchmarkBatchVsProcesses compares images per second of one `rflow batch` process over a manifest
// with one `rflow txt2img` process per image (the loop a shell script would run), on the embedded
// demo at its default 256×256 and 28 steps. The binary is built once. RFLOW_BENCH_IMAGES sets the
// image count (default 8) and RFLOW_BENCH_BATCH_SIZE the batch's --batch-size (default 1).
func BenchmarkBatchVsProcesses(b *testing.B) {
	lib := orttest.Library()
	if lib == "" {
		b.Skip("no ONNX Runtime library: run make setup")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		b.Skip("no go tool to build rflow")
	}
	bin := filepath.Join(b.TempDir(), "rflow")
	if msg, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v: %s", err, msg)
	}
	images, batchSize := benchutil.EnvInt(b, "RFLOW_BENCH_IMAGES", 8), benchutil.EnvInt(b, "RFLOW_BENCH_BATCH_SIZE", 1)
	prompts := []string{"a green star on a black background", "a red circle", "a white ring on a purple background", "stripes"}
	manifest := filepath.Join(b.TempDir(), "m.txt")
	var text string
	for i := range images {
		text += prompts[i%len(prompts)] + "\n"
	}
	if err := os.WriteFile(manifest, []byte(text), 0o644); err != nil {
		b.Fatal(err)
	}
	run := func(args ...string) {
		if msg, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			b.Fatalf("%v: %v: %s", args, err, msg)
		}
	}
	var tBatch, tProc time.Duration
	b.ResetTimer()
	for b.Loop() {
		out := b.TempDir()
		start := time.Now()
		run("batch", "--ort-lib", lib, "--manifest", manifest, "--out", out, "--batch-size", fmt.Sprint(batchSize), "-q")
		tBatch += time.Since(start)
		start = time.Now()
		for i := range images {
			run("txt2img", "--ort-lib", lib, "-p", prompts[i%len(prompts)], "-s", fmt.Sprint(i), "-q",
				"-o", filepath.Join(out, fmt.Sprintf("p%d.png", i)))
		}
		tProc += time.Since(start)
	}
	n := float64(b.N * images)
	b.ReportMetric(n/tBatch.Seconds(), "batch_img/s")
	b.ReportMetric(n/tProc.Seconds(), "procs_img/s")
	b.ReportMetric(tProc.Seconds()/tBatch.Seconds(), "speedup")
}
