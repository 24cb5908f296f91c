package vae

import (
	"cmp"
	"context"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rflowrt/rflow/internal/benchutil"
	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/internal/testmodels"
)

// benchFixtureDir is the bench SD3 fixture's vae_decoder folder and its config.
func benchFixtureDir(b testing.TB) (string, Config) {
	b.Helper()
	dir := filepath.Join(testmodels.Cached(b, testmodels.Options{Kind: testmodels.KindSD3, Size: testmodels.SizeBench}), "vae_decoder")
	cfg, err := ReadConfig(dir)
	if err != nil {
		b.Fatal(err)
	}
	return dir, cfg
}

// benchFixtureDecoder loads the bench SD3 fixture's VAE decoder with so (streamed, as LoadDecoder
// does, unless whole).
func benchFixtureDecoder(b testing.TB, so ort.SessionOptions, whole bool) *Decoder {
	b.Helper()
	dir, _ := benchFixtureDir(b)
	return benchDecoder(b, dir, so, whole)
}

// benchDecoder loads the vae_decoder folder dir with so, streamed unless whole, and checks that it
// loaded as asked.
func benchDecoder(tb testing.TB, dir string, so ort.SessionOptions, whole bool) *Decoder {
	tb.Helper()
	cfg, err := ReadConfig(dir)
	if err != nil {
		tb.Fatal(err)
	}
	load := LoadDecoder
	if whole {
		load = LoadWholeDecoder
	}
	d, err := load(context.Background(), filepath.Join(dir, "model.onnx"), so, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if d.Streamed() == whole {
		d.Close()
		tb.Fatalf("%s: whole %t, but the decoder is streamed: %t", dir, whole, d.Streamed())
	}
	return d
}

// BenchmarkDecodeProfile decodes one latent of the bench SD3 fixture (RFLOW_VAE_SIZE pixels a side,
// default 512; RFLOW_THREADS intra-op threads, default 1; streamed, or whole with RFLOW_VAE_WHOLE=1)
// under ORT's profiler and logs the kernel time per operator type:
//
//	RFLOW_VAE_SIZE=1024 go test -run '^$' -bench DecodeProfile -benchtime 1x -v ./vae
func BenchmarkDecodeProfile(b *testing.B) {
	side := benchutil.EnvInt(b, "RFLOW_VAE_SIZE", 512)
	prefix := filepath.Join(b.TempDir(), "vae")
	d := benchFixtureDecoder(b, ort.SessionOptions{IntraOpThreads: benchutil.EnvInt(b, "RFLOW_THREADS", 1), ProfilePrefix: prefix},
		os.Getenv("RFLOW_VAE_WHOLE") == "1")
	h := side / d.cfg.ScaleFactor
	z := benchLatents(d.cfg.LatentChannels * h * h)
	for b.Loop() {
		if _, err := d.Decode(context.Background(), z, 1, h, h); err != nil {
			b.Fatal(err)
		}
	}
	d.Close()
	files, err := filepath.Glob(prefix + "*.json") // the stem's and the strips' (prefix-stripNN_…)
	if err != nil || len(files) == 0 {
		b.Fatalf("no profile: %v", err)
	}
	// a streamed decoder's strip sessions write a profile each: sum them by operator
	byOp := map[string]ort.OpTime{}
	for _, f := range files {
		fops, err := ort.SummarizeProfile(f)
		if err != nil {
			b.Fatal(err)
		}
		for _, op := range fops {
			t := byOp[op.Op]
			t.Op, t.Total, t.Calls = op.Op, t.Total+op.Total, t.Calls+op.Calls
			byOp[op.Op] = t
		}
	}
	ops := slices.SortedFunc(maps.Values(byOp), func(a, b ort.OpTime) int { return cmp.Compare(b.Total, a.Total) })
	var total time.Duration
	for _, op := range ops {
		total += op.Total
	}
	var sb strings.Builder
	for _, op := range ops {
		sb.WriteString("\n  " + op.Op + " " + strconv.FormatInt(op.Total.Milliseconds(), 10) + " ms (" +
			strconv.FormatFloat(100*float64(op.Total)/float64(total), 'f', 1, 64) + " %), " + strconv.Itoa(op.Calls) + " calls")
	}
	b.Logf("%d×%d decode, kernel time %d ms:%s", side, side, total.Milliseconds(), sb.String())
}

// benchLatents are n standard-normal latents (a sampler's output is about that).
func benchLatents(n int) []float32 {
	r := rand.New(rand.NewPCG(1, 2))
	z := make([]float32, n)
	for i := range z {
		z[i] = float32(r.NormFloat64())
	}
	return z
}
