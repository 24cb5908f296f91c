package rng

import (
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func randn(seed uint64, n int) []float32 {
	v := make([]float32, n)
	NewTorchCPU(seed).Randn(v)
	return v
}

// checkExact compares got[off:] with decimal float32 values printed in full (shortest round-trip
// or more digits): parsed to float32 they must give exactly the same bits.
func checkExact(t *testing.T, what string, got []float32, off int, want string) {
	t.Helper()
	for i, w := range strings.Fields(want) {
		f, err := strconv.ParseFloat(strings.ReplaceAll(w, "−", "-"), 32)
		if err != nil {
			t.Fatal(err)
		}
		if g := got[off+i]; math.Float32bits(g) != math.Float32bits(float32(f)) {
			t.Errorf("%s[%d] = %.9g, want %s", what, off+i, g, w)
		}
	}
}

// checkRounded compares got[off:] with values published to 4 decimals.
func checkRounded(t *testing.T, what string, got []float32, off int, want string) {
	t.Helper()
	for i, w := range strings.Fields(want) {
		w = strings.ReplaceAll(w, "−", "-")
		if g := fmt.Sprintf("%.4f", got[off+i]); g != w {
			t.Errorf("%s[%d] = %s (%.9g), want %s", what, off+i, g, got[off+i], w)
		}
	}
}

// TestTorchCPUPublished checks every published torch output of flow-sampling.md §7.8.
func TestTorchCPUPublished(t *testing.T) {
	// n < 16: normal_distribution<double>.
	checkRounded(t, "seed 0 randn(2,3)", randn(0, 6), 0, "1.5410 −0.2934 −2.1788 0.5684 −1.0845 −1.3986")
	checkRounded(t, "seed 0 Normal(0,1).rsample((8,))", randn(0, 8), 6, "0.4033 0.8380")
	checkRounded(t, "seed 42 randn(2,3)", randn(42, 6), 0, "0.3367 0.1288 0.2345 0.2303 −1.1229 −0.1863")
	// n ≥ 16: AVX2 box16.
	checkExact(t, "seed 0 randn(4,4)", randn(0, 16), 0, `−1.1258398 −1.1523602 −0.25057858 −0.4338788
		0.84871036 0.69200915 −0.31601277 −2.1152194 0.32227492 −1.2633348 0.3499832 0.30813393
		0.11984151 1.2376579 1.1167772 −0.24727815`)
	n24 := randn(0, 24) // the tail 8…23 is recomputed from 16 new uniforms
	checkExact(t, "seed 0 randn(6,4)", n24, 0, `−1.1258398294448853 −1.152360200881958 −0.2505785822868347
		−0.4338788092136383 0.8487103581428528 0.6920091509819031 −0.31601276993751526 −2.1152193546295166`)
	checkExact(t, "seed 0 randn(6,4)", n24, 8, "0.46809640526771545 −0.1577124446630478 1.4436601400375366 0.26604941487312317")
	checkExact(t, "seed 0 randn(6,4)", n24, 20, "0.6180566549301147")
	checkExact(t, "seed 0 randn(1,3,2,3)", randn(0, 18), 0, `−1.1258398 −1.1523602 0.56665063 0.79350835
		0.59883946 −1.5550951 −0.34136038 1.8530061 0.4680964 −0.15771244 −0.17339675 0.18347794
		1.3893661 1.5863342 0.94629836 −0.84367675 0.9318266 1.2590092`)
	// Index 15001 separates the FMA model from a plain float32 one (§7.8).
	checkExact(t, "seed 0 randn(1,80,15000)", randn(0, 80*15000), 15000,
		"0.869179368019104 0.5761968493461609 −0.41195306181907654")
	checkRounded(t, "seed 42 randn(2,16)", randn(42, 32), 0, `1.9269 1.4873 0.9007 −2.1055 0.6784 −1.2345
		−0.0431 −1.6047 −0.7521 1.6487 −0.3925 −1.4036 −0.7279 −0.5594 −0.7688 0.7624`)
	// Appendix A's printed emulator output (9 significant digits) for seeds 42 and 1.
	checkExact(t, "seed 42 randn(16)", randn(42, 16), 0, `1.92691529 1.48728406 0.900717199 -2.10552096
		0.678418458 -1.23454487 -0.0430674776 -1.60466695 -0.752135277 1.64872301 -0.392478645
		-1.40360713 -0.727881312 -0.559430182 -0.768838882 0.76244539`)
	checkExact(t, "seed 1 randn(16)", randn(1, 16), 0, `-1.5255959 -0.750231802 -0.653980911 -1.60948479
		-0.100167178 -0.609188914 -0.97977227 -1.60909629 -0.712144613 0.303721994 -0.777314305
		-0.251455247 -0.222270489 1.6871134 0.228425175 0.467635512`)
}

// TestTorchCPULatent checks §8.6 (torch.randn(1,16,128,128) for seeds 0 and 42) and the §10 index
// where the two candidate FMA placements differ.
func TestTorchCPULatent(t *testing.T) {
	z := randn(0, latent1x16x128x128)
	want := map[int]string{0: "-1.1258398294448853", 1: "-1.152360200881958", 8: "0.32227492332458496",
		15: "-0.2472781538963318", 131072: "1.5554131269454956", 131080: "0.3783301115036011",
		262128: "0.2645232379436493", 262143: "0.07685992121696472", 213: "0.9868360757827759"}
	for i, w := range want {
		checkExact(t, "seed 0 randn(1,16,128,128)", z, i, w)
	}
	bits := parseBits(t, `bf901b85 bf93808a be804bd6 bede255d 3f594515 3f312783 bea1cc6d c0075fc1
		3ea50138 bfa1b4f4 3eb330ff 3e9dc3bb 3df56f77 3f9e6b93 3f8ef28e be7d367c`)
	checkBits(t, "seed 0 randn(1,16,128,128)", z[:16], bits, 0)
	f := randn(42, latent1x16x128x128)
	want = map[int]string{0: "1.9269152879714966", 1: "1.4872840642929077", 8: "-0.7521352767944336",
		15: "0.7624453902244568", 131072: "-1.5828323364257812", 131080: "-0.4232403039932251",
		262128: "-1.2526947259902954", 262143: "-2.3294172286987305"}
	for i, w := range want {
		checkExact(t, "seed 42 randn(1,16,128,128)", f, i, w)
	}
}

// TestMT19937 checks the engine against the C++ standard's requirement for std::mt19937 (the
// 10000th output for the default seed 5489 is 4123659995) and the seed truncation.
func TestMT19937(t *testing.T) {
	var m mt19937
	m.seed(5489)
	var y uint32
	for range 10000 {
		y = m.uint32()
	}
	if y != 4123659995 {
		t.Errorf("10000th output = %d, want 4123659995", y)
	}
	var a, b mt19937
	a.seed(5)
	b.seed(1<<32 + 5)
	if a != b {
		t.Error("seed 2^32+5 does not give the state of seed 5")
	}
	// fillUniform32 consumes the same words as uint32, across twists.
	m.seed(9)
	u := make([]float32, 2000)
	m.fillUniform32(u[:700])
	m.fillUniform32(u[700:])
	var n mt19937
	n.seed(9)
	for i, v := range u {
		if w := float32(n.uint32()&0xffffff) * 0x1p-24; v != w {
			t.Fatalf("uniform %d = %v, want %v", i, v, w)
		}
	}
}

func TestSeedTruncation(t *testing.T) {
	for _, s := range []uint64{5, 1<<32 - 1, 1 << 40} {
		a, b := randn(s, 40), randn(s+1<<32, 40)
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("seed %d and %d differ at %d", s, s+1<<32, i)
			}
		}
	}
}

// TestStreamContinuation checks hand-derived consequences of torch's generator state: the
// double path's cached value survives a float-path call, and a float-path call consumes exactly
// n (+16 when n%16 ≠ 0) uniforms.
func TestStreamContinuation(t *testing.T) {
	g := NewTorchCPU(0)
	a := make([]float32, 1)
	g.Randn(a) // caches the pair's second value
	b := make([]float32, 16)
	g.Randn(b)
	c := make([]float32, 1)
	g.Randn(c)
	two := randn(0, 2)
	if a[0] != two[0] || c[0] != two[1] {
		t.Errorf("randn(1), randn(16), randn(1) = %v … %v, want the pair %v", a[0], c[0], two)
	}
	// After randn(1) (two 64-bit uniforms = 4 words) the float path starts at word 4.
	var m mt19937
	m.seed(0)
	for range 4 {
		m.uint32()
	}
	u := make([]float32, 16)
	m.fillUniform32(u)
	box16((*[16]float32)(u))
	checkBits(t, "randn(16) after randn(1)", b, bitsOf(u), 0)
	// randn(17) uses 17 + 16 words, so a following randn(16) starts at word 33.
	g = NewTorchCPU(3)
	g.Randn(make([]float32, 17))
	g.Randn(b)
	m.seed(3)
	m.fillUniform32(make([]float32, 33))
	m.fillUniform32(u)
	box16((*[16]float32)(u))
	checkBits(t, "randn(16) after randn(17)", b, bitsOf(u), 0)
}

func bitsOf(v []float32) []uint32 {
	out := make([]uint32, len(v))
	for i, x := range v {
		out[i] = math.Float32bits(x)
	}
	return out
}

// TestParallelIdentical checks that splitting the box16 blocks over goroutines changes no bit,
// for several worker counts and a size with a recomputed tail.
func TestParallelIdentical(t *testing.T) {
	n := 3*parallelChunk + 5 // not a multiple of 16: tail recomputed after the parallel part
	old := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(old)
	serial, serialP := make([]float32, n), make([]float32, n)
	NewTorchCPU(11).Randn(serial)
	NewPhilox(11).Randn(serialP)
	for _, procs := range []int{2, 3, 8} {
		runtime.GOMAXPROCS(procs)
		par, parP := make([]float32, n), make([]float32, n)
		NewTorchCPU(11).Randn(par)
		NewPhilox(11).Randn(parP)
		checkBits(t, fmt.Sprintf("torch-cpu GOMAXPROCS=%d", procs), par, bitsOf(serial), 0)
		checkBits(t, fmt.Sprintf("philox GOMAXPROCS=%d", procs), parP, bitsOf(serialP), 0)
	}
}

func TestRandnAllocs(t *testing.T) {
	old := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(old)
	g := NewTorchCPU(0)
	dst := make([]float32, 4096+7)
	if a := testing.AllocsPerRun(10, func() { g.Randn(dst); g.Randn(dst[:5]) }); a != 0 {
		t.Errorf("Randn allocates %v times per call on one core, want 0", a)
	}
}
