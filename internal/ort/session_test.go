package ort_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rflowrt/rflow/internal/half"
	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/internal/ort/orttest"
)

func marshal(t testing.TB, m *onnx.Model) []byte {
	t.Helper()
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func randn(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// mlpModel is y = sigmoid(x·W + b) · x2 with a symbolic batch dim, the Go reference in mlpRef.
func mlpModel(w, bias []float32, in, out int64, dt onnx.DataType) *onnx.Model {
	b := onnx.NewBuilder("mlp", 17)
	x := b.Input("x", dt, onnx.Sym("batch"), onnx.Fixed(in))
	x2 := b.Input("x2", dt, onnx.Sym("batch"), onnx.Fixed(out))
	var W, B string
	if dt == onnx.Float16 {
		W = b.Initializer(onnx.Float16Tensor("W", []int64{in, out}, w))
		B = b.Initializer(onnx.Float16Tensor("b", []int64{out}, bias))
	} else {
		W = b.Initializer(onnx.Float32Tensor("W", []int64{in, out}, w))
		B = b.Initializer(onnx.Float32Tensor("b", []int64{out}, bias))
	}
	h := b.Op("Sigmoid", []string{b.Op("Add", []string{b.Op("MatMul", []string{x, W}), B})})
	b.Output(b.Op("Mul", []string{h, x2}), "y", dt, onnx.Sym("batch"), onnx.Fixed(out))
	return b.Model()
}

func mlpRef(x, x2, w, bias []float32, batch, in, out int) []float64 {
	y := make([]float64, batch*out)
	for n := 0; n < batch; n++ {
		for j := 0; j < out; j++ {
			s := float64(bias[j])
			for k := 0; k < in; k++ {
				s += float64(x[n*in+k]) * float64(w[k*out+j])
			}
			y[n*out+j] = 1 / (1 + math.Exp(-s)) * float64(x2[n*out+j])
		}
	}
	return y
}

func maxDiff(got []float32, want []float64) float64 {
	m := 0.0
	for i := range got {
		m = math.Max(m, math.Abs(float64(got[i])-want[i]))
	}
	return m
}

func TestRunMatchesGoReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const batch, in, out = 3, 32, 24
	w, bias := randn(r, in*out), randn(r, out)
	for _, tc := range []struct {
		dt  onnx.DataType
		tol float64
	}{{onnx.Float, 1e-6}, {onnx.Float16, 1e-3}} {
		t.Run(tc.dt.String(), func(t *testing.T) {
			if tc.dt == onnx.Float16 { // reference on the fp16-rounded weights, as the model holds them
				for _, v := range [][]float32{w, bias} {
					for i := range v {
						v[i] = half.ToFloat32(half.FromFloat32(v[i]))
					}
				}
			}
			s, err := ort.NewSessionFromBytes(context.Background(), "mlp", marshal(t, mlpModel(w, bias, in, out, tc.dt)), "", orttest.Options())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			x, x2 := randn(r, batch*in), randn(r, batch*out)
			if tc.dt == onnx.Float16 {
				for _, v := range [][]float32{x, x2} {
					for i := range v {
						v[i] = half.ToFloat32(half.FromFloat32(v[i]))
					}
				}
			}
			got := runMLP(t, s, x, x2, batch, in, out)
			if d := maxDiff(got, mlpRef(x, x2, w, bias, batch, in, out)); d > tc.tol {
				t.Fatalf("max |ORT - Go reference| = %g, want <= %g", d, tc.tol)
			}
		})
	}
}

func mustInput(t testing.TB, s *ort.Session, name string, shape ...int64) *ort.Tensor {
	t.Helper()
	x, err := s.NewInput(name, shape...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Destroy() })
	return x
}

// TestEveryDtype runs y = x·3 − 1 computed in float32 inside the graph, with input and output of each
// supported type, so both directions of every conversion go through ORT.
func TestEveryDtype(t *testing.T) {
	vals := []float32{-2.5, -1, 0, 0.5, 1, 3, 100, 1234}
	for _, dt := range ort.SupportedTypes() {
		t.Run(dt.String(), func(t *testing.T) {
			b := onnx.NewBuilder("dtype", 17)
			x := b.Input("x", dt, onnx.Fixed(2), onnx.Fixed(4))
			xf := b.Op("Cast", []string{x}, onnx.AttrInt("to", int64(onnx.Float)))
			three := b.Initializer(onnx.Float32Tensor("three", []int64{1}, []float32{3}))
			one := b.Initializer(onnx.Float32Tensor("one", []int64{1}, []float32{1}))
			y := b.Op("Sub", []string{b.Op("Mul", []string{xf, three}), one})
			b.Output(b.Op("Cast", []string{y}, onnx.AttrInt("to", int64(dt))), "y", dt, onnx.Fixed(2), onnx.Fixed(4))
			s, err := ort.NewSessionFromBytes(context.Background(), "dtype", marshal(t, b.Model()), "", orttest.Options())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got := s.Inputs()[0].Type; got != dt {
				t.Fatalf("input type %v, want %v", got, dt)
			}
			in, out := mustInput(t, s, "x", 2, 4), must(t)(s.NewOutput("y", 2, 4))
			if dt == onnx.Int32 || dt == onnx.Int64 {
				iv := make([]int64, len(vals))
				for i, v := range vals {
					iv[i] = int64(math.Trunc(float64(v)))
				}
				if err := in.SetInt64(iv); err != nil {
					t.Fatal(err)
				}
				run(t, s, in, out)
				got := make([]int64, len(vals))
				if err := out.ReadInt64(got); err != nil {
					t.Fatal(err)
				}
				for i := range iv {
					if got[i] != iv[i]*3-1 {
						t.Fatalf("y[%d] = %d, want %d", i, got[i], iv[i]*3-1)
					}
				}
				if err := in.SetFloat32(vals); err == nil {
					t.Fatal("SetFloat32 on an integer tensor succeeded")
				}
				return
			}
			if err := in.SetFloat32(vals); err != nil {
				t.Fatal(err)
			}
			run(t, s, in, out)
			got := make([]float32, len(vals))
			if err := out.ReadFloat32(got); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				want := float64(v)*3 - 1
				tol := 1e-6
				if dt != onnx.Float {
					tol = math.Abs(want) * 1e-2 // bfloat16 keeps 8 bits of mantissa
				}
				if math.Abs(float64(got[i])-want) > tol {
					t.Fatalf("y[%d] = %g, want %g", i, got[i], want)
				}
			}
			if err := in.SetInt64(make([]int64, 8)); err == nil {
				t.Fatal("SetInt64 on a float tensor succeeded")
			}
		})
	}
}

func must(t testing.TB) func(*ort.Tensor, error) *ort.Tensor {
	return func(x *ort.Tensor, err error) *ort.Tensor {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { x.Destroy() })
		return x
	}
}

func run(t testing.TB, s *ort.Session, in, out *ort.Tensor) {
	t.Helper()
	if err := s.Run(context.Background(), []*ort.Tensor{in}, []*ort.Tensor{out}); err != nil {
		t.Fatal(err)
	}
}

func TestInt32Overflow(t *testing.T) {
	x, err := ort.NewTensor(onnx.Int32, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Destroy()
	if err := x.SetInt64([]int64{1, 1 << 40}); err == nil || !strings.Contains(err.Error(), "does not fit") {
		t.Fatalf("want an overflow error, got %v", err)
	}
}

func TestExternalData(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const in, out = 64, 48
	w, bias := randn(r, in*out), randn(r, out)
	dir := t.TempDir()
	path := filepath.Join(dir, "model.onnx")
	if err := mlpModel(w, bias, in, out, onnx.Float).WriteFile(path, onnx.WriteOptions{ExternalData: true, DataName: "model.onnx_data"}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "model.onnx_data")); err != nil || fi.Size() < in*out*4 {
		t.Fatalf("external data file missing or small: %v", err)
	}
	x, x2 := randn(r, in), randn(r, out)
	want := mlpRef(x, x2, w, bias, 1, in, out)
	modelBytes, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	loaders := map[string]func() (*ort.Session, error){
		"path": func() (*ort.Session, error) { return ort.NewSession(context.Background(), path, orttest.Options()) },
		"bytes": func() (*ort.Session, error) {
			return ort.NewSessionFromBytes(context.Background(), "m", modelBytes, dir, orttest.Options())
		},
	}
	for name, load := range loaders {
		t.Run(name, func(t *testing.T) {
			s, err := load()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			got := runMLP(t, s, x, x2, 1, in, out)
			if d := maxDiff(got, want); d > 1e-6 {
				t.Fatalf("max diff %g", d)
			}
		})
	}
	if _, err := ort.NewSessionFromBytes(context.Background(), "m", modelBytes, "", orttest.Options()); err == nil || !strings.Contains(err.Error(), "external data") {
		t.Fatalf("loading external-data bytes without a directory: want a clear error, got %v", err)
	}
}

// runMLP runs mlpModel on a batch through the typed-tensor API, converting to the declared dtype.
func runMLP(t testing.TB, s *ort.Session, x, x2 []float32, batch, in, out int64) []float32 {
	t.Helper()
	tx, tx2 := mustInput(t, s, "x", batch, in), mustInput(t, s, "x2", batch, out)
	ty := must(t)(s.NewOutput("y", batch, out))
	if err := tx.SetFloat32(x); err != nil {
		t.Fatal(err)
	}
	if err := tx2.SetFloat32(x2); err != nil {
		t.Fatal(err)
	}
	if err := s.Run(context.Background(), []*ort.Tensor{tx, tx2}, []*ort.Tensor{ty}); err != nil {
		t.Fatal(err)
	}
	got := make([]float32, batch*out)
	if err := ty.ReadFloat32(got); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestSignatureSymbolicDims(t *testing.T) {
	b := onnx.NewBuilder("sig", 17)
	ids := b.Input("input_ids", onnx.Int64, onnx.Sym("batch"), onnx.Sym("sequence"))
	lat := b.Input("hidden_states", onnx.Float16, onnx.Sym("batch"), onnx.Fixed(16), onnx.Sym("h"), onnx.Sym("w"))
	b.Output(ids, "ids_out", onnx.Int64, onnx.Sym("batch"), onnx.Sym("sequence"))
	b.Output(lat, "out_sample", onnx.Float16, onnx.Sym("batch"), onnx.Fixed(16), onnx.Sym("h"), onnx.Sym("w"))
	data := marshal(t, b.Model())
	s, err := ort.NewSessionFromBytes(context.Background(), "sig", data, "", orttest.Options())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in := s.Inputs()
	if len(in) != 2 || in[0].Name != "input_ids" || in[0].Type != onnx.Int64 || !equal(in[0].Shape, []int64{-1, -1}) ||
		in[0].DimNames[1] != "sequence" {
		t.Fatalf("input 0 = %+v", in[0])
	}
	if in[1].Type != onnx.Float16 || !equal(in[1].Shape, []int64{-1, 16, -1, -1}) || in[1].DimNames[2] != "h" {
		t.Fatalf("input 1 = %+v", in[1])
	}
	if got := in[1].String(); got != "hidden_states float16[batch,16,h,w]" {
		t.Fatalf("String() = %q", got)
	}
	if out := s.Outputs(); len(out) != 2 || out[1].Name != "out_sample" {
		t.Fatalf("outputs = %+v", out)
	}
	// A tensor that contradicts a fixed dim, or has the wrong type, is refused before ORT sees it.
	bad := must(t)(ort.NewTensor(onnx.Float16, 1, 4, 8, 8))
	idsT := must(t)(ort.NewTensor(onnx.Int64, 1, 7))
	outIDs := must(t)(ort.NewTensor(onnx.Int64, 1, 7))
	outLat := must(t)(ort.NewTensor(onnx.Float16, 1, 16, 8, 8))
	var se *ort.SignatureError
	err = s.Run(context.Background(), []*ort.Tensor{idsT, bad}, []*ort.Tensor{outIDs, outLat})
	if !errors.As(err, &se) || se.Name != "hidden_states" {
		t.Fatalf("want a SignatureError for hidden_states, got %v", err)
	}
	wrongType := must(t)(ort.NewTensor(onnx.Int32, 1, 7))
	if err := s.Run(context.Background(), []*ort.Tensor{wrongType, outLat}, []*ort.Tensor{outIDs, outLat}); !errors.As(err, &se) || se.Name != "input_ids" {
		t.Fatalf("want a SignatureError for input_ids, got %v", err)
	}
	if err := s.Run(context.Background(), []*ort.Tensor{idsT, outLat}, []*ort.Tensor{outIDs, nil}); !errors.As(err, &se) {
		t.Fatalf("want a SignatureError for a nil output, got %v", err)
	}
	// The same signature comes from the file without a session.
	path := filepath.Join(t.TempDir(), "sig.onnx")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ins, outs, err := ort.Signature(path)
	if err != nil || len(ins) != 2 || len(outs) != 2 || ins[1].String() != in[1].String() {
		t.Fatalf("Signature(%s) = %v, %v, %v", path, ins, outs, err)
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSelectedOutputs(t *testing.T) {
	b := onnx.NewBuilder("two", 17)
	x := b.Input("x", onnx.Float, onnx.Fixed(4))
	b.Output(b.Op("Neg", []string{x}), "neg", onnx.Float, onnx.Fixed(4))
	b.Output(b.Op("Abs", []string{x}), "abs", onnx.Float, onnx.Fixed(4))
	data := marshal(t, b.Model())
	o := orttest.Options()
	o.Outputs = []string{"abs"}
	s, err := ort.NewSessionFromBytes(context.Background(), "two", data, "", o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in, out := mustInput(t, s, "x", 4), must(t)(s.NewOutput("abs", 4))
	_ = in.SetFloat32([]float32{-1, 2, -3, 4})
	run(t, s, in, out)
	if got := out.Float32s(); got[0] != 1 || got[2] != 3 {
		t.Fatalf("abs = %v", got)
	}
	o.Outputs = []string{"nope"}
	if _, err := ort.NewSessionFromBytes(context.Background(), "two", data, "", o); err == nil || !strings.Contains(err.Error(), `no output "nope"`) {
		t.Fatalf("want an error naming the missing output, got %v", err)
	}
}

func TestCorruptModel(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.onnx")
	_ = os.WriteFile(garbage, []byte("this is a text file, not a model\n"), 0o644)
	_, err := ort.NewSession(context.Background(), garbage, orttest.Options())
	if err == nil || !errors.Is(err, onnx.ErrNotONNX) || !strings.Contains(err.Error(), garbage) {
		t.Fatalf("text file: want a not-ONNX error naming the file, got %v", err)
	}
	_, err = ort.NewSession(context.Background(), filepath.Join(dir, "missing.onnx"), orttest.Options())
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: want ErrNotExist, got %v", err)
	}
	// Well-formed protobuf, but an operator ORT does not know: ORT's error, wrapped with the name.
	b := onnx.NewBuilder("bad", 17)
	x := b.Input("x", onnx.Float, onnx.Fixed(1))
	b.Output(b.Op("NoSuchOperator", []string{x}), "y", onnx.Float, onnx.Fixed(1))
	_, err = ort.NewSessionFromBytes(context.Background(), "bad.onnx", marshal(t, b.Model()), "", orttest.Options())
	if err == nil || !strings.Contains(err.Error(), "bad.onnx") || !strings.Contains(err.Error(), "NoSuchOperator") {
		t.Fatalf("unknown op: want ORT's error naming the model and op, got %v", err)
	}
}

func TestProviderUnavailable(t *testing.T) {
	avail, err := ort.AvailableProviders()
	if err != nil {
		t.Fatal(err)
	}
	if len(avail) == 0 || avail[0] != ort.CPU {
		t.Fatalf("available providers %v: cpu must come first", avail)
	}
	for _, p := range []ort.Provider{ort.CUDA, ort.TensorRT, ort.CoreML, ort.DirectML} {
		if contains(avail, p) {
			continue // this library has it (a GPU build)
		}
		o := orttest.Options()
		o.Provider = p
		_, err := ort.NewSessionFromBytes(context.Background(), "m", marshal(t, mlpModel(make([]float32, 4), make([]float32, 2), 2, 2, onnx.Float)), "", o)
		var pe *ort.ProviderError
		if !errors.As(err, &pe) || !errors.Is(err, ort.ErrProviderUnavailable) || pe.Provider != p ||
			!strings.Contains(err.Error(), string(p)) || strings.Contains(err.Error(), "--") {
			t.Fatalf("%s: want a ProviderError that names it, without command-line advice (the CLI adds that), got %v", p, err)
		}
	}
	if _, err := ort.ParseProvider("vulkan"); err == nil || !strings.Contains(err.Error(), "cpu, cuda, tensorrt, coreml, directml") {
		t.Fatalf("unknown provider: want the valid list, got %v", err)
	}
}

func contains(ps []ort.Provider, p ort.Provider) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

func TestOptimizedGraphCache(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const in, out = 64, 32
	w, bias := randn(r, in*out), randn(r, out)
	dir := t.TempDir()
	path := filepath.Join(dir, "model.onnx")
	if err := mlpModel(w, bias, in, out, onnx.Float).WriteFile(path, onnx.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	o := orttest.Options()
	o.CacheDir = filepath.Join(dir, "cache")
	x, x2 := randn(r, in), randn(r, out)
	want := mlpRef(x, x2, w, bias, 1, in, out)
	for i, wantCached := range []bool{false, true, true} {
		s, err := ort.NewSession(context.Background(), path, o)
		if err != nil {
			t.Fatal(err)
		}
		if s.FromCache() != wantCached {
			t.Fatalf("load %d: FromCache = %v, want %v", i, s.FromCache(), wantCached)
		}
		if d := maxDiff(runMLP(t, s, x, x2, 1, in, out), want); d > 1e-6 {
			t.Fatalf("load %d: max diff %g", i, d)
		}
		s.Close()
	}
	entries, _ := os.ReadDir(o.CacheDir)
	if len(entries) != 1 || strings.HasPrefix(entries[0].Name(), ".tmp") {
		t.Fatalf("cache dir holds %v, want one finished entry", entries)
	}
	// A damaged entry is rebuilt, not fatal.
	_ = os.WriteFile(filepath.Join(o.CacheDir, entries[0].Name(), "model.onnx"), []byte("junk"), 0o644)
	s, err := ort.NewSession(context.Background(), path, o)
	if err != nil {
		t.Fatalf("damaged cache entry: %v", err)
	}
	if s.FromCache() {
		t.Fatal("damaged entry reported as a cache hit")
	}
	s.Close()
	// Another model gets another entry.
	if err := mlpModel(randn(r, in*out), bias, in, out, onnx.Float).WriteFile(path, onnx.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	s, err = ort.NewSession(context.Background(), path, o)
	if err != nil || s.FromCache() {
		t.Fatalf("changed model: FromCache=%v err=%v, want a miss", s != nil && s.FromCache(), err)
	}
	s.Close()
}

// TestCacheKeepsNoWeightCopy: a model with external data is never written to the cache (the entry
// would be a second copy of its weights), nor one above half the bound; both still load.
func TestCacheKeepsNoWeightCopy(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	const in, out = 64, 48
	w, bias := randn(r, in*out), randn(r, out)
	x, x2 := randn(r, in), randn(r, out)
	want := mlpRef(x, x2, w, bias, 1, in, out)
	for _, c := range []struct {
		name     string
		external bool
		limit    int64
	}{
		{"external-data", true, 0},
		{"over-half-the-bound", false, 8 << 10},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "model.onnx")
			wo := onnx.WriteOptions{ExternalData: c.external, DataName: "model.onnx_data"}
			if err := mlpModel(w, bias, in, out, onnx.Float).WriteFile(path, wo); err != nil {
				t.Fatal(err)
			}
			o := orttest.Options()
			o.CacheDir, o.CacheMaxBytes = filepath.Join(dir, "cache"), c.limit
			for range 2 {
				s, err := ort.NewSession(context.Background(), path, o)
				if err != nil {
					t.Fatal(err)
				}
				if s.FromCache() {
					t.Fatal("loaded from the cache")
				}
				if d := maxDiff(runMLP(t, s, x, x2, 1, in, out), want); d > 1e-6 {
					t.Fatalf("max diff %g", d)
				}
				s.Close()
			}
			if entries, _ := os.ReadDir(o.CacheDir); len(entries) != 0 {
				t.Fatalf("cache holds %d entries, want none", len(entries))
			}
		})
	}
}

// TestCacheBoundEvicts: with a bound that holds two entries, loading three models keeps the two most
// recently used (a hit counts as a use).
func TestCacheBoundEvicts(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	const in, out = 16, 16
	dir := t.TempDir()
	o := orttest.Options()
	o.CacheDir = filepath.Join(dir, "cache")
	paths := make([]string, 3)
	for i := range paths {
		paths[i] = filepath.Join(dir, fmt.Sprintf("m%d", i), "model.onnx")
		_ = os.MkdirAll(filepath.Dir(paths[i]), 0o755)
		if err := mlpModel(randn(r, in*out), randn(r, out), in, out, onnx.Float).WriteFile(paths[i], onnx.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	load := func(i int) bool {
		t.Helper()
		s, err := ort.NewSession(context.Background(), paths[i], o)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		return s.FromCache()
	}
	load(0)
	entries, _ := os.ReadDir(o.CacheDir)
	if len(entries) != 1 {
		t.Fatalf("%d entries after one load", len(entries))
	}
	entrySize := int64(0)
	_ = filepath.WalkDir(filepath.Join(o.CacheDir, entries[0].Name()), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			fi, _ := d.Info()
			entrySize += fi.Size()
		}
		return nil
	})
	// Room for two entries, not three; each model is below half of it.
	o.CacheMaxBytes = entrySize * 5 / 2
	time.Sleep(10 * time.Millisecond) // distinct modification times
	load(1)
	time.Sleep(10 * time.Millisecond)
	if !load(0) { // a hit: model 0 becomes the most recently used
		t.Fatal("model 0: want a cache hit")
	}
	time.Sleep(10 * time.Millisecond)
	load(2) // over the bound: model 1, the least recently used, goes
	if !load(0) || !load(2) {
		t.Fatal("models 0 and 2 should still be cached")
	}
	if load(1) {
		t.Fatal("model 1 should have been evicted")
	}
}

// slowModel chains n size×size MatMuls (by the identity): at 512, tens of milliseconds each on one
// thread.
func slowModel(n int, size int64) *onnx.Model {
	b := onnx.NewBuilder("slow", 17)
	x := b.Input("x", onnx.Float, onnx.Fixed(size), onnx.Fixed(size))
	w := make([]float32, size*size)
	for i := range size {
		w[i*size+i] = 1
	}
	W := b.Initializer(onnx.Float32Tensor("W", []int64{size, size}, w))
	y := x
	for i := 0; i < n; i++ {
		y = b.Op("MatMul", []string{y, W})
	}
	b.Output(y, "y", onnx.Float, onnx.Fixed(size), onnx.Fixed(size))
	return b.Model()
}

func TestRunCancellation(t *testing.T) {
	o := orttest.Options()
	o.OptLevel = ort.OptDisabled // keep the chain: no constant folding of identity products

	// 200 products of 512×512 matrices: seconds per Run on one thread.
	n := int64(512)
	if testing.Short() {
		n = 256 // 8× less work, still 200 nodes to stop between
	}
	s, err := ort.NewSessionFromBytes(context.Background(), "slow", marshal(t, slowModel(200, n)), "", o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	x, y := mustInput(t, s, "x", n, n), must(t)(s.NewOutput("y", n, n))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx, []*ort.Tensor{x}, []*ort.Tensor{y}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled before Run: got %v", err)
	}
	start := time.Now()
	if err := s.Run(context.Background(), []*ort.Tensor{x}, []*ort.Tensor{y}); err != nil {
		t.Fatal(err)
	}
	full := time.Since(start)
	ctx, cancel = context.WithTimeout(context.Background(), full/10)
	defer cancel()
	start = time.Now()
	err = s.Run(ctx, []*ort.Tensor{x}, []*ort.Tensor{y})
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled mid-Run: got %v", err)
	}
	if took > full/2 {
		t.Fatalf("cancelled Run took %v of a full %v: ORT was not told to stop", took, full)
	}
	// The session is usable again after a cancelled Run.
	if err := s.Run(context.Background(), []*ort.Tensor{x}, []*ort.Tensor{y}); err != nil {
		t.Fatalf("Run after cancellation: %v", err)
	}
}

// TestProfile: a profiled session writes ORT's trace on Close, and SummarizeProfile finds every node
// of slowModel (n MatMuls, one call each per Run).
func TestProfile(t *testing.T) {
	const n, runs = 3, 2
	data := marshal(t, slowModel(n, 64))
	o := orttest.Options()
	o.ProfilePrefix = filepath.Join(t.TempDir(), "prof")
	s, err := ort.NewSessionFromBytes(context.Background(), "slow", data, "", o)
	if err != nil {
		t.Fatal(err)
	}
	x := must(t)(s.NewInput("x", 64, 64))
	y := must(t)(s.NewOutput("y", 64, 64))
	for range runs {
		if err := s.Run(context.Background(), []*ort.Tensor{x}, []*ort.Tensor{y}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	files, err := ort.ProfileFiles(o.ProfilePrefix)
	if err != nil || len(files) != 1 {
		t.Fatalf("profile files %v, %v: want one", files, err)
	}
	ops, err := ort.SummarizeProfile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	for _, op := range ops {
		if op.Op == "MatMul" {
			calls = op.Calls
		}
	}
	if calls != n*runs {
		t.Fatalf("ops %+v: want %d MatMul calls", ops, n*runs)
	}
}
