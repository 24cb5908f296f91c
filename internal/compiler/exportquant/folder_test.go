package exportquant

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/benchutil"
	"github.com/rflowrt/rflow/internal/compiler/arch"
	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/testmodels"
)

// files lists the regular files under dir (relative, slash-separated).
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out
}

// noLeftovers fails when dir holds anything but the names given (a temporary folder left behind).
func noLeftovers(t *testing.T, dir string, want ...string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.Contains(strings.Join(want, "\x00"), e.Name()) {
			t.Errorf("%s holds %s after the run", dir, e.Name())
		}
	}
}

// Quantizing the tiny SD3 export folder rewrites the transformer (smaller, still close to fp32)
// and carries every other file over unchanged; a second quantization is refused without output.
func TestQuantizeFolder(t *testing.T) {
	src := testmodels.Cached(t, testmodels.Options{Kind: testmodels.KindSD3})
	parent := t.TempDir()
	dst := filepath.Join(parent, "int8")
	var told []string
	rep, err := QuantizeFolder(context.Background(), src, dst, FolderOptions{Options: Options{Kind: arch.Int8},
		OnComponent: func(c string) { told = append(told, c) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Components) != 1 || strings.Join(told, ",") != "transformer" {
		t.Fatalf("report %+v, told %v", rep, told)
	}
	c := rep.Components[0]
	if c.Name != "transformer" || c.Quantized == 0 || c.Unchanged || c.BytesAfter >= c.BytesBefore {
		t.Errorf("transformer report %+v", c)
	}
	t.Logf("transformer: %d of %d weight MatMuls quantized, %d bytes → %d", c.Quantized, c.WeightMatMuls, c.BytesBefore, c.BytesAfter)
	got := files(t, dst)
	for _, f := range files(t, src) {
		if strings.HasPrefix(f, "transformer/model.onnx") {
			continue
		}
		a, _ := os.ReadFile(filepath.Join(src, f))
		b, err := os.ReadFile(filepath.Join(dst, f))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s not carried over unchanged: %v", f, err)
		}
	}
	if !strings.Contains(strings.Join(got, " "), "transformer/model.onnx_data") {
		t.Errorf("output files %v: no transformer/model.onnx_data", got)
	}
	want := runModel(t, filepath.Join(src, "transformer", modelFile), 3)
	out := runModel(t, filepath.Join(dst, "transformer", modelFile), 3)
	for k, w := range want {
		s := benchutil.SNRdB(out[k], w)
		t.Logf("int8 %s: %.1f dB SNR against fp32", k, s)
		if s < 20 {
			t.Errorf("int8 %s: %.1f dB SNR against fp32, want ≥ 20", k, s)
		}
	}
	again := filepath.Join(parent, "again")
	if _, err := QuantizeFolder(context.Background(), dst, again, FolderOptions{Options: Options{Kind: arch.Q4}}); !errorsIs(err, ErrAlreadyQuantized) {
		t.Errorf("quantizing the quantized folder: %v", err)
	}
	if _, err := QuantizeFolder(context.Background(), src, dst, FolderOptions{Options: Options{Kind: arch.Q4}}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("existing output: %v", err)
	}
	if _, err := QuantizeFolder(context.Background(), dst, filepath.Join(dst, "inside"), FolderOptions{Options: Options{Kind: arch.FP32, FuseAttention: true}}); err == nil || !strings.Contains(err.Error(), "inside the model folder") {
		t.Errorf("output inside the input: %v", err)
	}
	if _, err := QuantizeFolder(context.Background(), src, again, FolderOptions{Options: Options{Kind: arch.Q4}, Components: []string{"tokenizer"}}); !errorsIs(err, ErrBadComponent) {
		t.Errorf("component tokenizer: %v", err)
	}
	// the fixture's graphs already use MultiHeadAttention: nothing to fuse
	if _, err := QuantizeFolder(context.Background(), src, again, FolderOptions{Options: Options{Kind: arch.FP32, FuseAttention: true}}); !errorsIs(err, ErrNothingToRewrite) {
		t.Errorf("fusing a fused folder: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := QuantizeFolder(ctx, src, again, FolderOptions{Options: Options{Kind: arch.Q8}}); !errorsIs(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	_, err = QuantizeFolder(ctx, src, again, FolderOptions{Options: Options{Kind: arch.Q8}, OnComponent: func(string) { cancel() }})
	if !errorsIs(err, context.Canceled) {
		t.Errorf("cancelled while writing: %v", err)
	}
	noLeftovers(t, parent, "int8")
}

// A folder whose model has no weight MatMuls, or an opset ONNX Runtime does not run, gets a clear
// error and no output.
func TestQuantizeFolderRefuses(t *testing.T) {
	dir := t.TempDir()
	b := onnx.NewBuilder("add", 17)
	x := b.Input("x", onnx.Float, onnx.Fixed(4))
	y := b.Op("Add", []string{x, b.Constant(onnx.Float32Tensor("one", []int64{4}, []float32{1, 1, 1, 1}))})
	b.Output(y, "y", onnx.Float, onnx.Fixed(4))
	m := b.Model()
	src := filepath.Join(dir, "src")
	writeModel(t, m, filepath.Join(src, "transformer"))
	os.WriteFile(filepath.Join(src, "model_index.json"), []byte(`{}`), 0o644)
	dst := filepath.Join(dir, "out")
	_, err := QuantizeFolder(context.Background(), src, dst, FolderOptions{Options: Options{Kind: arch.Q8}})
	if !errorsIs(err, ErrNothingToRewrite) || !strings.Contains(err.Error(), "0 weight MatMuls") {
		t.Errorf("no MatMul weights: %v", err)
	}
	m.Opsets[0].Version = 5
	m.IRVersion = 3
	writeModel(t, m, filepath.Join(src, "transformer"))
	if _, err := QuantizeFolder(context.Background(), src, dst, FolderOptions{Options: Options{Kind: arch.Q8}}); !errorsIs(err, ErrUnsupportedOpset) {
		t.Errorf("opset 5: %v", err)
	}
	if _, err := QuantizeFolder(context.Background(), src, dst, FolderOptions{Options: Options{Kind: arch.FP32}}); !errorsIs(err, ErrNothingToRewrite) {
		t.Errorf("fp32 without fusion: %v", err)
	}
	if _, err := QuantizeFolder(context.Background(), src, dst, FolderOptions{Options: Options{Kind: "q3"}}); !errorsIs(err, ErrUnknownWeightKind) {
		t.Errorf("kind q3: %v", err)
	}
	noLeftovers(t, dir, "src")
}

// A folder made of symbolic links (a Hugging Face cache snapshot) is read through them: the output
// holds the files themselves, and a linked folder stays reachable.
func TestQuantizeFolderThroughSymlinks(t *testing.T) {
	fixture := testmodels.Cached(t, testmodels.Options{Kind: testmodels.KindSD3})
	dir := t.TempDir()
	src := filepath.Join(dir, "snapshot")
	os.MkdirAll(filepath.Join(src, "transformer"), 0o755)
	for _, f := range []string{"model_index.json", "transformer/model.onnx", "transformer/model.onnx_data", "transformer/config.json"} {
		if err := os.Symlink(filepath.Join(fixture, f), filepath.Join(src, f)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(fixture, "scheduler"), filepath.Join(src, "scheduler")); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "q8")
	if _, err := QuantizeFolder(context.Background(), src, dst, FolderOptions{Options: Options{Kind: arch.Q8}}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"model_index.json", "transformer/config.json", "scheduler/scheduler_config.json"} {
		a, _ := os.ReadFile(filepath.Join(fixture, f))
		b, err := os.ReadFile(filepath.Join(dst, f))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s: %v", f, err)
		}
	}
	if st, err := os.Lstat(filepath.Join(dst, "model_index.json")); err != nil || !st.Mode().IsRegular() {
		t.Errorf("model_index.json is not a file in the output: %v", err)
	}
	runModel(t, filepath.Join(dst, "transformer", modelFile), 1)
}

// A float16 export's MatMuls are not quantized, and the error says why.
func TestQuantizeFolderFloat16Weights(t *testing.T) {
	dir := t.TempDir()
	b := onnx.NewBuilder("half", 17)
	x := b.Input("x", onnx.Float16, onnx.Fixed(2), onnx.Fixed(64))
	w := b.Initializer(onnx.Float16Tensor("blocks.0.fc.weight.T", []int64{64, 64}, make([]float32, 64*64)))
	b.Output(b.Op("MatMul", []string{x, w}), "y", onnx.Float16, onnx.Fixed(2), onnx.Fixed(64))
	src := filepath.Join(dir, "src")
	writeModel(t, b.Model(), filepath.Join(src, "transformer"))
	_, err := QuantizeFolder(context.Background(), src, filepath.Join(dir, "out"), FolderOptions{Options: Options{Kind: arch.Int8}})
	if !errorsIs(err, ErrNothingToRewrite) || !strings.Contains(err.Error(), "1 MatMuls with float16") {
		t.Errorf("float16 export: %v", err)
	}
	noLeftovers(t, dir, "src")
}
