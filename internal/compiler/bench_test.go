package compiler_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/internal/ort/orttest"
	"github.com/rflowrt/rflow/internal/testmodels"
	"github.com/rflowrt/rflow/pipeline"
)

// BenchmarkCheckpoint measures a checkpoint as people download it against the same weights as an ONNX
// export (issue 11 item 7), on a FLUX.1-dev model whose transformer has ~550M parameters (testmodels
// SizeLarge: 1.1 GB of bf16 weights, 2.2 GB compiled to fp32; the bench-size text encoders and VAE):
//
//	go test -run '^$' -bench Checkpoint -benchtime 1x -timeout 60m ./internal/compiler
//
// Metrics: conversion (open + compile into a fresh folder, in a child process) seconds and peak RSS;
// start-up of pipeline.OpenCheckpoint the first time (open + compile into the cache) and the second time
// (open from the cache); generation peak RSS of `rflow txt2img` (1 step, 64×64, T5 cut to 64 tokens;
// /usr/bin/time's maximum resident set) on the compiled model and on the ONNX export (each run twice:
// the export's first run also writes ORT's optimized-graph cache); and session creation of the compiled
// transformer without ORT's optimized-graph cache vs with it (first run writing the cache, second
// loading it), with the cache entry's size — the second copy of the weights compiled models avoid.
// Everything lives in the benchmark's temporary folder (about 12 GB at the peak), removed at the end.
func BenchmarkCheckpoint(b *testing.B) {
	needORT(b)
	if testing.Short() {
		b.Skip("-short")
	}
	ctx := context.Background()
	root := b.TempDir()
	o := testmodels.Options{Kind: testmodels.KindFluxDev, Size: testmodels.SizeLarge, BF16Weights: true, ExternalData: true}
	if s := os.Getenv("RFLOW_BENCH_SIZE"); s != "" {
		o.Size = testmodels.Size(s) // a quick dry run: RFLOW_BENCH_SIZE=bench
	}
	ckpt, export := filepath.Join(root, "checkpoint"), filepath.Join(root, "export")
	start := time.Now()
	if err := testmodels.WriteCheckpoint(ckpt, o); err != nil {
		b.Fatal(err)
	}
	b.Logf("checkpoint: %s in %.1f s", humanBytes(folderBytes(b, ckpt, ".safetensors")), time.Since(start).Seconds())
	b.ReportMetric(float64(folderBytes(b, ckpt, ".safetensors"))/1e9, "ckpt-GB")
	start = time.Now()
	if err := testmodels.Write(export, o); err != nil {
		b.Fatal(err)
	}
	b.Logf("ONNX export of the same weights: %s in %.1f s", humanBytes(folderBytes(b, export, "")), time.Since(start).Seconds())

	for range b.N {
		// Conversion in a child process: time and peak RSS of the compiler alone.
		converted := filepath.Join(root, "converted")
		rep := convertInChild(b, ckpt, converted)
		largest, total := largestTensor(b, ckpt)
		b.Logf("conversion: %.1f s, peak RSS %s (largest tensor %s as float32, model %s as float32), output %s",
			rep.Seconds, humanBytes(rep.PeakKB<<10), humanBytes(largest), humanBytes(total), humanBytes(folderBytes(b, converted, "")))
		b.ReportMetric(rep.Seconds, "convert-s")
		b.ReportMetric(float64(rep.PeakKB)/1024, "convert-peak-MiB")
		os.RemoveAll(converted)

		// Start-up: first (open + compile into the cache) and cached (open from the cache).
		xdg := filepath.Join(root, "xdg")
		cacheRoot := filepath.Join(xdg, "rflow", "compiled")
		var compiled string
		for i, name := range []string{"first-startup-s", "cached-startup-s"} {
			start := time.Now()
			m, err := pipeline.OpenCheckpoint(ctx, pipeline.CheckpointSource{Model: ckpt}, pipeline.CompileOptions{CacheDir: cacheRoot})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(time.Since(start).Seconds(), name)
			_, _ = i, m
		}
		ents, err := os.ReadDir(cacheRoot)
		if err != nil || len(ents) != 1 {
			b.Fatalf("compiled cache: %v %v", ents, err)
		}
		compiled = filepath.Join(cacheRoot, ents[0].Name())

		// Generation peak RSS: the compiled model (from the cache above) vs the ONNX export.
		if bin := buildRflow(b, root); bin != "" {
			for _, run := range []struct{ name, model string }{
				{"", ckpt}, {"compiled", ckpt}, {"export-first", export}, {"export", export},
			} {
				kb, secs := txt2img(b, bin, xdg, run.model, filepath.Join(root, "out.png"))
				if run.name != "" && kb > 0 {
					b.ReportMetric(float64(kb)/1024, "gen-peak-"+run.name+"-MiB")
					b.ReportMetric(secs, "gen-wall-"+run.name+"-s")
				}
			}
			os.RemoveAll(filepath.Join(xdg, "rflow", "ort-cache"))
		}

		// Session creation of the compiled transformer without and with ORT's optimized-graph cache.
		model := filepath.Join(compiled, "transformer", "model.onnx")
		ortCache := filepath.Join(root, "ort-cache")
		for _, run := range []struct {
			metric string
			cache  string
		}{{"session-nocache-s", ""}, {"session-cache-write-s", ortCache}, {"session-cache-read-s", ortCache}} {
			start := time.Now()
			s, err := ort.NewSession(ctx, model, ort.SessionOptions{CacheDir: run.cache})
			if err != nil {
				b.Fatal(err)
			}
			secs := time.Since(start).Seconds()
			fromCache := s.FromCache()
			s.Close()
			runtime.GC()
			b.ReportMetric(secs, run.metric)
			if run.cache != "" {
				hit := map[bool]float64{false: 0, true: 1}[fromCache]
				b.ReportMetric(hit, strings.TrimSuffix(run.metric, "-s")+"-hit")
			}
		}
		size := folderBytes(b, ortCache, "")
		b.ReportMetric(float64(size)/1e9, "ort-cache-GB")
		b.Logf("ORT optimized-graph cache entry: %s (the compiled transformer's weights: %s)", humanBytes(size),
			humanBytes(folderBytes(b, filepath.Join(compiled, "transformer"), "")))
		os.RemoveAll(ortCache)
	}
}

// buildRflow builds cmd/rflow into dir; "" (and a log line) when /usr/bin/time, which measures the
// runs' peak RSS, is missing.
func buildRflow(b *testing.B, dir string) string {
	b.Helper()
	if _, err := os.Stat("/usr/bin/time"); err != nil {
		b.Log("no /usr/bin/time: generation peak RSS not measured (a Go-started child's rusage includes the parent's peak)")
		return ""
	}
	bin := filepath.Join(dir, "rflow")
	cmd := exec.Command("go", "build", "-o", bin, "../../cmd/rflow")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("build rflow: %v", err)
	}
	return bin
}

// txt2img runs one small generation with the rflow binary under /usr/bin/time and returns its peak
// RSS in KiB and its wall time.
func txt2img(b *testing.B, bin, xdg, model, out string) (int64, float64) {
	b.Helper()
	cmd := exec.Command("/usr/bin/time", "-f", "maxrss-kb=%M", bin, "txt2img", "-m", model, "-p", "a red fox in the snow",
		"-W", "64", "-H", "64", "--steps", "1", "--max-sequence-length", "64", "--seed", "1", "-o", out, "--overwrite", "-q")
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+xdg, ort.LibraryEnv+"="+orttest.Library())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("rflow txt2img -m %s: %v\n%s", model, err, stderr.String())
	}
	secs := time.Since(start).Seconds()
	for _, line := range strings.Split(stderr.String(), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "maxrss-kb="); ok {
			kb, _ := strconv.ParseInt(v, 10, 64)
			return kb, secs
		}
	}
	b.Logf("no maxrss in %q", stderr.String())
	return 0, secs
}

// folderBytes is the size of the files under dir whose names end in suffix ("" for all).
func folderBytes(tb testing.TB, dir, suffix string) int64 {
	tb.Helper()
	var n int64
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasSuffix(p, suffix) {
			if info, err := e.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d KiB", n>>10)
}
