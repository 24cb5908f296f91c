package rng

import (
	"fmt"
	"math"
	"strings"
)

// BatchMode says how a batch of images gets its noise. The zero value is [OneGenerator].
type BatchMode int

const (
	// OneGenerator draws the whole (B, C, H, W) tensor with one Randn call from one generator
	// seeded once: diffusers with a single generator, ComfyUI's initial noise
	// (flow-sampling.md §6.4, §9 item 6). Image 0 of a batch therefore equals a batch-1 run only
	// for the Philox kind; for torch-cpu the stream runs on through all images.
	OneGenerator BatchMode = iota
	// SeedPerImage draws image i from a fresh generator seeded seed+i, with one Randn over
	// C·H·W values: A1111 and stable-diffusion.cpp batch counts, and diffusers given a list of
	// generators seeded seed, seed+1, … (randn_tensor draws one (1, C, H, W) tensor per
	// generator, §7). Each image equals the batch-1 run of its own seed.
	SeedPerImage
)

var batchModeNames = [...]string{OneGenerator: "one-generator", SeedPerImage: "seed-per-image"}

// BatchModes lists the batch modes, default first (for --help; String gives each name).
func BatchModes() []BatchMode { return []BatchMode{OneGenerator, SeedPerImage} }

// String returns the mode's name as [ParseBatchMode] accepts it.
func (m BatchMode) String() string {
	if m >= 0 && int(m) < len(batchModeNames) {
		return batchModeNames[m]
	}
	return fmt.Sprintf("BatchMode(%d)", int(m))
}

// ParseBatchMode resolves a batch-mode name: "one-generator" or "seed-per-image"; the empty
// string means [OneGenerator]. An unknown name is an error wrapping [ErrUnknownBatchMode] that
// lists the valid names.
func ParseBatchMode(s string) (BatchMode, error) {
	if s == "" {
		return OneGenerator, nil
	}
	for _, m := range BatchModes() {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("rng: %w %q (valid: %s)", ErrUnknownBatchMode, s, strings.Join(batchModeNames[:], ", "))
}

// MaxValues is the most values [Noise] draws in one tensor (2^31).
const MaxValues = 1 << 31

// ShapeError reports a noise shape that [Noise] cannot draw: no dimensions, a dimension below 1,
// or more than [MaxValues] values in all.
type ShapeError struct {
	Shape  []int
	Reason string // what is wrong, e.g. "dimension 1 is 0, want ≥ 1"
}

func (e *ShapeError) Error() string {
	return fmt.Sprintf("rng: noise shape %v: %s", e.Shape, e.Reason)
}

// checkShape returns the number of values in shape, or a *ShapeError. The running product is
// kept in int64 and checked against MaxValues at every step, so it cannot overflow.
func checkShape(shape []int) (int, error) {
	if len(shape) == 0 {
		return 0, &ShapeError{Shape: shape, Reason: "no dimensions, want at least the batch dimension"}
	}
	n := int64(1)
	for i, d := range shape {
		if d < 1 {
			return 0, &ShapeError{Shape: shape, Reason: fmt.Sprintf("dimension %d is %d, want ≥ 1", i, d)}
		}
		if int64(d) > MaxValues/n {
			return 0, &ShapeError{Shape: shape, Reason: fmt.Sprintf("more than %d values", int64(MaxValues))}
		}
		n *= int64(d)
	}
	if n > math.MaxInt { // 32-bit platforms
		return 0, &ShapeError{Shape: shape, Reason: fmt.Sprintf("%d values do not fit in an int", n)}
	}
	return int(n), nil
}

// Noise returns standard normal noise of the given shape in row-major (NCHW) order, drawn by a
// generator of kind k (the zero Kind means [TorchCPU]) seeded with seed; shape[0] is the batch.
// Under [OneGenerator] the whole tensor is one Randn call; under [SeedPerImage] image i is
// New(k, seed+i)'s Randn over the other dimensions (seed+i wraps around at 2^64). The shape must
// have at least one dimension, every dimension ≥ 1 and at most [MaxValues] values in all
// (*ShapeError otherwise); an unknown kind or mode is an error wrapping [ErrUnknownKind] or
// [ErrUnknownBatchMode].
func Noise(k Kind, seed uint64, shape []int, mode BatchMode) ([]float32, error) {
	k, err := ParseKind(string(k))
	if err != nil {
		return nil, err
	}
	if mode != OneGenerator && mode != SeedPerImage {
		return nil, fmt.Errorf("rng: %w %v (valid: %s)", ErrUnknownBatchMode, mode, strings.Join(batchModeNames[:], ", "))
	}
	n, err := checkShape(shape)
	if err != nil {
		return nil, err
	}
	out := make([]float32, n)
	if mode == OneGenerator {
		src, _ := New(k, seed) // k is valid
		src.Randn(out)
		return out, nil
	}
	per := n / shape[0]
	for i := range shape[0] {
		src, _ := New(k, seed+uint64(i))
		src.Randn(out[i*per : (i+1)*per])
	}
	return out, nil
}
