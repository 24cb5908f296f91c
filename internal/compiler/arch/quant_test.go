package arch

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rflowrt/rflow/internal/benchutil"
	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/internal/ort/orttest"
)

// randomMatrix is a [rows, cols] weight: normal with std 1/√cols, or heavy-tailed like trained weights
// (Student-t with 3 degrees of freedom, plus a few input channels ten times larger — the outlier
// channels real transformer weights have).
func randomMatrix(rng *rand.Rand, rows, cols int, heavy bool) []float32 {
	v := make([]float32, rows*cols)
	outlier := make([]bool, cols)
	if heavy {
		for range cols / 64 {
			outlier[rng.IntN(cols)] = true
		}
	}
	for i := range v {
		x := rng.NormFloat64()
		if heavy {
			// t(3) = N / √(χ²₃/3), scaled to unit variance (var t(3) = 3).
			c := 0.0
			for range 3 {
				g := rng.NormFloat64()
				c += g * g
			}
			x = x / math.Sqrt(c/3) / math.Sqrt(3)
			if outlier[i%cols] {
				x *= 10
			}
		}
		v[i] = float32(x / math.Sqrt(float64(cols)))
	}
	return v
}

// matmulT is x [m, k] · w[n, k]ᵀ (+ bias).
func matmulT(x, w, bias []float32, m, k, n int) []float32 {
	y := make([]float32, m*n)
	for i := range m {
		for j := range n {
			var s float64
			for t := range k {
				s += float64(x[i*k+t]) * float64(w[j*k+t])
			}
			if bias != nil {
				s += float64(bias[j])
			}
			y[i*n+j] = float32(s)
		}
	}
	return y
}

// testLayer is the weight name the helpers below quantize as (a layer inside a block).
const testLayer = "blocks.0.lin.weight"

func dequantize(r quantResult, q Quant, out, in int) []float32 {
	if q.Kind == Int8 {
		return dequantizeInt8(r, out, in)
	}
	bits, bs, _ := q.Layout(testLayer, in)
	return dequantizeBlocks(r, out, in, bits, bs)
}

func quantize(w []float32, q Quant, out, in int) quantResult {
	if q.Kind == Int8 {
		return quantizeInt8(w, out, in, !q.FullRange, !q.RoundToNearest)
	}
	bits, bs, _ := q.Layout(testLayer, in)
	return quantizeBlocks(w, out, in, bits, bs, !q.RoundToNearest)
}

// The per-block search beats round to nearest on the output of the layer (x·Wᵀ for normal x): on
// normal weights and on heavy-tailed ones, for 4 and 8 bits; the per-channel int8 search likewise.
func TestQuantSearchBeatsRoundToNearest(t *testing.T) {
	const out, in, m = 256, 1024, 16
	rng := rand.New(rand.NewPCG(1, 2))
	x := randomMatrix(rng, m, in, false)
	for i := range x {
		x[i] *= float32(math.Sqrt(in))
	}
	for _, heavy := range []bool{false, true} {
		w := randomMatrix(rng, out, in, heavy)
		ref := matmulT(x, w, nil, m, in, out)
		for _, c := range []struct {
			q      Quant
			gainDB float64 // at least this much better than round to nearest
		}{
			{Quant{Kind: Q4, BlockSize: 32}, 0.05},
			{Quant{Kind: Q4, BlockSize: 64}, 0.05},
			{Quant{Kind: Q8, BlockSize: 32}, 0.3},
			{Quant{Kind: Int8, FullRange: true}, -0.2}, // per-channel: no gain beyond the sampling noise of 16 rows
		} {
			rtn := c.q
			rtn.RoundToNearest = true
			sRTN := benchutil.SNRdB(matmulT(x, dequantize(quantize(w, rtn, out, in), rtn, out, in), nil, m, in, out), ref)
			sOurs := benchutil.SNRdB(matmulT(x, dequantize(quantize(w, c.q, out, in), c.q, out, in), nil, m, in, out), ref)
			sym := ""
			if c.q.Kind == Q4 {
				sym = fmt.Sprintf(", symmetric round-to-nearest (absmax/8) %.2f dB",
					benchutil.SNRdB(matmulT(x, symmetricQ4(w, c.q.BlockSize), nil, m, in, out), ref))
			}
			t.Logf("heavy=%v %s block %d: output SNR round-to-nearest %.2f dB, search %.2f dB%s", heavy, c.q.Kind, c.q.BlockSize, sRTN, sOurs, sym)
			if sOurs < sRTN+c.gainDB {
				t.Errorf("heavy=%v %s block %d: search %.2f dB, round to nearest %.2f dB: want ≥ %.1f dB better",
					heavy, c.q.Kind, c.q.BlockSize, sOurs, sRTN, c.gainDB)
			}
		}
	}
}

// symmetricQ4 is w after 4-bit symmetric round to nearest per block (zero point 8, scale absmax/8 with
// the largest magnitude mapped to −8: llama.cpp's q4_0), the other common baseline.
func symmetricQ4(w []float32, bs int) []float32 {
	d := make([]float32, len(w))
	for b := 0; b < len(w); b += bs {
		var m float32
		for _, v := range w[b : b+bs] {
			if math.Abs(float64(v)) > math.Abs(float64(m)) {
				m = v
			}
		}
		s := m / -8
		for i, v := range w[b : b+bs] {
			if s == 0 {
				continue
			}
			q := math.Max(-8, math.Min(7, math.Round(float64(v/s))))
			d[b+i] = s * float32(q)
		}
	}
	return d
}

// Per block the search's squared error is never above round to nearest's (it starts from it).
func TestQuantBlockNeverWorse(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	q := make([]uint8, 32)
	for trial := range 2000 {
		x := randomMatrix(rng, 1, 32, trial%2 == 1)
		if trial%7 == 0 {
			for i := range x {
				x[i] = float32(math.Abs(float64(x[i]))) // one-signed block: zero point at an end
			}
		}
		errOf := func(search bool) float64 {
			s, z := quantizeBlock(x, 15, search, q)
			var e float64
			for i, v := range x {
				d := float64(v) - float64(s)*(float64(q[i])-float64(z))
				e += d * d
			}
			return e
		}
		if e1, e0 := errOf(true), errOf(false); e1 > e0*(1+1e-9) {
			t.Fatalf("trial %d: search error %g > round to nearest %g", trial, e1, e0)
		}
	}
	if s, z := quantizeBlock(make([]float32, 32), 15, true, q); s != 0 || z != 0 {
		t.Fatalf("zero block: s=%v z=%v", s, z)
	}
}

// optimalBlock is the block's smallest squared error found by brute force: 151 scales from 0.4 to 1.2
// of round to nearest's, each with every zero point, then least-squares refits.
func optimalBlock(x []float32, nmax float32) float32 {
	var lo, hi float32
	for _, v := range x {
		lo, hi = min(lo, v), max(hi, v)
	}
	s0 := (hi - lo) / nmax
	bestS, bestZ := s0, roundU(-lo/s0, nmax)
	best := blockErr(x, bestS, bestZ, nmax)
	for i := 0; i <= 150; i++ {
		s := s0 * (0.4 + 0.8*float32(i)/150)
		for z := float32(0); z <= nmax; z++ {
			if e := blockErr(x, s, z, nmax); e < best {
				bestS, bestZ, best = s, z, e
			}
		}
	}
	for range 5 {
		s, z := refitBlock(x, bestS, bestZ, nmax)
		e := blockErr(x, s, z, nmax)
		if e >= best {
			break
		}
		bestS, bestZ, best = s, z, e
	}
	return best
}

// The 4-bit search reaches the brute-force optimum of the block's squared error (uniform grid, integer
// zero point: what MatMulNBits stores) within 0.1 dB, and gains ≥ 0.2 dB of weight SNR over round to
// nearest: per-block error minimisation has nothing left to win, only more bits do.
func TestQuantBlockSearchNearOptimum(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 7))
	q := make([]uint8, 64)
	for _, heavy := range []bool{false, true} {
		for _, bs := range []int{32, 64} {
			const blocks = 100
			w := randomMatrix(rng, blocks, bs, heavy)
			var p, eRTN, eSearch, eOpt float64
			for b := range blocks {
				x := w[b*bs : (b+1)*bs]
				for _, v := range x {
					p += float64(v) * float64(v)
				}
				s, z := quantizeBlock(x, 15, false, q[:bs])
				eRTN += float64(blockErr(x, s, float32(z), 15))
				s, z = quantizeBlock(x, 15, true, q[:bs])
				eSearch += float64(blockErr(x, s, float32(z), 15))
				eOpt += float64(optimalBlock(x, 15))
			}
			db := func(e float64) float64 { return 10 * math.Log10(p/e) }
			t.Logf("heavy=%v block %d: weight SNR round to nearest %.2f dB, search %.2f dB, brute-force optimum %.2f dB",
				heavy, bs, db(eRTN), db(eSearch), db(eOpt))
			if db(eSearch) < db(eOpt)-0.1 || db(eSearch) < db(eRTN)+0.2 {
				t.Errorf("heavy=%v block %d: search %.2f dB, optimum %.2f dB, round to nearest %.2f dB", heavy, bs, db(eSearch), db(eOpt), db(eRTN))
			}
		}
	}
}

// The graphs ONNX Runtime runs compute x·Wᵀ + b with the weights as stored: MatMulNBits (accuracy
// level 0: float32 arithmetic) matches the dequantized weight to float rounding; DynamicQuantizeMatMul
// and accuracy level 4 also quantize the activations, so they are checked by SNR.
func TestQuantLinearRunsInORT(t *testing.T) {
	const k, n, rows = 128, 96, 10
	rng := rand.New(rand.NewPCG(5, 6))
	w := randomMatrix(rng, n, k, true)
	bias := randomMatrix(rng, 1, n, false)
	x := randomMatrix(rng, rows, k, false)
	for i := range x {
		x[i] *= float32(math.Sqrt(k))
	}
	exact := matmulT(x, w, bias, rows, k, n)
	for _, c := range []struct {
		q      Quant
		bias   bool
		exact  bool
		minSNR float64
	}{
		{Quant{Kind: Q4, BlockSize: 32}, true, true, 0},
		{Quant{Kind: Q4, BlockSize: 64, RoundToNearest: true}, false, true, 0},
		{Quant{Kind: Q8, BlockSize: 32}, true, true, 0},
		{Quant{Kind: Q4, BlockSize: 32, Wide: func(string) bool { return true }}, true, true, 0},                                      // 8-bit layers in q4
		{Quant{Kind: Q4, BlockSize: 32, Wide: func(string) bool { return true }, WideBlockSize: 64, AccuracyLevel: 4}, true, true, 0}, // at level 0
		{Quant{Kind: Q8, BlockSize: 32, AccuracyLevel: 4}, true, false, 35},
		{Quant{Kind: Q4, BlockSize: 32, AccuracyLevel: 4}, true, false, 16},
		{Quant{Kind: Int8, FullRange: true}, true, false, 25},
		{Quant{Kind: Int8}, false, false, 35},
	} {
		name := "blocks.0.lin"
		tw := Tensors{name + ".weight": {Shape: []int64{n, k}, Data: w}}
		if c.bias {
			tw[name+".bias"] = Tensor{Shape: []int64{n}, Data: bias}
		}
		net := NewNet("q", Quantized(tw, c.q))
		in := net.FloatInput("x", onnx.Float, onnx.Fixed(1), onnx.Fixed(rows), onnx.Fixed(k))
		net.FloatOutput(net.Linear(in, name, k, n, c.bias), "y", onnx.Float)
		m, err := net.Model()
		if err != nil {
			t.Fatal(err)
		}
		if ops := opTypes(m); !ops["MatMulNBits"] && !ops["DynamicQuantizeMatMul"] || ops["MatMul"] {
			t.Fatalf("%+v: graph ops %v", c.q, ops)
		}
		got := runLinear(t, m, x, rows, k, n)
		var b []float32
		if c.bias {
			b = bias
		}
		q := Quantized(tw, c.q).(quantized).q
		want := matmulT(x, dequantize(quantize(w, q, n, k), q, n, k), b, rows, k, n)
		if c.exact {
			assertClose(t, string(c.q.Kind), got, want, 1e-4, 1e-4)
		} else if s := benchutil.SNRdB(got, want); s < c.minSNR {
			t.Errorf("%+v: SNR vs dequantized weights %.1f dB, want ≥ %.0f", c.q, s, c.minSNR)
		}
		ref := exact
		if !c.bias {
			ref = matmulT(x, w, nil, rows, k, n)
		}
		t.Logf("%s block %d level %d rtn=%v full-range=%v: SNR vs float32 layer %.1f dB, vs its dequantized weights %.1f dB",
			c.q.Kind, q.BlockSize, q.AccuracyLevel, c.q.RoundToNearest, c.q.FullRange, benchutil.SNRdB(got, ref), benchutil.SNRdB(got, want))
	}
}

func opTypes(m *onnx.Model) map[string]bool {
	ops := map[string]bool{}
	for _, nd := range m.Graph.Nodes {
		ops[nd.OpType] = true
	}
	return ops
}

func runLinear(t *testing.T, m *onnx.Model, x []float32, rows, k, n int) []float32 {
	t.Helper()
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := ort.NewSessionFromBytes(ctx, "quant", data, "", orttest.Options())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in, err := s.NewInput("x", 1, int64(rows), int64(k))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Destroy()
	copy(in.Float32s(), x)
	out, err := s.NewOutput("y", 1, int64(rows), int64(n))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Destroy()
	if err := s.Run(ctx, []*ort.Tensor{in}, []*ort.Tensor{out}); err != nil {
		t.Fatal(err)
	}
	y := make([]float32, out.Len())
	if err := out.ReadFloat32(y); err != nil {
		t.Fatal(err)
	}
	return y
}

// countingWeights counts Float32 calls per tensor.
type countingWeights struct {
	Weights
	mu    *sync.Mutex
	calls map[string]int
}

func (c countingWeights) Float32(name string, shape []int64) ([]float32, error) {
	c.mu.Lock()
	c.calls[name]++
	c.mu.Unlock()
	return c.Weights.Float32(name, shape)
}

// Writing a quantized graph reads each weight once although its integers, scales and zero points are
// three initializers; only the Linear layers inside numbered blocks are quantized.
func TestQuantStreamsEachWeightOnce(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const d = 512 // every part ≥ 1 KB, so all go to the external data file, written one layer after another
	tw := Tensors{}
	names := []string{"embed", "blocks.0.a", "blocks.0.b", "blocks.1.a", "proj_out"}
	for _, nm := range names {
		tw[nm+".weight"] = Tensor{Shape: []int64{d, d}, Data: randomMatrix(rng, d, d, false)}
		tw[nm+".bias"] = Tensor{Shape: []int64{d}, Data: randomMatrix(rng, 1, d, false)}
	}
	for _, kind := range []WeightKind{Int8, Q8, Q4} {
		cw := countingWeights{Weights: tw, mu: &sync.Mutex{}, calls: map[string]int{}}
		net := NewNet("q", StoredAs(Quantized(cw, Quant{Kind: kind}), onnx.Float16))
		x := net.FloatInput("x", onnx.Float, onnx.Fixed(1), onnx.Fixed(d))
		for _, nm := range names {
			x = net.Linear(x, nm, d, d, true)
		}
		net.FloatOutput(x, "y", onnx.Float)
		m, err := net.Model()
		if err != nil {
			t.Fatal(err)
		}
		quantOps := 0
		for _, nd := range m.Graph.Nodes {
			if nd.Domain == "com.microsoft" {
				quantOps++
			}
		}
		if quantOps != 3 {
			t.Errorf("%s: %d quantized layers, want 3 (the blocks' layers, not embed and proj_out)", kind, quantOps)
		}
		path := filepath.Join(t.TempDir(), "model.onnx")
		if err := m.WriteFile(path, onnx.WriteOptions{ExternalData: true}); err != nil {
			t.Fatal(err)
		}
		for name, c := range cw.calls {
			if c != 1 {
				t.Errorf("%s: %s read %d times", kind, name, c)
			}
		}
		if len(cw.calls) != 2*len(names) {
			t.Errorf("%s: %d tensors read, want %d", kind, len(cw.calls), 2*len(names))
		}
		x1 := randomMatrix(rng, 1, d, false)
		s, err := ort.NewSession(context.Background(), path, orttest.Options())
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		in, _ := s.NewInput("x", 1, d)
		copy(in.Float32s(), x1)
		out, _ := s.NewOutput("y", 1, d)
		if err := s.Run(context.Background(), []*ort.Tensor{in}, []*ort.Tensor{out}); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		in.Destroy()
		out.Destroy()
		s.Close()
	}
}

func TestQuantRulesAndKinds(t *testing.T) {
	for _, c := range []struct {
		name    string
		in, out int
		bs      int
		want    bool
	}{
		{"transformer_blocks.3.attn.to_q.weight", 1536, 1536, 32, true},
		{"single_transformer_blocks.0.proj_out.weight", 15360, 3072, 32, true},
		{"text_model.encoder.layers.11.mlp.fc1.weight", 768, 3072, 32, true},
		{"encoder.block.0.layer.1.DenseReluDense.wo.weight", 10240, 4096, 64, true},
		{"context_embedder.weight", 4096, 1536, 32, false},
		{"time_text_embed.timestep_embedder.linear_1.weight", 256, 1536, 32, false},
		{"proj_out.weight", 1536, 64, 32, false},
		{"transformer_blocks.0.attn.to_q.weight", 100, 100, 32, false}, // K not a multiple of the block
		{"transformer_blocks.0.attn.to_q.weight", 100, 100, 0, true},   // per-channel int8
		{"transformer_blocks.0.tiny.weight", 32, 32, 32, false},
	} {
		if got := QuantizesLayer(c.name, c.in, c.out, c.bs); got != c.want {
			t.Errorf("QuantizesLayer(%s, %d, %d, %d) = %v", c.name, c.in, c.out, c.bs, got)
		}
	}
	for name, want := range map[string]bool{"transformer_blocks.0.norm1.linear.weight": true,
		"transformer_blocks.11.norm1_context.linear.weight": true, "single_transformer_blocks.3.norm.linear.weight": true,
		"norm_out.linear.weight": false, "transformer_blocks.0.attn.to_q.weight": false} {
		if ModulationLayer(name) != want {
			t.Errorf("ModulationLayer(%s) = %v", name, !want)
		}
	}
	for name, want := range map[string]bool{"transformer_blocks.0.attn.to_q.weight": true,
		"transformer_blocks.3.attn.to_out.0.weight": true, "single_transformer_blocks.7.attn.to_v.weight": true,
		"transformer_blocks.2.attn2.to_k.weight": true, "transformer_blocks.0.attn.add_q_proj.weight": false,
		"transformer_blocks.0.attn.to_add_out.weight": false, "transformer_blocks.0.ff.net.2.weight": false,
		"attn.to_q.weight": false, "transformer_blocks.0.attn.to_q.bias": false} {
		if AttentionLayer(name) != want {
			t.Errorf("AttentionLayer(%s) = %v", name, !want)
		}
	}
	// DefaultQuant: q4 keeps modulation and image attention at 8 bits in blocks of 128, the rest 4 bits.
	// The block halves until it divides the input width (192: 64). q8 takes int8 activations (level 4)
	// and int8 full-range weights only on CPUs with VNNI.
	q8Level, q8Block, vnni := 0, 128, hasInt8DotProduct()
	if vnni {
		q8Level, q8Block = 4, 256
	}
	if DefaultQuant(Int8).FullRange != vnni || DefaultQuant(Q4).FullRange || DefaultAccuracyLevel(Q4S) != 0 {
		t.Errorf("VNNI %v: DefaultQuant(int8).FullRange %v, q4 %v, q4s level %d", vnni, DefaultQuant(Int8).FullRange,
			DefaultQuant(Q4).FullRange, DefaultAccuracyLevel(Q4S))
	}
	for _, c := range []struct {
		k    WeightKind
		name string
		in   int
		want [3]int
	}{
		{Q4, "transformer_blocks.0.attn.to_q.weight", 1536, [3]int{8, 128, 0}},
		{Q4, "transformer_blocks.0.attn.to_q.weight", 192, [3]int{8, 64, 0}},
		{Q4, "transformer_blocks.0.norm1.linear.weight", 3072, [3]int{8, 128, 0}},
		{Q4, "transformer_blocks.0.ff.net.0.proj.weight", 1536, [3]int{8, 128, 0}},
		{Q4, "transformer_blocks.0.ff.net.2.weight", 6144, [3]int{4, 32, 0}},
		{Q4, "transformer_blocks.0.ff_context.net.0.proj.weight", 1536, [3]int{4, 32, 0}},
		{Q4, "single_transformer_blocks.0.proj_mlp.weight", 3072, [3]int{4, 32, 0}},
		{Q4, "transformer_blocks.0.attn.add_k_proj.weight", 1536, [3]int{4, 32, 0}},
		{Q4, "transformer_blocks.0.attn.add_k_proj.weight", 48, [3]int{4, 16, 0}},
		// q8: blocks of 256 at level 4 (FLUX.1-dev's widths, 3072…15360, are all multiples), halved
		// where they do not divide the width; 128 at level 0; q4's 8-bit layers keep 128
		{Q8, "transformer_blocks.0.ff.net.2.weight", 6144, [3]int{8, q8Block, q8Level}},
		{Q8, "single_transformer_blocks.0.proj_out.weight", 15360, [3]int{8, q8Block, q8Level}},
		{Q8, "transformer_blocks.0.attn.to_q.weight", 384, [3]int{8, 128, q8Level}},
		// q4s: every layer 4 bits in blocks of 64, the sensitive ones too
		{Q4S, "transformer_blocks.0.norm1.linear.weight", 3072, [3]int{4, 64, 0}},
		{Q4S, "transformer_blocks.0.attn.to_q.weight", 1536, [3]int{4, 64, 0}},
		{Q4S, "transformer_blocks.0.ff.net.0.proj.weight", 1536, [3]int{4, 64, 0}},
		{Q4S, "transformer_blocks.0.attn.add_k_proj.weight", 96, [3]int{4, 32, 0}},
		{Int8, "transformer_blocks.0.attn.to_q.weight", 1536, [3]int{8, 0, 0}},
	} {
		if b, bs, al := DefaultQuant(c.k).Layout(c.name, c.in); [3]int{b, bs, al} != c.want {
			t.Errorf("DefaultQuant(%s).Layout(%s, %d) = %d, %d, %d; want %v", c.k, c.name, c.in, b, bs, al, c.want)
		}
	}
	// An unset block follows the level that is set: q8 at level 4 takes 256 on any CPU, at 0 or 1 128.
	for al, want := range map[int]int{-1: q8Block, 0: 128, 1: 128, 4: 256} {
		if _, bs, _ := (Quant{Kind: Q8, AccuracyLevel: al}).Layout("transformer_blocks.0.ff.net.2.weight", 6144); bs != want {
			t.Errorf("Quant{Q8, level %d}: block %d, want %d", al, bs, want)
		}
	}
	if DefaultBlockSize(Q8) != q8Block || DefaultQuant(Q4).WideBlockSize != 128 {
		t.Errorf("DefaultBlockSize(q8) %d (want %d), q4's 8-bit block %d (want 128)", DefaultBlockSize(Q8), q8Block, DefaultQuant(Q4).WideBlockSize)
	}
	for _, k := range WeightKinds() {
		if got, err := ParseWeightKind(string(k)); err != nil || got != k {
			t.Errorf("ParseWeightKind(%s) = %v, %v", k, got, err)
		}
	}
	if _, err := ParseWeightKind("int4"); err == nil || !strings.Contains(err.Error(), `"int4"`) || !strings.Contains(err.Error(), "q4") {
		t.Errorf("ParseWeightKind(int4) error = %v", err)
	}
	if k, err := ParseWeightKind(""); err != nil || k != FP32 {
		t.Errorf(`ParseWeightKind("") = %v, %v`, k, err)
	}
}

// BenchmarkQuantizeWeights is the quantizers' throughput on a 3072×3072 weight (FLUX's attention
// projection), in float32 MB/s on every core: what compiling a checkpoint adds per weight.
func BenchmarkQuantizeWeights(b *testing.B) {
	const n = 3072
	w := randomMatrix(rand.New(rand.NewPCG(9, 9)), n, n, true)
	for _, q := range []Quant{{Kind: Int8}, {Kind: Q8, BlockSize: 32}, {Kind: Q4, BlockSize: 32}, {Kind: Q4, BlockSize: 32, RoundToNearest: true}} {
		name := string(q.Kind)
		if q.RoundToNearest {
			name += "-rtn"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(4 * n * n)
			for b.Loop() {
				quantize(w, q, n, n)
			}
		})
	}
}

// A block size MatMulNBits cannot run is a build error, not a graph ONNX Runtime rejects.
func TestQuantBadSettings(t *testing.T) {
	tw := Tensors{"blocks.0.lin.weight": {Shape: []int64{64, 96}, Data: make([]float32, 64*96)}}
	for _, q := range []Quant{{Kind: Q4, BlockSize: 24}, {Kind: Q8, BlockSize: 8}, {Kind: Q4, AccuracyLevel: 7},
		{Kind: Q4, WideBlockSize: 48}, {Kind: Q4, WideAccuracyLevel: 5}} {
		n := NewNet("bad", Quantized(tw, q))
		x := n.FloatInput("x", onnx.Float, onnx.Fixed(96))
		n.FloatOutput(n.Linear(x, "blocks.0.lin", 96, 64, false), "y", onnx.Float)
		if _, err := n.Model(); err == nil || !strings.Contains(err.Error(), "block size") {
			t.Errorf("%+v: err = %v", q, err)
		}
	}
}
