package vae

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"testing"

	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/ort/orttest"
)

// TestEncodeEcho checks Encode's arithmetic through a graph whose mean and log-variance are the
// input's first two channels: the clamp of logvar to [−30, 20], mean + exp(logvar/2)·ε in float32,
// then (z − shift)·scale in float32.
func TestEncodeEcho(t *testing.T) {
	const b, H, W = 2, 3, 4
	n := H * W
	cfg := echoConfig(0.3611, 0.1159, 1)
	e := loadEncoder(t, echoEncoder(t), cfg)
	px := randLatents(3, b*3*n, 1)
	logvars := []float32{-40, -30, -29.5, -3, 0, 1.5, 19, 20, 25, -1, 2, 0.25} // clamps at both ends
	for i := range b {
		copy(px[(3*i+1)*n:], logvars)
	}
	eps := randLatents(4, b*n, 1)
	calls := 0
	noise := func(dst []float32) {
		calls++
		if len(dst) != b*n {
			t.Fatalf("noise buffer of %d values, want %d", len(dst), b*n)
		}
		copy(dst, eps)
	}
	ctx := context.Background()
	sample, err := e.Encode(ctx, px, b, H, W, EncodeSample, noise)
	if err != nil {
		t.Fatal(err)
	}
	mean, err := e.Encode(ctx, px, b, H, W, EncodeMean, noise)
	if err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Errorf("noise called %d times, want once (and not for EncodeMean)", calls)
	}
	s, sh := float32(0.3611), float32(0.1159)
	scaleRef := func(z float32) float32 { return float32(float64(float32(float64(z)-float64(sh))) * float64(s)) }
	for i := range b {
		for k := range n {
			mu, lv := px[3*i*n+k], px[(3*i+1)*n+k]
			lv = float32(math.Min(math.Max(float64(lv), -30), 20))
			std := float32(math.Exp(float64(lv) / 2))
			z := float32(float64(mu) + float64(float32(float64(std)*float64(eps[i*n+k]))))
			if got, want := sample[i*n+k], scaleRef(z); got != want {
				t.Errorf("item %d value %d (mean %v, logvar %v): sample %v, want %v", i, k, mu, px[(3*i+1)*n+k], got, want)
			}
			if got, want := mean[i*n+k], scaleRef(mu); got != want {
				t.Errorf("item %d value %d: mean %v, want %v", i, k, got, want)
			}
		}
	}
	zero, err := e.Encode(ctx, px, b, H, W, EncodeSample, func(dst []float32) { clear(dst) })
	if err != nil {
		t.Fatal(err)
	}
	if m := maxAbsDiff(zero, mean); m != 0 {
		t.Errorf("EncodeSample with zero noise differs from EncodeMean by %g", m)
	}
}

func TestEncodeErrors(t *testing.T) {
	ctx := context.Background()
	e := loadEncoder(t, echoEncoder(t), echoConfig(1, 0, 1))
	px := randLatents(1, 3*2*2, 1)
	if _, err := e.Encode(ctx, px, 1, 2, 2, EncodeSample, nil); err == nil {
		t.Error("EncodeSample without noise: no error")
	}
	if _, err := e.Encode(ctx, px, 1, 2, 2, EncodeMode(7), nil); err == nil {
		t.Error("unknown mode: no error")
	}
	if _, err := e.Encode(ctx, px, 1, 2, 3, EncodeMean, nil); err == nil {
		t.Error("wrong length: no error")
	}
	var nf *NonFiniteError
	bad := append([]float32(nil), px...)
	bad[3] = float32(math.NaN())
	if _, err := e.Encode(ctx, bad, 1, 2, 2, EncodeMean, nil); !errors.As(err, &nf) || nf.Stage != StagePixels || nf.Index != 3 {
		t.Errorf("NaN pixel: error %v", err)
	}
	bad[3] = 1e30 // logvar channel: fine, clamped; mean channel below
	bad[0] = float32(math.Inf(1))
	if _, err := e.Encode(ctx, bad, 1, 2, 2, EncodeMean, nil); !errors.As(err, &nf) || nf.Stage != StagePixels {
		t.Errorf("Inf pixel: error %v", err)
	}
	inf := func(dst []float32) { dst[1] = float32(math.Inf(-1)) }
	if _, err := e.Encode(ctx, px, 1, 2, 2, EncodeSample, inf); !errors.As(err, &nf) || nf.Stage != "noise" || nf.Index != 1 {
		t.Errorf("−Inf noise: error %v", err)
	}
	if s := EncodeSample.String() + EncodeMean.String() + EncodeMode(9).String(); s != "samplemeanEncodeMode(9)" {
		t.Errorf("String: %q", s)
	}
	demo := demoEncoder(t)
	if _, err := demo.Encode(ctx, make([]float32, 3*12*12), 1, 12, 12, EncodeMean, nil); err == nil {
		t.Error("12×12 pixels with spatial factor 8: no error")
	}
	if _, err := LoadEncoder(ctx, echoEncoder(t), orttest.Options(), echoConfig(1, 0, 2)); !errors.Is(err, ErrSignature) {
		t.Errorf("2 latent channels for a 1-channel encoder: error %v, want ErrSignature", err)
	}
	if _, err := LoadEncoder(ctx, echoDecoder(t, onnx.Float), orttest.Options(), echoConfig(1, 0, 1)); !errors.Is(err, ErrSignature) {
		t.Errorf("a decoder as encoder: error %v, want ErrSignature", err)
	}
}

func TestEncodeFixture(t *testing.T) {
	ctx := context.Background()
	for _, fc := range fixtureCases {
		dir := filepath.Join(fixtureDir(t, fc.kind, fc.prec), "vae_encoder")
		cfg, err := ReadConfig(dir)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "model.onnx")
		e := loadEncoder(t, path, cfg)
		const b, H, W = 2, 32, 48
		px := randLatents(6, b*3*H*W, 0.5)
		mean, err := e.Encode(ctx, px, b, H, W, EncodeMean, nil)
		if err != nil {
			t.Fatal(err)
		}
		const h, w = H / 8, W / 8
		n := 16 * h * w
		if len(mean) != b*n {
			t.Fatalf("%s: %d latents, want [2,16,4,6]", fc.kind, len(mean))
		}
		if err := CheckFinite("latents", mean); err != nil {
			t.Fatal(err)
		}
		params := rawRun(t, path, px, []int64{b, 3, H, W}, []int64{b, 32, h, w})
		eps := randLatents(7, b*n, 1)
		sample, err := e.Encode(ctx, px, b, H, W, EncodeSample, func(dst []float32) { copy(dst, eps) })
		if err != nil {
			t.Fatal(err)
		}
		s, sh := float32(fc.scale), float32(fc.shift)
		for i := range b {
			for k := range n {
				mu, lv := params[2*i*n+k], params[(2*i+1)*n+k]
				if got, want := mean[i*n+k], (mu-sh)*s; got != want {
					t.Fatalf("%s: mean latent %d = %v, want (%v − %v)·%v = %v", fc.kind, i*n+k, got, mu, sh, s, want)
				}
				std := float32(math.Exp(float64(min(max(lv, -30), 20)) / 2))
				z := mu + float32(std*eps[i*n+k])
				if got, want := sample[i*n+k], (z-sh)*s; got != want {
					t.Fatalf("%s: sampled latent %d = %v, want %v", fc.kind, i*n+k, got, want)
				}
			}
		}
		again, err := e.Encode(ctx, px, b, H, W, EncodeMean, nil)
		if err != nil {
			t.Fatal(err)
		}
		if m := maxAbsDiff(mean, again); m != 0 {
			t.Errorf("%s: two encodes differ by %g", fc.kind, m)
		}
	}
}
