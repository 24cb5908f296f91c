package rng

import (
	"math"
	"runtime"
	"sync"
)

// TorchCPUGenerator is torch's CPU generator (CPUGeneratorImpl: MT19937 plus the cached double
// normal), drawing as torch.randn does for a contiguous float32 tensor on an x86 build
// (flow-sampling.md §7.1–7.4). Create it with [NewTorchCPU]; it is not safe for concurrent use.
type TorchCPUGenerator struct {
	mt mt19937
	// The second value of the last normal_distribution<double> Box–Muller pair, which torch keeps
	// in the generator (next_double_normal_sample) for the next draw of that path, even one in a
	// later call. The float path neither reads nor clears it; manual_seed clears it.
	normal    float64
	hasNormal bool
}

// NewTorchCPU returns a generator in the state torch.manual_seed(seed) (or
// torch.Generator().manual_seed(seed)) leaves. torch keeps only the low 32 bits of the seed
// (state[0] = seed & 0xffffffff), so seeds that differ only above bit 31 give the same noise: 2^32+5
// draws what 5 draws. Negative Python seeds reach torch as their two's-complement uint64.
func NewTorchCPU(seed uint64) *TorchCPUGenerator {
	g := new(TorchCPUGenerator)
	g.mt.seed(seed)
	return g
}

// Randn fills dst with torch.randn(len(dst)) (float32, CPU, x86 AVX2 build) and advances the
// generator as torch does (§7.3):
//
//   - len(dst) ≥ 16: len(dst) float uniforms are drawn, each block of 16 becomes normals
//     (normal_fill_AVX2: box16), and when len(dst) is not a multiple of 16 another 16 uniforms are
//     drawn and their normals overwrite the last 16 values.
//   - len(dst) < 16: each value is one normal_distribution<double> draw rounded to float32; pairs
//     share one Box–Muller step and the odd one out stays cached in the generator for the next
//     draw of this path.
//
// So randn(n < 16) is not a prefix of randn(16), as in torch (pytorch issue #80202). For large dst
// the blocks are transformed in parallel goroutines (up to GOMAXPROCS); each block is a pure
// function of its 16 uniforms, so the result does not depend on the parallelism.
func (g *TorchCPUGenerator) Randn(dst []float32) {
	n := len(dst)
	if n < 16 {
		for i := range dst {
			dst[i] = float32(g.normal64() + 0) // transformation::normal: x·std + mean, mean = +0
		}
		return
	}
	g.mt.fillUniform32(dst)
	var tail [16]float32
	if n%16 != 0 {
		g.mt.fillUniform32(tail[:]) // drawn after all n uniforms, as torch does
	}
	boxBlocks(dst[:n/16*16])
	if n%16 != 0 {
		box16(&tail)
		copy(dst[n-16:], tail[:])
	}
}

// normal64 is at::normal_distribution<double>(0, 1) on this generator (TransformationHelper.h):
// u1, u2 = two 53-bit uniforms; r = sqrt(−2·log1p(−u2)); θ = 2π·u1; returns r·cos θ and caches
// r·sin θ. math.Log1p/Sin/Cos may differ from glibc's in the last float64 bit, which changes the
// float32 result only when the value lies within that bit of a float32 rounding midpoint (about
// one value in 2^28).
func (g *TorchCPUGenerator) normal64() float64 {
	if g.hasNormal {
		g.hasNormal = false
		return g.normal
	}
	u1 := g.mt.uniform64()
	u2 := g.mt.uniform64()
	r := math.Sqrt(-2 * math.Log1p(-u2))
	theta := 2 * math.Pi * u1 // (2.0·π)·u1 as torch evaluates it; 2π is exactly 2·float64(π)
	g.normal, g.hasNormal = r*math.Sin(theta), true
	return r * math.Cos(theta)
}

// parallelChunk is the least number of values a box16 goroutine gets: below it the goroutine
// costs more than the work (one value takes about 30 ns).
const parallelChunk = 16 << 10

// boxBlocks applies box16 to every block of 16 in d (len(d) is a multiple of 16), splitting the
// blocks over up to GOMAXPROCS goroutines when d is large enough.
func boxBlocks(d []float32) {
	workers := min(runtime.GOMAXPROCS(0), len(d)/parallelChunk)
	if workers <= 1 {
		boxSerial(d)
		return
	}
	per := (len(d)/16 + workers - 1) / workers * 16
	var wg sync.WaitGroup
	for lo := 0; lo < len(d); lo += per {
		part := d[lo:min(len(d), lo+per)]
		wg.Go(func() { boxSerial(part) })
	}
	wg.Wait()
}

func boxSerial(d []float32) {
	for i := 0; i+16 <= len(d); i += 16 {
		box16((*[16]float32)(d[i : i+16]))
	}
}
