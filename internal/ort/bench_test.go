package ort_test

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/internal/ort/orttest"
)

// tinyModel is y = 2x + 1 on float32[1,16]: a Run that is all overhead.
func tinyModel(tb testing.TB) []byte {
	b := onnx.NewBuilder("tiny", 17)
	x := b.Input("x", onnx.Float, onnx.Fixed(1), onnx.Fixed(16))
	two := b.Initializer(onnx.Float32Tensor("two", []int64{1}, []float32{2}))
	one := b.Initializer(onnx.Float32Tensor("one", []int64{1}, []float32{1}))
	b.Output(b.Op("Add", []string{b.Op("Mul", []string{x, two}), one}), "y", onnx.Float, onnx.Fixed(1), onnx.Fixed(16))
	return marshal(tb, b.Model())
}

// BenchmarkRunOverhead compares a Run through this layer with a Run through bare onnxruntime_go on
// the same model and pre-allocated tensors. The difference is the layer's per-Run cost.
func BenchmarkRunOverhead(b *testing.B) {
	data := tinyModel(b)
	b.Run("bare-onnxruntime_go", func(b *testing.B) {
		so, _ := ortgo.NewSessionOptions()
		defer so.Destroy()
		_ = so.SetIntraOpNumThreads(1)
		_ = so.AddSessionConfigEntry("session.intra_op.allow_spinning", "0")
		s, err := ortgo.NewDynamicAdvancedSessionWithONNXData(data, []string{"x"}, []string{"y"}, so)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Destroy()
		x, _ := ortgo.NewTensor(ortgo.NewShape(1, 16), make([]float32, 16))
		y, _ := ortgo.NewEmptyTensor[float32](ortgo.NewShape(1, 16))
		defer x.Destroy()
		defer y.Destroy()
		in, out := []ortgo.Value{x}, []ortgo.Value{y}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if err := s.Run(in, out); err != nil {
				b.Fatal(err)
			}
		}
	})
	layer := func(ctx context.Context) func(b *testing.B) {
		return func(b *testing.B) {
			s, err := ort.NewSessionFromBytes(context.Background(), "tiny", data, "", orttest.Options())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			x, _ := s.NewInput("x", 1, 16)
			y, _ := s.NewOutput("y", 1, 16)
			defer x.Destroy()
			defer y.Destroy()
			in, out := []*ort.Tensor{x}, []*ort.Tensor{y}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := s.Run(ctx, in, out); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.Run("rflow", layer(context.Background()))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.Run("rflow-cancellable-ctx", layer(ctx))
}

// bigModel is ~100 MB of float32 weights: 24 blocks of MatMul(1024×1024) + bias + Gelu-like tanh.
func bigModel(dir string) (string, error) {
	const d, layers = 1024, 24
	r := rand.New(rand.NewPCG(7, 8))
	b := onnx.NewBuilder("big", 17)
	y := b.Input("x", onnx.Float, onnx.Sym("batch"), onnx.Fixed(d))
	for l := 0; l < layers; l++ {
		w := make([]float32, d*d)
		for i := range w {
			w[i] = float32(r.NormFloat64() / 32)
		}
		W := b.Initializer(onnx.Float32Tensor("", []int64{d, d}, w))
		B := b.Initializer(onnx.Float32Tensor("", []int64{d}, make([]float32, d)))
		y = b.Op("Tanh", []string{b.Op("Add", []string{b.Op("MatMul", []string{y, W}), B})})
	}
	b.Output(y, "y", onnx.Float, onnx.Sym("batch"), onnx.Fixed(d))
	path := filepath.Join(dir, "model.onnx")
	return path, b.Model().WriteFile(path, onnx.WriteOptions{ExternalData: true, DataName: "model.onnx_data"})
}

// BenchmarkSessionCreate100MB measures session creation of a ~100 MB model without the optimized-graph
// cache, on a cache miss (optimize + save) and on a hit (load the saved graph, no optimization).
func BenchmarkSessionCreate100MB(b *testing.B) {
	dir := b.TempDir()
	path, err := bigModel(dir)
	if err != nil {
		b.Fatal(err)
	}
	load := func(b *testing.B, o ort.SessionOptions) *ort.Session {
		s, err := ort.NewSession(context.Background(), path, o)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	base := ort.SessionOptions{NoSpinning: true}
	b.Run("no-cache", func(b *testing.B) {
		for b.Loop() {
			load(b, base).Close()
		}
	})
	cached := base
	cached.CacheDir = filepath.Join(dir, "cache")
	b.Run("cache-miss", func(b *testing.B) {
		for b.Loop() {
			_ = os.RemoveAll(cached.CacheDir)
			s := load(b, cached)
			if s.FromCache() {
				b.Fatal("expected a miss")
			}
			s.Close()
		}
	})
	load(b, cached).Close() // make sure the entry exists
	b.Run("cache-hit", func(b *testing.B) {
		for b.Loop() {
			s := load(b, cached)
			if !s.FromCache() {
				b.Fatal("expected a hit")
			}
			s.Close()
		}
	})
}
