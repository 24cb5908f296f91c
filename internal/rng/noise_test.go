package rng

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestParseKind(t *testing.T) {
	for in, want := range map[string]Kind{"": TorchCPU, "torch-cpu": TorchCPU, "philox": Philox} {
		if k, err := ParseKind(in); err != nil || k != want {
			t.Errorf("ParseKind(%q) = %q, %v; want %q", in, k, err, want)
		}
	}
	if got := Kinds(); !slices.Equal(got, []Kind{TorchCPU, Philox}) {
		t.Errorf("Kinds() = %v", got)
	}
	for _, bad := range []string{"cuda", "cpu", "Torch-CPU", " philox"} {
		_, err := ParseKind(bad)
		if !errors.Is(err, ErrUnknownKind) {
			t.Fatalf("ParseKind(%q) error = %v, want ErrUnknownKind", bad, err)
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "rng: ") || !strings.Contains(msg, "(valid: torch-cpu, philox)") {
			t.Errorf("ParseKind(%q) error %q does not name the package and the valid kinds", bad, msg)
		}
		if _, err := New(Kind(bad), 0); !errors.Is(err, ErrUnknownKind) {
			t.Errorf("New(%q) error = %v, want ErrUnknownKind", bad, err)
		}
	}
	for _, k := range []Kind{"", TorchCPU, Philox} {
		src, err := New(k, 1)
		if err != nil {
			t.Fatal(err)
		}
		want := Source(NewTorchCPU(1))
		if k == Philox {
			want = NewPhilox(1)
		}
		a, b := make([]float32, 20), make([]float32, 20)
		src.Randn(a)
		want.Randn(b)
		if !slices.Equal(a, b) {
			t.Errorf("New(%q, 1) draws %v, want %v", k, a[:2], b[:2])
		}
	}
}

func TestParseBatchMode(t *testing.T) {
	for in, want := range map[string]BatchMode{"": OneGenerator, "one-generator": OneGenerator, "seed-per-image": SeedPerImage} {
		if m, err := ParseBatchMode(in); err != nil || m != want {
			t.Errorf("ParseBatchMode(%q) = %v, %v; want %v", in, m, err, want)
		}
	}
	for _, m := range BatchModes() {
		if back, err := ParseBatchMode(m.String()); err != nil || back != m {
			t.Errorf("ParseBatchMode(%q) = %v, %v", m.String(), back, err)
		}
	}
	_, err := ParseBatchMode("per-image")
	if !errors.Is(err, ErrUnknownBatchMode) || !strings.Contains(err.Error(), "(valid: one-generator, seed-per-image)") {
		t.Errorf("ParseBatchMode(per-image) error = %v", err)
	}
	if s := BatchMode(7).String(); s != "BatchMode(7)" {
		t.Errorf("BatchMode(7).String() = %q", s)
	}
}

func TestNoiseBatchModes(t *testing.T) {
	for _, k := range Kinds() {
		for _, shape := range [][]int{{2, 4, 8, 8}, {3, 1, 2, 2}, {3, 17}, {1, 16, 4, 4}} {
			n := 1
			for _, d := range shape {
				n *= d
			}
			one, err := Noise(k, 100, shape, OneGenerator)
			if err != nil {
				t.Fatal(err)
			}
			src, _ := New(k, 100)
			want := make([]float32, n)
			src.Randn(want)
			checkBits(t, string(k)+" one-generator", one, bitsOf(want), 0)

			per, err := Noise(k, 100, shape, SeedPerImage)
			if err != nil {
				t.Fatal(err)
			}
			img := n / shape[0]
			for i := range shape[0] {
				src, _ := New(k, 100+uint64(i))
				want := make([]float32, img)
				src.Randn(want)
				checkBits(t, string(k)+" seed-per-image", per[i*img:(i+1)*img], bitsOf(want), i*img)
			}
		}
	}
	// With batch 1 both modes are the same draw.
	a, _ := Noise(TorchCPU, 3, []int{1, 4, 8, 8}, OneGenerator)
	b, _ := Noise(TorchCPU, 3, []int{1, 4, 8, 8}, SeedPerImage)
	if !slices.Equal(a, b) {
		t.Error("batch-1 noise depends on the batch mode")
	}
}

func TestNoiseErrors(t *testing.T) {
	for _, c := range []struct {
		shape []int
		msg   string
	}{
		{nil, "no dimensions"},
		{[]int{1, 0, 8, 8}, "dimension 1 is 0, want ≥ 1"},
		{[]int{-2, 4}, "dimension 0 is -2"},
		{[]int{2, 1<<30 + 1}, "more than 2147483648 values"},
		{[]int{1 << 16, 1 << 16}, "more than 2147483648 values"},
		{[]int{math.MaxInt, math.MaxInt, 2}, "more than 2147483648 values"},
	} {
		_, err := Noise(TorchCPU, 0, c.shape, OneGenerator)
		var se *ShapeError
		if !errors.As(err, &se) {
			t.Fatalf("Noise(shape %v) error = %v, want *ShapeError", c.shape, err)
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "rng: noise shape ") || !strings.Contains(msg, c.msg) {
			t.Errorf("Noise(shape %v) error %q, want it to say %q", c.shape, msg, c.msg)
		}
	}
	if _, err := Noise("cuda", 0, []int{1, 4}, OneGenerator); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("Noise(kind cuda) error = %v, want ErrUnknownKind", err)
	}
	if _, err := Noise(Philox, 0, []int{1, 4}, BatchMode(2)); !errors.Is(err, ErrUnknownBatchMode) {
		t.Errorf("Noise(mode 2) error = %v, want ErrUnknownBatchMode", err)
	}
	if v, err := Noise("", 0, []int{1}, OneGenerator); err != nil || len(v) != 1 {
		t.Errorf("Noise(zero kind, [1]) = %v, %v", v, err)
	}
}
