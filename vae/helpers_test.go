package vae

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/rflowrt/rflow/assets"
	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/ort/orttest"
)

func TestMain(m *testing.M) { orttest.Main(m) }

// Small graphs with the Optimum I/O names whose outputs are simple functions of their inputs.

func writeModel(t testing.TB, b *onnx.Builder) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "model.onnx")
	if err := b.Model().WriteFile(path, onnx.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return path
}

func nchw(ch int64) []onnx.Dim {
	return []onnx.Dim{onnx.Sym("batch_size"), onnx.Fixed(ch), onnx.Sym("height"), onnx.Sym("width")}
}

// echoDecoder's sample is its latent_sample ([B, 3, h, w], spatial factor 1): Decode returns exactly
// what it fed the graph.
func echoDecoder(t testing.TB, typ onnx.DataType) string {
	b := onnx.NewBuilder("echo_decoder", 17)
	x := b.Input("latent_sample", typ, nchw(3)...)
	b.Output(x, "sample", typ, nchw(3)...)
	return writeModel(t, b)
}

// nanDecoder divides its input by zero.
func nanDecoder(t testing.TB) string {
	b := onnx.NewBuilder("nan_decoder", 17)
	x := b.Input("latent_sample", onnx.Float, nchw(3)...)
	zero := b.Initializer(onnx.Float32Tensor("zero", []int64{1}, []float32{0}))
	b.Output(b.Op("Div", []string{x, zero}), "sample", onnx.Float, nchw(3)...)
	return writeModel(t, b)
}

// localDecoder is a pointwise decoder: a 1×1 convolution from c channels to 3, then nearest
// upsampling by sf. Its receptive field is one latent, so tiled decoding must equal untiled.
func localDecoder(t testing.TB, c, sf int) string {
	b := onnx.NewBuilder("local_decoder", 17)
	x := b.Input("latent_sample", onnx.Float, nchw(int64(c))...)
	r := rand.New(rand.NewPCG(7, 8))
	wts := make([]float32, 3*c)
	for i := range wts {
		wts[i] = float32(r.NormFloat64() / 4)
	}
	wt := b.Initializer(onnx.Float32Tensor("w", []int64{3, int64(c), 1, 1}, wts))
	bias := b.Initializer(onnx.Float32Tensor("b", []int64{3}, []float32{0.1, -0.2, 0.05}))
	conv := b.Op("Conv", []string{x, wt, bias})
	scales := b.Initializer(onnx.Float32Tensor("scales", []int64{4}, []float32{1, 1, float32(sf), float32(sf)}))
	up := b.Op("Resize", []string{conv, "", scales}, onnx.AttrString("mode", "nearest"),
		onnx.AttrString("coordinate_transformation_mode", "asymmetric"), onnx.AttrString("nearest_mode", "floor"))
	b.Output(up, "sample", onnx.Float, nchw(3)...)
	return writeModel(t, b)
}

// echoEncoder's latent_parameters are channels 0 (mean) and 1 (logvar) of its sample ([B, 2, H, W],
// one latent channel, spatial factor 1).
func echoEncoder(t testing.TB) string {
	b := onnx.NewBuilder("echo_encoder", 17)
	x := b.Input("sample", onnx.Float, nchw(3)...)
	i64 := func(name string, v int64) string {
		return b.Initializer(onnx.Int64Tensor(name, []int64{1}, []int64{v}))
	}
	sl := b.Op("Slice", []string{x, i64("start", 0), i64("end", 2), i64("axis", 1)})
	b.Output(sl, "latent_parameters", onnx.Float, nchw(2)...)
	return writeModel(t, b)
}

// echoConfig is the latent space of the echo graphs with the given factors.
func echoConfig(scale, shift float64, channels int) Config {
	return Config{ScalingFactor: scale, ShiftFactor: shift, LatentChannels: channels, ScaleFactor: 1}
}

func loadDecoder(t testing.TB, path string, cfg Config) *Decoder {
	t.Helper()
	d, err := LoadDecoder(context.Background(), path, orttest.Options(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func loadEncoder(t testing.TB, path string, cfg Config) *Encoder {
	t.Helper()
	e, err := LoadEncoder(context.Background(), path, orttest.Options(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// demoDir extracts the demo-sd3 model (a few kilobytes) into a temporary folder.
func demoDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := assets.Extract("demo-sd3", dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func demoDecoder(t testing.TB) *Decoder {
	t.Helper()
	dir := filepath.Join(demoDir(t), "vae_decoder")
	cfg, err := ReadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	return loadDecoder(t, filepath.Join(dir, "model.onnx"), cfg)
}

func demoEncoder(t testing.TB) *Encoder {
	t.Helper()
	dir := filepath.Join(demoDir(t), "vae_encoder")
	cfg, err := ReadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	return loadEncoder(t, filepath.Join(dir, "model.onnx"), cfg)
}

func randLatents(seed uint64, n int, std float64) []float32 {
	r := rand.New(rand.NewPCG(seed, 99))
	z := make([]float32, n)
	for i := range z {
		z[i] = float32(std * r.NormFloat64())
	}
	return z
}

// maxAbsDiff is max |a − b| (+Inf on a length mismatch).
func maxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	m := 0.0
	for i := range a {
		m = max(m, math.Abs(float64(a[i]-b[i])))
	}
	return m
}

func meanAbsDiff(a, b []float32) float64 {
	s := 0.0
	for i := range a {
		s += math.Abs(float64(a[i] - b[i]))
	}
	return s / float64(len(a))
}
