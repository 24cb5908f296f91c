package testmodels

import (
	"context"
	"crypto/sha256"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/internal/ort/orttest"
)

func TestMain(m *testing.M) { orttest.Main(m) }

// feed is one input's value: floats for float inputs (any declared float type), ints for ids.
type feed struct {
	shape []int64
	f     []float32
	i     []int64
}

func floats(shape []int64, v []float32) feed { return feed{shape: shape, f: v} }
func ints(shape []int64, v []int64) feed     { return feed{shape: shape, i: v} }

// randFeed is a feed of N(0,1) values from r.
func randFeed(r *rand.Rand, shape ...int64) feed {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return floats(shape, v)
}

// clone returns a deep copy, so a test can change one value.
func (f feed) clone() feed {
	return feed{shape: f.shape, f: slices.Clone(f.f), i: slices.Clone(f.i)}
}

// built is a builder's result, so that mk(SD3Transformer(c)) can be passed along in one argument.
type built struct {
	m   *onnx.Model
	err error
}

func mk(m *onnx.Model, err error) built { return built{m, err} }

// modelBytes marshals the model, failing the test on error.
func modelBytes(t testing.TB, b built) []byte {
	t.Helper()
	if b.err != nil {
		t.Fatal(b.err)
	}
	data, err := b.m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func digest(t testing.TB, b built) [32]byte {
	t.Helper()
	return sha256.Sum256(modelBytes(t, b))
}

// runner runs one model in ORT with one intra-op thread.
type runner struct {
	t testing.TB
	s *ort.Session
}

func newRunner(t testing.TB, b built) *runner {
	t.Helper()
	return newRunnerOpts(t, modelBytes(t, b), orttest.Options())
}

func newRunnerOpts(t testing.TB, data []byte, o ort.SessionOptions) *runner {
	t.Helper()
	s, err := ort.NewSessionFromBytes(context.Background(), t.Name(), data, "", o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return &runner{t: t, s: s}
}

// types checks the declared element type of every input and output named in want.
func (r *runner) types(want map[string]onnx.DataType) {
	r.t.Helper()
	all := append(slices.Clone(r.s.Inputs()), r.s.Outputs()...)
	for name, typ := range want {
		i := slices.IndexFunc(all, func(ti ort.TensorInfo) bool { return ti.Name == name })
		if i < 0 {
			r.t.Errorf("no input or output %q in %v", name, all)
		} else if all[i].Type != typ {
			r.t.Errorf("%s: type %v, want %v", name, all[i].Type, typ)
		}
	}
}

// names checks the input and output names, in order.
func (r *runner) names(ins, outs []string) {
	r.t.Helper()
	name := func(ti ort.TensorInfo) string { return ti.Name }
	var gi, go_ []string
	for _, ti := range r.s.Inputs() {
		gi = append(gi, name(ti))
	}
	for _, ti := range r.s.Outputs() {
		go_ = append(go_, name(ti))
	}
	if !slices.Equal(gi, ins) || !slices.Equal(go_, outs) {
		r.t.Errorf("signature inputs %v outputs %v, want %v and %v", gi, go_, ins, outs)
	}
}

// run feeds every input and returns each output (shape from outs) as float32 values.
func (r *runner) run(in map[string]feed, outs map[string][]int64) map[string][]float32 {
	r.t.Helper()
	var inputs, outputs []*ort.Tensor
	defer func() {
		for _, x := range append(inputs, outputs...) {
			_ = x.Destroy()
		}
	}()
	for _, ti := range r.s.Inputs() {
		f, ok := in[ti.Name]
		if !ok {
			r.t.Fatalf("no feed for input %s", ti)
		}
		x, err := r.s.NewInput(ti.Name, f.shape...)
		if err != nil {
			r.t.Fatal(err)
		}
		inputs = append(inputs, x)
		if f.i != nil {
			err = x.SetInt64(f.i)
		} else if x.Type() == onnx.Int64 || x.Type() == onnx.Int32 {
			err = x.SetInt64(toInts(f.f))
		} else {
			err = x.SetFloat32(f.f)
		}
		if err != nil {
			r.t.Fatalf("%s: %v", ti.Name, err)
		}
	}
	for _, ti := range r.s.Outputs() {
		x, err := r.s.NewOutput(ti.Name, outs[ti.Name]...)
		if err != nil {
			r.t.Fatal(err)
		}
		outputs = append(outputs, x)
	}
	if err := r.s.Run(context.Background(), inputs, outputs); err != nil {
		r.t.Fatal(err)
	}
	res := map[string][]float32{}
	for i, ti := range r.s.Outputs() {
		v := make([]float32, outputs[i].Len())
		if err := outputs[i].ReadFloat32(v); err != nil {
			r.t.Fatal(err)
		}
		res[ti.Name] = v
	}
	return res
}

func toInts(f []float32) []int64 {
	v := make([]int64, len(f))
	for i, x := range f {
		v[i] = int64(x)
	}
	return v
}

// finite fails unless every value is finite and not all are zero.
func finite(t testing.TB, name string, v []float32) {
	t.Helper()
	nonzero := false
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			t.Fatalf("%s[%d] = %v", name, i, x)
		}
		nonzero = nonzero || x != 0
	}
	if !nonzero {
		t.Fatalf("%s is all zeros", name)
	}
}

// maxDiff is the largest |a−b|.
func maxDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

// sensitivity runs base and then, for each named change, a copy of base with that change applied,
// failing when output out does not move by more than tol.
func sensitivity(t *testing.T, r *runner, base map[string]feed, outs map[string][]int64, out string,
	changes map[string]func(feed) feed) {
	t.Helper()
	ref := r.run(base, outs)[out]
	for name, change := range changes {
		in := map[string]feed{}
		for k, f := range base {
			in[k] = f
		}
		in[name] = change(base[name].clone())
		if d := maxDiff(ref, r.run(in, outs)[out]); d < 1e-4 {
			t.Errorf("changing %s moved %s by only %g", name, out, d)
		}
	}
}

// bump adds 0.5 to every float value.
func bump(f feed) feed {
	for i := range f.f {
		f.f[i] += 0.5
	}
	return f
}
