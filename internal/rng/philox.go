package rng

import (
	"math"
	"runtime"
	"sync"
)

// PhiloxGenerator emulates torch's CUDA generator the way A1111 (modules/rng_philox.py, the "NV"
// RNG) and stable-diffusion.cpp (rng_philox.hpp, --rng cuda) do (flow-sampling.md §7.7): element i
// of a call is the first Box–Muller normal of curand's Philox4x32-10 subsequence i at the current
// offset, and every call, even an empty one, advances the offset by one. The Box–Muller step runs
// in float32 as in sd.cpp (A1111 computes it in float64; the two differ by about 2e-7).
//
// Validity: real CUDA torch spreads n elements over min(ceil(n/256), SMs·maxThreadsPerSM/256)
// blocks of 256 threads, and only while every element has its own thread (n ≤ SMs·maxThreadsPerSM:
// 270,336 on an H100 SXM, 221,184 on an A100) does element i take subsequence i's first normal.
// Beyond that (a 1024×1024 SD3/FLUX latent has 262,144 values, too many for an A100; pytorch issue
// #143086) real torch output differs from this emulation, as it does for A1111 and sd.cpp. Within
// it the match is close, not exact: CUDA's logf/sinf are not correctly rounded, so values differ
// from a GPU's by about 1e-7. What is exact is the emulation itself (flow-sampling.md Appendix A,
// philox_randn), up to Go's and glibc's libm disagreeing in the last float64 bit.
//
// Create it with [NewPhilox]; it is not safe for concurrent use.
type PhiloxGenerator struct {
	seed   uint64
	offset uint32
}

// NewPhilox returns a Philox generator for seed at offset 0. All 64 bits of the seed are used (the
// Philox key is its low and high halves), unlike [NewTorchCPU].
func NewPhilox(seed uint64) *PhiloxGenerator { return &PhiloxGenerator{seed: seed} }

// Randn fills dst with the emulated CUDA torch.randn(len(dst)) and advances the offset by one.
// Every element is independent, so large calls are split over up to GOMAXPROCS goroutines with
// the same result.
func (g *PhiloxGenerator) Randn(dst []float32) {
	workers := min(runtime.GOMAXPROCS(0), len(dst)/parallelChunk)
	k0, k1, off := uint32(g.seed), uint32(g.seed>>32), g.offset
	g.offset++
	if workers <= 1 {
		philoxFill(dst, 0, k0, k1, off)
		return
	}
	per := (len(dst) + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < len(dst); lo += per {
		part := dst[lo:min(len(dst), lo+per)]
		wg.Go(func() { philoxFill(part, uint32(lo), k0, k1, off) })
	}
	wg.Wait()
}

// Constants of curand's Philox4x32-10 and of sd.cpp's float32 Box–Muller: 2^-32 and
// float32(2^-32·2π) (A1111: float32(2.3283064e-10 * 6.2831855), the same value), and their halves.
const (
	philoxM0 = 0xD2511F53
	philoxM1 = 0xCD9E8D57
	philoxW0 = 0x9E3779B9
	philoxW1 = 0xBB67AE85

	twoPow32Inv      float32 = 0x1p-32
	twoPow32Inv2Pi   float32 = 0x1.921fb6p-30
	halfTwoPow32Inv  float32 = 0x1p-33
	halfTwoPow32I2Pi float32 = 0x1.921fb6p-31
)

// philoxFill sets dst[i] to the normal of subsequence first+i.
func philoxFill(dst []float32, first, k0, k1, offset uint32) {
	for i := range dst {
		x, y := philox4x32(offset, first+uint32(i), k0, k1)
		dst[i] = philoxBoxMuller(x, y)
	}
}

// philox4x32 runs ten Philox rounds on the counter (offset, 0, subsequence, 0) with key (k0, k1)
// and returns the first two output words.
func philox4x32(offset, subsequence, k0, k1 uint32) (uint32, uint32) {
	c0, c1, c2, c3 := offset, uint32(0), subsequence, uint32(0)
	for range 10 {
		p0 := uint64(c0) * philoxM0
		p1 := uint64(c2) * philoxM1
		c0, c1, c2, c3 = uint32(p1>>32)^c1^k0, uint32(p1), uint32(p0>>32)^c3^k1, uint32(p0)
		k0 += philoxW0
		k1 += philoxW1
	}
	return c0, c1
}

// philoxBoxMuller is sd.cpp's box_muller in float32: u = x·2^-32 + 2^-33 ∈ (0, 1),
// v = y·2^-32·2π + half a step, result sqrt(−2·logf(u))·sinf(v). logf and sinf are float64
// math rounded to float32 (Appendix A's model of a correctly rounded libm).
func philoxBoxMuller(x, y uint32) float32 {
	u := float32(float32(x)*twoPow32Inv) + halfTwoPow32Inv
	v := float32(float32(y)*twoPow32Inv2Pi) + halfTwoPow32I2Pi
	lg := float32(math.Log(float64(u)))
	s := float32(math.Sqrt(float64(float32(-2 * lg))))
	return s * float32(math.Sin(float64(v)))
}
