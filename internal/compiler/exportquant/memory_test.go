package exportquant

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/benchutil"
	"github.com/rflowrt/rflow/internal/compiler/arch"
	"github.com/rflowrt/rflow/internal/onnx"
)

// noiseSource writes n float32 values drawn from a generator seeded by seed, without holding them.
type noiseSource struct {
	seed uint64
	n    int
}

func (s noiseSource) WriteRaw(w io.Writer) error {
	r := rand.New(rand.NewPCG(s.seed, 7))
	buf := make([]float32, 0, 1<<16)
	for left := s.n; left > 0; {
		k := min(left, cap(buf))
		buf = buf[:k]
		for i := range buf {
			buf[i] = r.Float32() - 0.5
		}
		if _, err := w.Write(onnx.Float32Tensor("", nil, buf).Raw); err != nil {
			return err
		}
		left -= k
	}
	return nil
}

// memChildEnv makes TestRewriteMemoryChild rewrite one folder: "src,dst,kind".
const memChildEnv = "RFLOW_EXPORTQUANT_MEM_CHILD"

// TestRewriteMemoryStreams: a rewrite holds about one weight at a time, not the model. An export of
// 16 weight MatMuls of 512×2048 (64 MiB of float32, 4 MiB each) is quantized to q8 in a child
// process, whose resident memory may grow by at most 4 × the largest weight + 16 MiB (buffers, the
// graph, the Go runtime's slack), half the model here and a vanishing share of a real one. (Measured
// +20 MiB; +43 MiB with 8 MiB weights before weights streamed into the quantizer's layout.)
func TestRewriteMemoryStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: writes and quantizes a 64 MiB model")
	}
	if raceEnabled {
		t.Skip("the race detector's shadow memory inflates peak RSS")
	}
	const layers, in, out = 16, 512, 2048
	b := onnx.NewBuilder("deep", 17)
	x := b.Input("x", onnx.Float, onnx.Sym("batch"), onnx.Fixed(in))
	for i := range layers {
		w := b.Initializer(onnx.Tensor{Name: fmt.Sprintf("blocks.%d.fc.weight.T", i), Type: onnx.Float,
			Dims: []int64{in, out}, Source: noiseSource{seed: uint64(i), n: in * out}})
		y := b.Op("MatMul", []string{x, w})
		x = b.Op("Slice", []string{y, b.Constant(onnx.Int64Tensor("", []int64{1}, []int64{0})),
			b.Constant(onnx.Int64Tensor("", []int64{1}, []int64{in})), b.Constant(onnx.Int64Tensor("", []int64{1}, []int64{1}))})
	}
	b.Output(x, "y", onnx.Float, onnx.Sym("batch"), onnx.Fixed(in))
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeModel(t, b.Model(), filepath.Join(src, "transformer"))
	printed, _, err := benchutil.RunChild("TestRewriteMemoryChild", fmt.Sprintf("%s=%s,%s,%s", memChildEnv, src, filepath.Join(dir, "out"), arch.Q8))
	if err != nil {
		t.Fatal(err)
	}
	var before, peak float64
	_, rest, ok := strings.Cut(printed, "rss-before-MiB=")
	if !ok {
		t.Skipf("no measurement (no /proc/self/status?):\n%s", printed)
	}
	if _, err := fmt.Sscanf(rest, "%g peak-MiB=%g", &before, &peak); err != nil {
		t.Fatalf("child's result %q: %v", rest, err)
	}
	const weight = in * out * 4 >> 20
	t.Logf("model %d MiB, largest weight %d MiB: RSS %.1f MiB before the rewrite, peak %.1f MiB (+%.1f)",
		layers*weight, weight, before, peak, peak-before)
	if grow := peak - before; grow > 4*weight+16 {
		t.Errorf("the rewrite grew the RSS by %.1f MiB, over 4 × %d MiB + 16 MiB", grow, weight)
	}
}

// TestRewriteMemoryChild is TestRewriteMemoryStreams' child process.
func TestRewriteMemoryChild(t *testing.T) {
	spec := os.Getenv(memChildEnv)
	if spec == "" {
		t.Skip("runs only as TestRewriteMemoryStreams' child process")
	}
	f := strings.Split(spec, ",")
	kind, err := ParseKind(f[2])
	if err != nil {
		t.Fatal(err)
	}
	before, err := benchutil.StatusMiB("VmRSS")
	if err != nil {
		t.Skip(err)
	}
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil { // VmHWM := VmRSS
		t.Skip(err)
	}
	if _, err := QuantizeFolder(context.Background(), f[0], f[1], FolderOptions{Options: Options{Kind: kind}}); err != nil {
		t.Fatal(err)
	}
	peak, err := benchutil.StatusMiB("VmHWM")
	if err != nil {
		t.Skip(err)
	}
	fmt.Printf("rss-before-MiB=%.1f peak-MiB=%.1f\n", before, peak)
}
