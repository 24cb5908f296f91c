package assets

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"testing"

	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/internal/ort/orttest"
)

// ortErr is why ONNX Runtime is unavailable (nil when it is). Tests that do not run graphs (the
// tokenizer mirror, determinism) run either way; the others skip, except under CI.
var ortErr error

func TestMain(m *testing.M) {
	ortErr = ort.Init(ort.Config{LibraryPath: orttest.Library()})
	if ortErr != nil {
		if os.Getenv("CI") != "" {
			fmt.Fprintf(os.Stderr, "FAIL: ONNX Runtime is required in CI: %v\n", ortErr)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "assets: tests that run graphs are skipped: %v\n", ortErr)
	}
	code := m.Run()
	if ortErr == nil {
		_ = ort.Shutdown()
	}
	os.Exit(code)
}

func needORT(t testing.TB) {
	t.Helper()
	if ortErr != nil {
		t.Skipf("needs ONNX Runtime: %v", ortErr)
	}
}

// openGraph opens model.onnx of component comp of an embedded demo model.
func openGraph(t testing.TB, model, comp string) *ort.Session {
	t.Helper()
	needORT(t)
	fsys, err := FS(model)
	if err != nil {
		t.Fatal(err)
	}
	data, err := fs.ReadFile(fsys, comp+"/model.onnx")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewSessionFromBytes(context.Background(), model+"/"+comp, data, "", orttest.Options())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// feed is one input value: float32 or int64 data with its shape.
type feed struct {
	shape []int64
	f32   []float32
	i64   []int64
}

func f32In(v []float32, shape ...int64) feed { return feed{shape: shape, f32: v} }
func i64In(v []int64, shape ...int64) feed   { return feed{shape: shape, i64: v} }

// runGraph runs s with the named inputs (every input of the model) and returns the named outputs,
// whose shapes are given.
func runGraph(t testing.TB, s *ort.Session, in map[string]feed, outShapes map[string][]int64) map[string][]float32 {
	t.Helper()
	var ins, outs []*ort.Tensor
	defer func() {
		for _, x := range append(ins, outs...) {
			x.Destroy()
		}
	}()
	for _, info := range s.Inputs() {
		f, ok := in[info.Name]
		if !ok {
			t.Fatalf("%s: no value for input %s", s.Name(), info.Name)
		}
		x, err := s.NewInput(info.Name, f.shape...)
		if err != nil {
			t.Fatal(err)
		}
		ins = append(ins, x)
		if f.i64 != nil {
			err = x.SetInt64(f.i64)
		} else {
			err = x.SetFloat32(f.f32)
		}
		if err != nil {
			t.Fatalf("%s: %v", info.Name, err)
		}
	}
	for _, info := range s.Outputs() {
		x, err := s.NewOutput(info.Name, outShapes[info.Name]...)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, x)
	}
	if err := s.Run(context.Background(), ins, outs); err != nil {
		t.Fatal(err)
	}
	res := map[string][]float32{}
	for i, info := range s.Outputs() {
		v := make([]float32, outs[i].Len())
		if err := outs[i].ReadFloat32(v); err != nil {
			t.Fatal(err)
		}
		res[info.Name] = v
	}
	return res
}
