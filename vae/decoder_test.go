package vae

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/half"
	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/internal/ort/orttest"
	"github.com/rflowrt/rflow/internal/testmodels"
)

// unscaleRef is z/s + t with each operation rounded once to float32, computed in float64 (exact
// for float32 operands), independent of how Go evaluates float32 expressions.
func unscaleRef(z, s, t float32) float32 {
	q := float32(float64(z) / float64(s))
	return float32(float64(q) + float64(t))
}

// TestDecodeFeedsUnscaledLatents checks, through a graph that echoes its input, the exact values
// Decode feeds the decoder: latents/scaling_factor + shift_factor in float32 (fp16 I/O: those
// values rounded to fp16), for the SD3 and FLUX factors.
func TestDecodeFeedsUnscaledLatents(t *testing.T) {
	for _, f := range []struct {
		name         string
		scale, shift float64
	}{{"sd3", 1.5305, 0.0609}, {"flux", 0.3611, 0.1159}} {
		for _, typ := range []onnx.DataType{onnx.Float, onnx.Float16} {
			d := loadDecoder(t, echoDecoder(t, typ), echoConfig(f.scale, f.shift, 3))
			const b, h, w = 2, 5, 7
			z := randLatents(11, b*3*h*w, 1.2)
			got, err := d.Decode(context.Background(), z, b, h, w)
			if err != nil {
				t.Fatal(err)
			}
			s, sh := float32(f.scale), float32(f.shift)
			reciprocal := 0 // values a multiply-by-reciprocal implementation would get wrong
			for i, v := range z {
				want := unscaleRef(v, s, sh)
				if typ == onnx.Float16 {
					want = half.ToFloat32(half.FromFloat32(want))
				}
				if got[i] != want {
					t.Fatalf("%s %v: latent %v fed as %v, want %v", f.name, typ, v, got[i], want)
				}
				if float32(float64(float32(v*(1/s)))+float64(sh)) != unscaleRef(v, s, sh) {
					reciprocal++
				}
			}
			t.Logf("%s %v: %d values exact (z·(1/s) + t would differ in %d)", f.name, typ, len(z), reciprocal)
		}
	}
}

func TestDecodeNonFinite(t *testing.T) {
	ctx := context.Background()
	d := loadDecoder(t, echoDecoder(t, onnx.Float), echoConfig(1.5305, 0.0609, 3))
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		z := randLatents(1, 2*3*4*4, 1)
		z[37] = bad
		for name, decode := range map[string]func() ([]float32, error){
			"Decode":      func() ([]float32, error) { return d.Decode(ctx, z, 2, 4, 4) },
			"DecodeTiled": func() ([]float32, error) { return d.DecodeTiled(ctx, z, 2, 4, 4, TileOptions{Tile: 2, Overlap: -1}) },
		} {
			_, err := decode()
			var nf *NonFiniteError
			if !errors.As(err, &nf) || nf.Stage != StageLatents || nf.Index != 37 || nf.Count != 1 {
				t.Errorf("%s with %v at 37: error %v, want a NonFiniteError at latents index 37", name, bad, err)
			}
		}
	}
	nd := loadDecoder(t, nanDecoder(t), echoConfig(1, 0, 3))
	z := randLatents(2, 3*2*2, 1)
	z[5] = 0 // 0/0 = NaN; the rest ±Inf
	_, err := nd.Decode(ctx, z, 1, 2, 2)
	var nf *NonFiniteError
	if !errors.As(err, &nf) || nf.Stage != StageDecode || nf.Index != 0 || nf.Count != len(z) {
		t.Fatalf("decoder output x/0: error %v, want a NonFiniteError at %q index 0 counting %d", err, StageDecode, len(z))
	}
	if !strings.Contains(err.Error(), "vae decode") {
		t.Errorf("error %q does not name the stage", err)
	}
	z[0] = 0
	if _, err := nd.Decode(ctx, z, 1, 2, 2); !errors.As(err, &nf) || !math.IsNaN(float64(nf.Value)) {
		t.Errorf("0/0: error %v, want NaN reported", err)
	}
}

func TestDecodeArguments(t *testing.T) {
	ctx := context.Background()
	d := loadDecoder(t, echoDecoder(t, onnx.Float), echoConfig(1, 0, 3))
	for _, c := range []struct {
		n, b, h, w int
	}{{12, 1, 2, 3}, {18, 1, 2, 2}, {0, 0, 2, 2}, {12, 1, -2, -2}, {12, 1 << 40, 1 << 40, 1}} {
		if _, err := d.Decode(ctx, make([]float32, c.n), c.b, c.h, c.w); err == nil {
			t.Errorf("%d values as [%d,3,%d,%d]: no error", c.n, c.b, c.h, c.w)
		}
	}
	var nilDec *Decoder
	if _, err := nilDec.Decode(ctx, nil, 1, 1, 1); err == nil {
		t.Error("nil decoder: no error")
	}
	if err := nilDec.Close(); err != nil {
		t.Error(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := d.Decode(cancelled, make([]float32, 12), 1, 2, 2); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: error %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := d.Decode(ctx, make([]float32, 12), 1, 2, 2); err == nil {
		t.Error("Decode after Close: no error")
	}
}

func TestLoadDecoderSignature(t *testing.T) {
	ctx, so := context.Background(), orttest.Options()
	two := onnx.NewBuilder("two_inputs", 17)
	x := two.Input("latent_sample", onnx.Float, nchw(3)...)
	y := two.Input("other", onnx.Float, nchw(3)...)
	two.Output(two.Op("Add", []string{x, y}), "sample", onnx.Float, nchw(3)...)
	ints := onnx.NewBuilder("ints", 17)
	ints.Output(ints.Input("latent_sample", onnx.Int64, nchw(3)...), "sample", onnx.Int64, nchw(3)...)
	rank3 := onnx.NewBuilder("rank3", 17)
	r3 := []onnx.Dim{onnx.Sym("b"), onnx.Fixed(3), onnx.Sym("n")}
	rank3.Output(rank3.Input("latent_sample", onnx.Float, r3...), "sample", onnx.Float, r3...)
	fixed := onnx.NewBuilder("fixed", 17)
	fx := fixed.Input("latent_sample", onnx.Float, onnx.Fixed(1), onnx.Fixed(3), onnx.Fixed(4), onnx.Fixed(4))
	fixed.Output(fx, "sample", onnx.Float, onnx.Fixed(1), onnx.Fixed(3), onnx.Fixed(4), onnx.Fixed(4))
	for _, c := range []struct {
		name string
		path string
		cfg  Config
	}{
		{"16 channels for a 3-channel graph", echoDecoder(t, onnx.Float), echoConfig(1, 0, 16)},
		{"an encoder (2 output channels)", echoEncoder(t), echoConfig(1, 0, 3)},
		{"two inputs", writeModel(t, two), echoConfig(1, 0, 3)},
		{"int64 I/O", writeModel(t, ints), echoConfig(1, 0, 3)},
		{"rank 3", writeModel(t, rank3), echoConfig(1, 0, 3)},
		{"fixed sizes that contradict the factor", writeModel(t, fixed), Config{ScalingFactor: 1, LatentChannels: 3, ScaleFactor: 8}},
	} {
		_, err := LoadDecoder(ctx, c.path, so, c.cfg)
		if !errors.Is(err, ErrSignature) {
			t.Errorf("%s: error %v, want ErrSignature", c.name, err)
		}
	}
	if _, err := LoadDecoder(ctx, echoDecoder(t, onnx.Float), so, Config{}); err == nil || errors.Is(err, ErrSignature) {
		t.Errorf("zero config: error %v, want a config error", err)
	}
	if _, err := LoadDecoder(ctx, filepath.Join(t.TempDir(), "none.onnx"), so, echoConfig(1, 0, 3)); err == nil {
		t.Error("missing model: no error")
	}
}

// TestDecodeWrongFactor: a config whose spatial factor the graph does not have fails cleanly.
func TestDecodeWrongFactor(t *testing.T) {
	d := loadDecoder(t, echoDecoder(t, onnx.Float), Config{ScalingFactor: 1, LatentChannels: 3, ScaleFactor: 2})
	_, err := d.Decode(context.Background(), make([]float32, 3*4*4), 1, 4, 4)
	if err == nil || !strings.Contains(err.Error(), "vae decode") {
		t.Fatalf("echo graph with spatial factor 2 in the config: error %v", err)
	}
	t.Log(err)
}

// TestDecodeFixedBatch runs a batch of 3 through an export whose batch size is fixed at 1.
func TestDecodeFixedBatch(t *testing.T) {
	b := onnx.NewBuilder("fixed_batch", 17)
	dims := []onnx.Dim{onnx.Fixed(1), onnx.Fixed(3), onnx.Sym("h"), onnx.Sym("w")}
	b.Output(b.Input("latent_sample", onnx.Float, dims...), "sample", onnx.Float, dims...)
	d := loadDecoder(t, writeModel(t, b), echoConfig(2, 0.5, 3))
	z := randLatents(4, 3*3*2*5, 1)
	got, err := d.Decode(context.Background(), z, 3, 2, 5)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range z {
		if want := unscaleRef(v, 2, 0.5); got[i] != want {
			t.Fatalf("value %d: %v, want %v", i, got[i], want)
		}
	}
}

// rawRun runs a one-input, one-output model on x and returns its output.
func rawRun(t *testing.T, path string, x []float32, in, out []int64) []float32 {
	t.Helper()
	s, err := ort.NewSession(context.Background(), path, orttest.Options())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	it, err := s.NewInput(s.Inputs()[0].Name, in...)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Destroy()
	ot, err := s.NewOutput(s.Outputs()[0].Name, out...)
	if err != nil {
		t.Fatal(err)
	}
	defer ot.Destroy()
	if err := it.SetFloat32(x); err != nil {
		t.Fatal(err)
	}
	if err := s.Run(context.Background(), []*ort.Tensor{it}, []*ort.Tensor{ot}); err != nil {
		t.Fatal(err)
	}
	res := make([]float32, ot.Len())
	if err := ot.ReadFloat32(res); err != nil {
		t.Fatal(err)
	}
	return res
}

// fixtureCases are the tiny AutoencoderKL fixtures: SD3 factors with fp32 I/O, FLUX factors with
// fp16 I/O.
var fixtureCases = []struct {
	kind         testmodels.Kind
	prec         onnx.DataType
	scale, shift float64
	tol          float64 // batch-item independence
}{
	{testmodels.KindSD3, onnx.Float, 1.5305, 0.0609, 1e-5},
	{testmodels.KindFluxSchnell, onnx.Float16, 0.3611, 0.1159, 2e-3},
}

func fixtureDir(t *testing.T, kind testmodels.Kind, prec onnx.DataType) string {
	return testmodels.Cached(t, testmodels.Options{Kind: kind, Size: testmodels.SizeTiny, Precision: prec})
}

// fixtureDecoder is the path of a tiny fixture's vae_decoder model and its config.
func fixtureDecoder(t *testing.T, kind testmodels.Kind, prec onnx.DataType) (string, Config) {
	t.Helper()
	dir := filepath.Join(fixtureDir(t, kind, prec), "vae_decoder")
	cfg, err := ReadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "model.onnx"), cfg
}

func TestDecodeFixture(t *testing.T) {
	ctx := context.Background()
	for _, fc := range fixtureCases {
		path, cfg := fixtureDecoder(t, fc.kind, fc.prec)
		if cfg.ScalingFactor != fc.scale || cfg.ShiftFactor != fc.shift || cfg.LatentChannels != 16 || cfg.ScaleFactor != 8 {
			t.Fatalf("%s: config %+v", fc.kind, cfg)
		}
		// whole, to compare with the graph bit for bit (TestStreamedDecodeMatchesWhole covers streaming)
		d, err := LoadWholeDecoder(ctx, path, orttest.Options(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		const b, h, w = 2, 4, 6
		z := randLatents(5, b*16*h*w, 1)
		got, err := d.Decode(ctx, z, b, h, w)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != b*3*8*h*8*w {
			t.Fatalf("%s: %d values, want [2,3,32,48]", fc.kind, len(got))
		}
		again, err := d.Decode(ctx, z, b, h, w)
		if err != nil {
			t.Fatal(err)
		}
		if m := maxAbsDiff(got, again); m != 0 {
			t.Errorf("%s: two decodes differ by %g", fc.kind, m)
		}
		in := make([]float32, len(z))
		cfg.Unscale(in, z)
		raw := rawRun(t, path, in, []int64{b, 16, h, w}, []int64{b, 3, 8 * h, 8 * w})
		if m := maxAbsDiff(got, raw); m != 0 {
			t.Errorf("%s: Decode differs from the graph on unscaled latents by %g", fc.kind, m)
		}
		n := 16 * h * w
		one, err := d.Decode(ctx, z[n:], 1, h, w)
		if err != nil {
			t.Fatal(err)
		}
		if m := maxAbsDiff(one, got[len(got)/2:]); m > fc.tol {
			t.Errorf("%s: item 1 alone differs from item 1 in the batch by %g", fc.kind, m)
		}
	}
}
