package rng

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// golden is testdata/golden.json, written by testdata/gen_golden.py from the spec's emulator
// (flow-sampling.md Appendix A, copied verbatim as testdata/torch_randn_ref.py). Values are float32
// bit patterns as hex words.
type golden struct {
	TorchCPU []struct {
		Seed  uint64       `json:"seed"`
		Calls []goldenDraw `json:"calls"`
	} `json:"torch_cpu"`
	Far []struct {
		Seed   uint64 `json:"seed"`
		Blocks []struct {
			Start int    `json:"start"`
			Bits  string `json:"bits"`
		} `json:"blocks"`
	} `json:"far_1x16x64x64"`
	Full []struct {
		Seed uint64 `json:"seed"`
		goldenDraw
	} `json:"full"`
	Philox []struct {
		Seed   uint64 `json:"seed"`
		Offset uint32 `json:"offset"`
		Bits   string `json:"bits"`
	} `json:"philox"`
	PhiloxFar []struct {
		Seed   uint64 `json:"seed"`
		Offset uint32 `json:"offset"`
		Index  int    `json:"index"`
		Bits   string `json:"bits"`
	} `json:"philox_far"`
}

// goldenDraw is one randn call: all values (Bits) when short, else the first 16 (Head), the last
// 32 (Tail) and the SHA-256 of all values as little-endian float32 bytes.
type goldenDraw struct {
	N      int    `json:"n"`
	Bits   string `json:"bits"`
	Head   string `json:"head"`
	Tail   string `json:"tail"`
	SHA256 string `json:"sha256"`
}

var loadGolden = sync.OnceValues(func() (*golden, error) {
	b, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		return nil, err
	}
	g := new(golden)
	return g, json.Unmarshal(b, g)
})

func mustGolden(t *testing.T) *golden {
	t.Helper()
	g, err := loadGolden()
	if err != nil {
		t.Fatalf("golden file: %v", err)
	}
	return g
}

func parseBits(t *testing.T, s string) []uint32 {
	t.Helper()
	var out []uint32
	for _, w := range strings.Fields(s) {
		v, err := strconv.ParseUint(w, 16, 32)
		if err != nil {
			t.Fatalf("golden word %q: %v", w, err)
		}
		out = append(out, uint32(v))
	}
	return out
}

// checkBits compares got with want bit for bit (so +0 and −0 differ); off is the index of got[0]
// in the draw, for messages.
func checkBits(t *testing.T, what string, got []float32, want []uint32, off int) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	bad := 0
	for i, w := range want {
		if g := math.Float32bits(got[i]); g != w {
			if bad++; bad <= 5 {
				t.Errorf("%s[%d] = %08x (%.9g), want %08x (%.9g)", what, off+i, g, got[i], w, math.Float32frombits(w))
			}
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d of %d values differ", what, bad, len(want))
	}
}

func sha256Float32(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func checkDraw(t *testing.T, what string, got []float32, d goldenDraw) {
	t.Helper()
	if len(got) != d.N {
		t.Fatalf("%s: %d values, want %d", what, len(got), d.N)
	}
	if d.Bits != "" {
		checkBits(t, what, got, parseBits(t, d.Bits), 0)
		return
	}
	checkBits(t, what+" head", got[:16], parseBits(t, d.Head), 0)
	checkBits(t, what+" tail", got[d.N-32:], parseBits(t, d.Tail), d.N-32)
	if s := sha256Float32(got); s != d.SHA256 {
		t.Errorf("%s: sha256 %s, want %s", what, s, d.SHA256)
	}
}

// TestTorchCPUGolden replays every golden draw: seeds 0, 1, 5, 7, 9, 42, 123, 2^32−1, 2^32+5 and
// 2^64−1, sizes 1…1249 (both sides of multiples of 16 and of the 624-word MT19937 block), and call
// sequences that continue one generator across both paths and the cached double normal.
func TestTorchCPUGolden(t *testing.T) {
	g := mustGolden(t)
	if len(g.TorchCPU) < 90 {
		t.Fatalf("golden file has %d torch-cpu cases, want ≥ 90", len(g.TorchCPU))
	}
	for _, c := range g.TorchCPU {
		gen := NewTorchCPU(c.Seed)
		var sizes []string
		for i, d := range c.Calls {
			sizes = append(sizes, strconv.Itoa(d.N))
			got := make([]float32, d.N)
			gen.Randn(got)
			checkDraw(t, fmt.Sprintf("seed %d randn(%s) call %d", c.Seed, strings.Join(sizes, ", "), i), got, d)
		}
	}
}

// TestTorchCPUGoldenFar checks blocks deep inside 1×16×64×64 draws and whole 1×16×128×128 draws
// (by hash) against the emulator.
func TestTorchCPUGoldenFar(t *testing.T) {
	g := mustGolden(t)
	for _, f := range g.Far {
		got := make([]float32, 16*64*64)
		NewTorchCPU(f.Seed).Randn(got)
		for _, b := range f.Blocks {
			checkBits(t, fmt.Sprintf("seed %d 1x16x64x64", f.Seed), got[b.Start:b.Start+16], parseBits(t, b.Bits), b.Start)
		}
	}
	for _, f := range g.Full {
		got := make([]float32, f.N)
		NewTorchCPU(f.Seed).Randn(got)
		checkDraw(t, fmt.Sprintf("seed %d randn(%d)", f.Seed, f.N), got, f.goldenDraw)
	}
}

func TestPhiloxGolden(t *testing.T) {
	g := mustGolden(t)
	for _, c := range g.Philox {
		gen := NewPhilox(c.Seed)
		gen.offset = c.Offset
		want := parseBits(t, c.Bits)
		got := make([]float32, len(want))
		gen.Randn(got)
		checkBits(t, fmt.Sprintf("philox seed %d offset %d", c.Seed, c.Offset), got, want, 0)
	}
	for _, c := range g.PhiloxFar {
		gen := NewPhilox(c.Seed)
		gen.offset = c.Offset
		got := make([]float32, latent1x16x128x128)
		gen.Randn(got)
		checkBits(t, fmt.Sprintf("philox seed %d", c.Seed), got[c.Index:c.Index+1], parseBits(t, c.Bits), c.Index)
	}
}
