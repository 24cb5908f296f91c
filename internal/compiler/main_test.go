package compiler_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/compiler"
	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/internal/ort/orttest"
	"github.com/rflowrt/rflow/internal/testmodels"
)

// ortErr is why ONNX Runtime could not start; tests that run models skip on it (fail in CI), the rest
// (bad input, cache bookkeeping) run without it.
var ortErr error

func TestMain(m *testing.M) {
	if child := os.Getenv(childEnv); child != "" {
		os.Exit(runChild(child, os.Args[len(os.Args)-2:]))
	}
	ortErr = ort.Init(ort.Config{LibraryPath: orttest.Library()})
	if ortErr != nil && os.Getenv("CI") != "" {
		fmt.Fprintf(os.Stderr, "FAIL: ONNX Runtime is required in CI: %v\n", ortErr)
		os.Exit(1)
	}
	code := orttest.RunIsolated(m) // compiled models and ORT caches go to a temporary user cache folder
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

// writeCheckpoint writes a testmodels checkpoint folder for o into a new temporary folder.
func writeCheckpoint(t testing.TB, o testmodels.Options) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "checkpoint")
	if err := testmodels.WriteCheckpoint(dir, o); err != nil {
		t.Fatal(err)
	}
	return dir
}

// compile opens src and compiles it into a new temporary folder.
func compile(t testing.TB, src compiler.Source, o compiler.Options) string {
	t.Helper()
	c, err := compiler.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out := filepath.Join(t.TempDir(), "compiled")
	if err := compiler.Write(context.Background(), c, out, o); err != nil {
		t.Fatal(err)
	}
	return out
}

// singleFiles is the checkpoint folder's components given as single files (stable-diffusion.cpp's
// -m/--clip-l/--clip-g/--t5xxl/--vae), with the folder as the config source (tiny models' head counts
// and rope axes are not the released ones, which shapes cannot tell).
func singleFiles(dir string, k testmodels.Kind) compiler.Source {
	src := compiler.Source{Model: filepath.Join(dir, "transformer", "diffusion_pytorch_model.safetensors"),
		CLIPL: filepath.Join(dir, "text_encoder", "model.safetensors"),
		VAE:   filepath.Join(dir, "vae", "diffusion_pytorch_model.safetensors"), Config: dir}
	if k.IsFlux() {
		src.T5 = filepath.Join(dir, "text_encoder_2", "model.safetensors")
	} else {
		src.CLIPG = filepath.Join(dir, "text_encoder_2", "model.safetensors")
		src.T5 = filepath.Join(dir, "text_encoder_3", "model.safetensors")
	}
	return src
}

// dims are the sizes of every symbolic dimension the components' inputs and outputs name, per
// component folder: small, with a batch of 2 where the graph allows it.
var dims = map[string]map[string]int64{
	"text_encoder":   {"batch_size": 2, "sequence_length": 77},
	"text_encoder_2": {"batch_size": 2, "sequence_length": 77},
	"text_encoder_3": {"batch_size": 2, "sequence_length": 16},
	"transformer": {"batch_size": 2, "step": 2, "sequence_length": 12, "packed_height_width": 16, "height": 8,
		"width": 8, "num_skip": 1},
	"vae_decoder": {"batch_size": 1, "latent_height": 4, "latent_width": 6, "height": 32, "width": 48},
	"vae_encoder": {"batch_size": 1, "latent_height": 4, "latent_width": 6, "height": 32, "width": 48},
}

// t5Dims: T5 in FLUX folders is text_encoder_2.
var t5Dims = map[string]int64{"batch_size": 2, "sequence_length": 16}

// runComponent runs dir/comp/model.onnx on deterministic inputs (seeded by the component's name, so
// every folder gets the same ones) and returns every output. skip_layers, where a graph has it, skips
// nothing (-1).
func runComponent(t testing.TB, dir, comp string, o ort.SessionOptions) map[string][]float32 {
	t.Helper()
	s, err := ort.NewSession(context.Background(), filepath.Join(dir, comp, "model.onnx"), o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	size := dims[comp]
	if comp == "text_encoder_2" && s.Outputs()[0].Name == "last_hidden_state" && len(s.Outputs()) == 1 {
		size = t5Dims
	}
	shape := func(ti ort.TensorInfo) []int64 {
		out := make([]int64, len(ti.Shape))
		for i, d := range ti.Shape {
			if d < 0 {
				v, ok := size[ti.DimNames[i]]
				if !ok {
					t.Fatalf("%s: no size for dimension %q of %s", comp, ti.DimNames[i], ti)
				}
				d = v
			}
			out[i] = d
		}
		return out
	}
	var ins, outs []*ort.Tensor
	defer func() {
		for _, x := range append(ins, outs...) {
			x.Destroy()
		}
	}()
	for _, ti := range s.Inputs() {
		sh := shape(ti)
		x, err := s.NewInput(ti.Name, sh...)
		if err != nil {
			t.Fatal(err)
		}
		ins = append(ins, x)
		h := uint64(0)
		for _, c := range comp + "/" + ti.Name {
			h = h*31 + uint64(c)
		}
		r := rand.New(rand.NewPCG(h, 1))
		n := x.Len()
		switch {
		case ti.Type == onnx.Int64 || ti.Type == onnx.Int32:
			v := make([]int64, n)
			for i := range v {
				switch ti.Name {
				case "input_ids":
					v[i] = r.Int64N(32000)
				case "skip_layers":
					v[i] = -1
				default: // img_ids, txt_ids
					v[i] = r.Int64N(8)
				}
			}
			err = x.SetInt64(v)
		default:
			v := make([]float32, n)
			for i := range v {
				switch ti.Name {
				case "timestep":
					v[i] = float32(r.Float64())
				case "guidance":
					v[i] = 3.5
				default:
					v[i] = float32(r.NormFloat64())
				}
			}
			err = x.SetFloat32(v)
		}
		if err != nil {
			t.Fatalf("%s %s: %v", comp, ti.Name, err)
		}
	}
	for _, ti := range s.Outputs() {
		x, err := s.NewOutput(ti.Name, shape(ti)...)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, x)
	}
	if err := s.Run(context.Background(), ins, outs); err != nil {
		t.Fatalf("%s: %v", comp, err)
	}
	res := map[string][]float32{}
	for i, ti := range s.Outputs() {
		v := make([]float32, outs[i].Len())
		if err := outs[i].ReadFloat32(v); err != nil {
			t.Fatal(err)
		}
		res[ti.Name] = v
	}
	return res
}

// components lists the model folders of an Optimum folder.
func components(t testing.TB, dir string) []string {
	t.Helper()
	ms, err := filepath.Glob(filepath.Join(dir, "*", "model.onnx"))
	if err != nil || len(ms) == 0 {
		t.Fatalf("no models in %s (%v)", dir, err)
	}
	var out []string
	for _, m := range ms {
		out = append(out, filepath.Base(filepath.Dir(m)))
	}
	return out
}

// firstBitDiff describes the first element where a and b differ bitwise, or "".
func firstBitDiff(a, b []float32) string {
	if len(a) != len(b) {
		return fmt.Sprintf("%d values vs %d", len(a), len(b))
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return fmt.Sprintf("[%d] %v vs %v", i, a[i], b[i])
		}
	}
	return ""
}

// maxAbsDiff is max |a−b| and max |a|.
func maxAbsDiff(a, b []float32) (d, scale float64) {
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
		scale = max(scale, math.Abs(float64(a[i])))
	}
	return d, scale
}

// oneLine fails unless err is a non-nil error of one line that contains every want.
func oneLine(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", want)
	}
	msg := err.Error()
	t.Logf("error: %s", msg)
	if strings.Contains(msg, "\n") {
		t.Errorf("error spans lines: %q", msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not contain %q", msg, w)
		}
	}
}
