// Package rng draws the initial-noise tensors of the reference text-to-image pipelines, bit for
// bit where that is possible.
//
// Two generators are provided (flow-sampling.md §7):
//
//   - [TorchCPU] ("torch-cpu") is torch's CPU generator: torch.manual_seed(s) followed by
//     torch.randn(shape) in float32 on an x86 build (MT19937, 24-bit uniforms, the AVX2+FMA
//     Box–Muller of normal_fill_AVX2 for 16 or more values, normal_distribution<double> below 16).
//     It is what diffusers' randn_tensor uses with a CPU generator and what ComfyUI uses for
//     its initial noise. Outputs match torch exactly (§7.8, §8.6).
//   - [Philox] ("philox") is the emulation of torch's CUDA generator that A1111 ("NV" RNG) and
//     stable-diffusion.cpp (--rng cuda) implement: Philox4x32-10 + Box–Muller, one
//     subsequence per element (§7.7). It is close to, not bit-equal with, real CUDA torch.
//
// A [Source] continues its stream across calls the way a torch Generator does, so drawing
// randn(3), randn(20) and randn(5) from one Source gives what the same three torch calls give.
// [Noise] builds a whole NCHW batch under either batch convention ([BatchMode]).
//
// The package uses only the standard library and is deterministic on every platform: the float32
// arithmetic of the x86 kernel, its fused multiply-adds included, is reproduced in portable Go
// (see fma32), not taken from the host's vector unit.
package rng

import (
	"errors"
	"fmt"
	"strings"
)

// Source draws standard normal float32 noise; its stream continues across calls like a torch
// Generator. A Source is not safe for concurrent use.
type Source interface {
	// Randn fills dst with what torch.randn(len(dst)) would return from this generator's current
	// state, and advances the state past it as the emulated implementation does (see each
	// generator's Randn).
	Randn(dst []float32)
}

// Kind names a noise generator.
type Kind string

// The generator kinds. The zero Kind ("") means [TorchCPU].
const (
	TorchCPU Kind = "torch-cpu" // torch CPU generator, bit-exact (x86 AVX2+FMA build)
	Philox   Kind = "philox"    // A1111 "NV" / sd.cpp "cuda" emulation of torch's CUDA generator
)

// Errors that callers can match with errors.Is.
var (
	ErrUnknownKind      = errors.New("unknown generator kind")
	ErrUnknownBatchMode = errors.New("unknown batch mode")
)

// Kinds lists the generator kinds, default first (for --help).
func Kinds() []Kind { return []Kind{TorchCPU, Philox} }

// ParseKind resolves a generator name. The empty string means [TorchCPU]; an unknown name is an
// error wrapping [ErrUnknownKind] that lists the valid names.
func ParseKind(s string) (Kind, error) {
	if s == "" {
		return TorchCPU, nil
	}
	for _, k := range Kinds() {
		if string(k) == s {
			return k, nil
		}
	}
	names := make([]string, 0, 2)
	for _, k := range Kinds() {
		names = append(names, string(k))
	}
	return "", fmt.Errorf("rng: %w %q (valid: %s)", ErrUnknownKind, s, strings.Join(names, ", "))
}

// New returns a fresh generator of kind k seeded with seed. The zero Kind means [TorchCPU]. See
// [NewTorchCPU] and [NewPhilox] for how each kind uses the seed.
func New(k Kind, seed uint64) (Source, error) {
	k, err := ParseKind(string(k))
	if err != nil {
		return nil, err
	}
	if k == Philox {
		return NewPhilox(seed), nil
	}
	return NewTorchCPU(seed), nil
}
