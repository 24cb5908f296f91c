package vae

import (
	"context"
	"errors"
	"math"
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

// TestTensorAccount: the per-channel sums of a blocked tensor, taken over goroutines for large blocks,
// are the plain float64 sums of each channel's values.
func TestTensorAccount(t *testing.T) {
	const c, h, w, r = 64, 70, 64, 32 // blocks of 131072 values, split among goroutines; a short last block
	x, err := newTensor(c, h, w, r)
	if err != nil {
		t.Fatal(err)
	}
	defer x.buf.release()
	z := randLatents(11, c*h*w, 3)
	copy(x.buf.f, z)
	for b := range x.blocks() {
		x.account(b)
	}
	for ch := range c {
		var s, q float64
		for b := range x.blocks() {
			n := x.rowsIn(b) * w
			for _, v := range x.block(b)[ch*n : (ch+1)*n] {
				s, q = s+float64(v), q+float64(v)*float64(v)
			}
		}
		if math.Abs(s-x.sum[ch]) > 1e-9*math.Max(1, math.Abs(s)) || math.Abs(q-x.sumSq[ch]) > 1e-9*q {
			t.Fatalf("channel %d: sums %g, %g; want %g, %g", ch, x.sum[ch], x.sumSq[ch], s, q)
		}
	}
}

// TestInterleave: row 2i+a, column 2j+b of the upsampled block is phase (a, b)'s row i+a, column j,
// also when the channels are split among goroutines.
func TestInterleave(t *testing.T) {
	for _, s := range []struct{ c, n, w int }{{3, 2, 5}, {64, 16, 128}} {
		phase := s.c * (s.n + 1) * s.w
		phases := randLatents(5, 4*phase, 1)
		dst := make([]float32, s.c*2*s.n*2*s.w)
		interleave(dst, phases, s.c, s.n, s.w)
		for ch := range s.c {
			for y := range 2 * s.n {
				for x := range 2 * s.w {
					i, a, j, b := y/2, y%2, x/2, x%2
					want := phases[(2*a+b)*phase+(ch*(s.n+1)+i+a)*s.w+j]
					if got := dst[(ch*2*s.n+y)*2*s.w+x]; got != want {
						t.Fatalf("%+v: channel %d (%d, %d) = %g, want %g", s, ch, y, x, got, want)
					}
				}
			}
		}
	}
}
