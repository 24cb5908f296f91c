package vae

import (
	"context"
	"math/rand/v2"
	"path/filepath"
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

// benchFixtureDecoder loads the bench SD3 fixture's VAE decoder with so.
func benchFixtureDecoder(b testing.TB, so ort.SessionOptions) *Decoder {
	b.Helper()
	dir, cfg := benchFixtureDir(b)
	d, err := LoadDecoder(context.Background(), filepath.Join(dir, "model.onnx"), so, cfg)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkDecodeProfile decodes one latent of the bench SD3 fixture (RFLOW_VAE_SIZE pixels a side,
// default 512; RFLOW_THREADS intra-op threads, default 1) under ORT's profiler and logs the kernel time
// per operator type:
//
//	RFLOW_VAE_SIZE=1024 go test -run '^$' -bench DecodeProfile -benchtime 1x -v ./vae
func BenchmarkDecodeProfile(b *testing.B) {
	side := benchutil.EnvInt(b, "RFLOW_VAE_SIZE", 512)
	prefix := filepath.Join(b.TempDir(), "vae")
	d := benchFixtureDecoder(b, ort.SessionOptions{IntraOpThreads: benchutil.EnvInt(b, "RFLOW_THREADS", 1), ProfilePrefix: prefix})
	h := side / d.cfg.ScaleFactor
	z := benchLatents(d.cfg.LatentChannels * h * h)
	for b.Loop() {
		if _, err := d.Decode(context.Background(), z, 1, h, h); err != nil {
			b.Fatal(err)
		}
	}
	d.Close()
	files, err := ort.ProfileFiles(prefix)
	if err != nil || len(files) == 0 {
		b.Fatalf("no profile: %v", err)
	}
	ops, err := ort.SummarizeProfile(files[0])
	if err != nil {
		b.Fatal(err)
	}
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
