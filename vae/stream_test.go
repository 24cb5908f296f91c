package vae

import (
	"context"
	"errors"
	"testing"

	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/ort/orttest"
	"github.com/rflowrt/rflow/internal/testmodels"
)

// TestStreamedDecodeMatchesWhole decodes the tiny fixtures (a width change, so a conv_shortcut, in
// the last up block; fp32 and fp16 I/O) streamed and whole: the streamed pixels must be the whole
// graph's up to float32 rounding, in blocks of every height and for odd sizes.
func TestStreamedDecodeMatchesWhole(t *testing.T) {
	ctx := context.Background()
	for _, fc := range fixtureCases {
		path, cfg := fixtureDecoder(t, fc.kind, fc.prec)
		streamed := loadDecoder(t, path, cfg)
		if streamed.s == nil {
			t.Fatalf("%s: the compiled fixture's decoder is not streamed", fc.kind)
		}
		whole, err := LoadWholeDecoder(ctx, path, orttest.Options(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer whole.Close()
		// blocks (each level has its own height) of 1 row, of 2 to 24 rows with a shorter last one, an
		// upsampler's strips straddling its input's blocks (14-row blocks read 3 rows at a time), and
		// whole: every halo, the upsamplers' row phases, the shortcut written over the ResNet's input
		// and the pages given back cross block borders
		for _, sz := range []struct{ b, h, w, strip int }{
			{2, 4, 6, stripValues}, {1, 5, 3, stripValues}, {2, 4, 6, 1}, {1, 3, 7, 40 * 32},
			{1, 5, 3, 2 * 6144}, {1, 5, 3, 3 * 6144}, {2, 4, 6, 4608}, {1, 8, 2, 3584}, {1, 16, 16, 8 * 32 * 128},
		} {
			streamed.s.strip = sz.strip
			z := randLatents(9, sz.b*16*sz.h*sz.w, 1)
			want, err := whole.Decode(ctx, z, sz.b, sz.h, sz.w)
			if err != nil {
				t.Fatal(err)
			}
			got, err := streamed.Decode(ctx, z, sz.b, sz.h, sz.w)
			if err != nil {
				t.Fatal(err)
			}
			// fp16 I/O: the whole graph rounds its output to float16, the stream does not
			tol := 2e-5
			if fc.prec == onnx.Float16 {
				tol = 2e-3
			}
			if m := maxAbsDiff(got, want); m > tol {
				t.Errorf("%s %+v: streamed differs from whole by %g (tolerance %g)", fc.kind, sz, m, tol)
			} else {
				t.Logf("%s %+v: max |streamed − whole| %.2g", fc.kind, sz, m)
			}
		}
	}
}

// TestStreamedDecodeCancelled: a cancelled context stops a streamed decode with its error.
func TestStreamedDecodeCancelled(t *testing.T) {
	path, cfg := fixtureDecoder(t, testmodels.KindSD3, onnx.Float)
	d := loadDecoder(t, path, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Decode(ctx, randLatents(3, 16*4*4, 1), 1, 4, 4); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled decode: %v, want context.Canceled", err)
	}
}
