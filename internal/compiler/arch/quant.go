package arch

import (
	"fmt"
	"io"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/cpu"

	"github.com/rflowrt/rflow/internal/onnx"
)

// WeightKind is how a compiled graph stores its Linear weights.
type WeightKind string

// The weight kinds. FP32 and FP16 store every parameter as that float type (StoredAs); the quantized
// kinds (Quantized) store the weights of the Linear layers inside the repeated blocks as integers and
// leave every other parameter a float (float32, or what StoredAs says):
//   - Int8: int8 weights with one scale per output channel, multiplied by com.microsoft
//     DynamicQuantizeMatMul (activations quantized to uint8 on the fly, integer GEMM);
//   - Q8, Q4, Q4S: 8- or 4-bit weights in blocks along the input axis, each block with its own scale and
//     zero point, multiplied by com.microsoft MatMulNBits. Q4 keeps its most sensitive layers at 8 bits
//     (DefaultQuant); Q4S ("small") stores every quantized layer in 4 bits, in blocks of 64 — the
//     kind for a FLUX.1-dev transformer in 7 GB, at a measured cost in accuracy.
const (
	FP32 WeightKind = "fp32"
	FP16 WeightKind = "fp16"
	Int8 WeightKind = "int8"
	Q8   WeightKind = "q8"
	Q4   WeightKind = "q4"
	Q4S  WeightKind = "q4s"
)

// WeightKinds lists the kinds, in the order of their size.
func WeightKinds() []WeightKind { return []WeightKind{FP32, FP16, Int8, Q8, Q4, Q4S} }

// weightKindNames is WeightKinds for error messages: "fp32, fp16, …".
func weightKindNames() string {
	names := make([]string, 0, 6)
	for _, k := range WeightKinds() {
		names = append(names, string(k))
	}
	return strings.Join(names, ", ")
}

// ParseWeightKind reads a kind's name; "" is FP32.
func ParseWeightKind(s string) (WeightKind, error) {
	if s == "" {
		return FP32, nil
	}
	for _, k := range WeightKinds() {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown weight kind %q (valid: %s)", s, weightKindNames())
}

// Quantized reports whether the kind stores integer weights.
func (k WeightKind) Quantized() bool { return k == Int8 || k == Q8 || k == Q4 || k == Q4S }

// Quant says how Linear weights are quantized.
type Quant struct {
	Kind WeightKind // Int8, Q8, Q4 or Q4S
	// BlockSize is the MatMulNBits block along the input axis (a power of two ≥ 16); 0 is the kind's
	// default at AccuracyLevel (DefaultBlockSize: q8 256 at level 4, else 128). A layer whose input
	// width it does not divide takes the largest power of two that does, down to 16.
	BlockSize int
	// AccuracyLevel is MatMulNBits' accuracy_level (0 unset, 1 fp32, 2 fp16, 3 bf16, 4 int8); -1 is
	// the kind's default (DefaultAccuracyLevel).
	AccuracyLevel int
	// RoundToNearest turns the per-block error search off (the plain min/max quantizer: for
	// comparisons).
	RoundToNearest bool
	// FullRange stores int8 weights in the full ±127 instead of 7 bits (±63). ONNX Runtime's u8s8
	// kernel for AVX2 CPUs without VNNI adds pairs of uint8·int8 products in 16 bits, which saturate
	// with full-range weights: measured on such a CPU, a bench CLIP's output SNR falls from 33 to 23 dB
	// (T5: 28 to 18 dB), while 7 bits lose only ~6 dB of weight precision. VNNI CPUs add in 32 bits:
	// there the bench SD3 transformer's output SNR rises from 31.9 to 34.9 dB with full range, at the
	// same speed, so DefaultQuant(Int8) sets it on them.
	FullRange bool
	// Select, when set, replaces the rule choosing which Linear layers are quantized (QuantizesLayer).
	Select func(weight string, in, out int) bool
	// Wide, when set, names the Q4 layers stored in 8 bits instead.
	Wide func(weight string) bool
	// WideBlockSize is the block size of Wide's 8-bit layers; 0 is BlockSize.
	WideBlockSize int
	// WideAccuracyLevel is the accuracy_level of Wide's 8-bit layers (0: unset, ORT's float kernel,
	// which for 8-bit weights measured both faster and more accurate than level 4; see
	// DefaultAccuracyLevel).
	WideAccuracyLevel int
}

// Layout is how q stores a Linear weight named weight with in inputs when it quantizes it: its bits,
// block size (0 for Int8's per-channel scales) and MatMulNBits accuracy level. Defaults (BlockSize 0,
// AccuracyLevel −1) are the kind's.
func (q Quant) Layout(weight string, in int) (bits, blockSize, accuracyLevel int) {
	qw, ok := Quantized(nil, q).(quantized)
	if !ok {
		return 0, 0, 0
	}
	bits, blockSize = qw.layout(weight, in)
	return bits, blockSize, qw.accuracyLevel(bits)
}

// DefaultBlockSize is the MatMulNBits block size of the kinds on this CPU, at their
// DefaultAccuracyLevel (a layer whose input width it does not divide takes the largest power of two
// that does, down to 16). Q4: 32 (q4_0's block). Q4S: 64, the largest block that keeps FLUX.1-dev
// under 7 GB with every layer at 4 bits (6.89 GB; blocks of 32: 7.72 GB, since MatMulNBits stores a
// float32 scale per block). Q8: 256 at accuracy level 4 (CPUs with VNNI), 128 at level 0 (see
// defaultBlockSize).
func DefaultBlockSize(k WeightKind) int { return defaultBlockSize(k, DefaultAccuracyLevel(k)) }

// defaultBlockSize is the block of kind k at MatMulNBits accuracy level al.
//
// Q8 at level 0 (CPUs without VNNI): 128, measured on the bench SD3 transformer at 512² (3 interleaved
// rounds, CPU time, ±10 % noise): blocks of 32, 64 and 128 took 1.22, 1.12 and 1.10× fp32's time with
// output SNRs of 43.6, 42.5 and 41.0 dB, and 128 makes FLUX.1-dev's transformer 12.4 GB instead of
// 13.8 GB. At level 0 ONNX Runtime keeps 8-bit weights memory-mapped (BenchmarkFullSizeLoad: 12.85 GB
// after a first Run), so nothing there asks for a larger block.
//
// Q8 at level 4: 256 (before: 128, as at level 0), for the full-size FLUX.1-dev load (issue 13: ≤ 13 GB
// at q8). At level 4 ORT repacks the int8 weights into its own memory with a float32 scale and a
// float32 block sum per block, and keeps the file's scales and zero points mapped; blocks of 256 halve
// both, and loading peaks at 12.81–12.86 GB (11.93–11.98 GiB; 12.53 GB of it ORT's own) instead of
// 13.46 GB (12.90 GB ORT's own): BenchmarkFullSizeLoad, peak RSS, kinds q8 and q8-b128. The block is
// also the span over which level 4 quantizes the activations to int8, which costs some accuracy and
// no time.
// Measured on a 2-core AVX512-VNNI EPYC shared with other jobs (load 3–5), 128 → 256
// (BenchmarkWeightKindsTransformer, 512² CFG step, 1 thread, interleaved rounds, CPU time ×fp32; image
// PSNR vs fp32 after 2 steps, scripts/bench-cpu.sh):
//   - LargeSD3 (width 1536, every layer at 256; RFLOW_QUANT_MODEL=large, 6 rounds, ±11 %): output SNR
//     38.2 → 36.8 dB, 0.69 → 0.63× fp32; image PSNR (SIZE=large, 512²) SD3 42.0 → 41.3 dB, FLUX-dev
//     47.8 → 46.8 dB.
//   - the bench SD3 transformer (width 384: only the MLP output projections take 256, the rest stays
//     at 128; 12 rounds, ±5 %): output SNR 36.7 → 36.5 dB, 0.91 → 0.89× fp32; image PSNR (bench
//     fixtures) SD3 41.5 → 41.5 dB at 512² (42.1 → 42.0 at 1024²), FLUX-dev 49.1 → 48.7 (48.4 → 48.4).
func defaultBlockSize(k WeightKind, al int) int {
	switch {
	case k == Q8 && al == 4:
		return 256
	case k == Q8:
		return 128
	case k == Q4S:
		return 64
	}
	return 32
}

// DefaultAccuracyLevel is the MatMulNBits accuracy_level of the kinds on this CPU, chosen by
// measurement on the bench SD3 transformer at 512² (ORT 1.24.3, one thread;
// BenchmarkWeightKindsTransformer, CPU time over interleaved rounds): 4 (int8 activations, in blocks
// along the input axis, as ggml's q8_0 and q4_0 quantize them) for q8 on a CPU with int8 dot-product
// instructions (x86 AVX-VNNI or AVX512-VNNI), else 0 (unset: ONNX Runtime's float32 kernel, the same
// as 1).
//   - AVX512-VNNI (2-core AMD EPYC, quiet, 12 rounds, ±15–20 %): q8 (blocks of 128) level 0 1.05×
//     fp32 at 41.0 dB output SNR, level 4 0.91–0.92× at 36.7 dB (2-step image PSNR vs fp32 in
//     docs/bench-cpu.md; level 4 now takes blocks of 256, see defaultBlockSize); q4 (DefaultQuant)
//     levels 0 and 4 1.03–1.07× both, q4s 0.95 and 1.05×.
//   - AVX2 without VNNI (loaded 2-core machine, ±5–15 %): q8 levels 0/1 1.02–1.06× fp32 at 43.6 dB,
//     level 4 1.34× at 39.0 dB in every round; q4 levels 0, 1 and 4 0.87, 0.86 and 0.92×.
//
// So level 4 pays only where the CPU multiplies int8 natively, and only for 8-bit weights; a compiled
// folder records the level in its cache key, so another CPU class compiles its own.
func DefaultAccuracyLevel(k WeightKind) int {
	if k == Q8 && hasInt8DotProduct() {
		return 4
	}
	return 0
}

// hasInt8DotProduct reports whether this CPU has the int8 dot-product instructions ONNX Runtime's
// MatMulNBits level-4 kernels use on x86 (vpdpbusd); ARM's are not measured, so they keep level 0.
func hasInt8DotProduct() bool { return cpu.X86.HasAVX512VNNI || cpu.X86.HasAVXVNNI }

// Quantized makes the nets built on w store the weights of their Linear layers as q says (see
// QuantizesLayer for which). It composes with StoredAs as StoredAs(Quantized(w, q), t): the other
// parameters are then stored as t. Each weight is read from w once, when the graph is written, and
// quantized on the way: its quantized bytes, scales and zero points are separate initializers written
// one after another, so only the last quantized weight is kept between them.
func Quantized(w Weights, q Quant) Weights {
	if !q.Kind.Quantized() {
		return w
	}
	if q.AccuracyLevel < 0 {
		q.AccuracyLevel = DefaultAccuracyLevel(q.Kind)
	}
	if q.BlockSize == 0 {
		q.BlockSize = defaultBlockSize(q.Kind, q.AccuracyLevel)
	}
	return quantized{Weights: w, q: q, memo: &quantMemo{}}
}

type quantized struct {
	Weights
	q    Quant
	memo *quantMemo
}

// blockLayer matches a parameter inside a repeated block: a numbered path component
// ("transformer_blocks.3.", "encoder.layers.11.", "encoder.block.0.layer.1.").
var blockLayer = regexp.MustCompile(`\.[0-9]+\.`)

// QuantizesLayer is the default rule for which Linear weights are quantized: those inside the repeated
// blocks (attention, MLP and adaLN-modulation projections, which hold nearly all of a transformer's or
// text encoder's parameters), and not the embedders, the final norm and the output projection outside
// them (a small share of the parameters that every token's error passes through: quantizing them too
// takes the bench SD3 transformer's q4 output SNR from 18.9 to 15.2 dB), whose input width is a whole
// number of blocks. blockSize is 0 for per-channel kinds.
func QuantizesLayer(weight string, in, out, blockSize int) bool {
	if blockSize > 0 && in%blockSize != 0 {
		return false
	}
	return blockLayer.MatchString(weight) && in*out >= 4096
}

// ModulationLayer reports whether weight is an adaLN modulation projection of an SD3/FLUX block
// (norm1.linear, norm1_context.linear, FLUX single blocks' norm.linear). They hold about a third of a
// block's parameters but run on one conditioning vector per image, so keeping them at 8 bits in q4
// costs size, not time: on the bench SD3 transformer q4's output SNR goes from 18.9 to 20.6 dB and its
// size from 0.20× to about 0.235× of fp32's.
func ModulationLayer(weight string) bool {
	for _, s := range [...]string{".norm1.linear.weight", ".norm1_context.linear.weight", ".norm.linear.weight"} {
		if strings.HasSuffix(weight, s) && blockLayer.MatchString(weight) {
			return true
		}
	}
	return false
}

// layout is how the layer weight with in inputs is stored: its bits and block size (0: per channel,
// Int8). The block is the configured one, halved until it divides in (16 at least: a layer whose in
// is not a multiple of 16 is not quantized).
func (q quantized) layout(weight string, in int) (bits, blockSize int) {
	switch {
	case q.q.Kind == Int8:
		return 8, 0
	case q.q.Kind == Q4S:
		bits, blockSize = 4, q.q.BlockSize
	case q.q.Kind == Q4 && (q.q.Wide == nil || !q.q.Wide(weight)):
		bits, blockSize = 4, q.q.BlockSize
	case q.q.Kind == Q4 && q.q.WideBlockSize > 0:
		bits, blockSize = 8, q.q.WideBlockSize
	default:
		bits, blockSize = 8, q.q.BlockSize
	}
	for blockSize > 16 && in%blockSize != 0 {
		blockSize /= 2
	}
	return bits, blockSize
}

// accuracyLevel is the MatMulNBits accuracy level of a layer stored in bits.
func (q quantized) accuracyLevel(bits int) int {
	if q.q.Kind == Q4 && bits == 8 {
		return q.q.WideAccuracyLevel
	}
	return q.q.AccuracyLevel
}

// AttentionLayer reports whether weight is an attention projection of the image tokens in an SD3/FLUX
// block: to_q, to_k, to_v and to_out.0 of attn (and SD3.5's image-only attn2), not the text tokens'
// add_*_proj and to_add_out. Per byte they are the q4 transformer's most sensitive layers: on the bench
// SD3 transformer (512², one CFG step, modulation already at 8 bits) storing them at 8 bits in blocks
// of 32 adds 1.3 dB of output SNR for to_q/k/v (+3.5 % size) and 1.0 dB for to_out (+2 %), where the
// MLP's layers give 1.3–1.7 dB for +8.5 % each and the text tokens' projections 0.4 dB for +12 %.
// DefaultQuant (these and the modulation layers at 8 bits in blocks of 128): 22.8 dB against 20.6 dB
// with the modulation layers alone, for 0.6 % more size.
func AttentionLayer(weight string) bool {
	if !blockLayer.MatchString(weight) {
		return false
	}
	for _, s := range [...]string{".to_q.weight", ".to_k.weight", ".to_v.weight", ".to_out.0.weight"} {
		if strings.HasSuffix(weight, s) && (strings.Contains(weight, ".attn.") || strings.Contains(weight, ".attn2.")) {
			return true
		}
	}
	return false
}

// MLPInputLayer reports whether weight is the input projection of an SD3/FLUX block's image-token MLP
// (ff.net.0.proj; not ff_context's, nor FLUX single blocks' proj_mlp). With the modulation and
// attention layers at 8 bits it is the next most sensitive per byte: storing it at 8 bits in blocks
// of 128 takes the bench SD3 transformer's q4 output SNR from 22.9 to 25.4 dB for 3.5 % more size
// (the MLP's output projection: 25.2 dB for the same size, and slower).
func MLPInputLayer(weight string) bool {
	return strings.HasSuffix(weight, ".ff.net.0.proj.weight") && blockLayer.MatchString(weight)
}

// Q4WideLayer is DefaultQuant's rule for the q4 layers kept at 8 bits: the adaLN modulation layers
// (ModulationLayer), the image tokens' attention projections (AttentionLayer) and their MLP's input
// projection (MLPInputLayer). On the bench SD3 checkpoint (512², 4 steps, CFG 7, seed 42) the image's
// PSNR against fp32 goes from 25.5 dB (modulation layers alone, 0.235× of fp32's size) to 28.7 dB
// with the attention layers (0.237×: their 8-bit blocks of 128 cost what the modulation layers' blocks
// of 32 did) and 31.5 dB with the MLP input too (0.247×; 30.5 dB when remeasured with scripts/bench-cpu.sh, STEPS=4).
func Q4WideLayer(weight string) bool {
	return ModulationLayer(weight) || AttentionLayer(weight) || MLPInputLayer(weight)
}

// q4WideBlockSize is the block of q4's 8-bit layers (Q4WideLayer): 128, the block q8 had when q4's
// recipe was measured (its PSNRs and sizes above). Q8 moved to 256 for FLUX.1-dev's load peak
// (DefaultBlockSize); q4 did not follow, as nothing measured asks it to.
const q4WideBlockSize = 128

// DefaultQuant is the measured recipe of a quantized kind: DefaultBlockSize and DefaultAccuracyLevel,
// and for Q4 the Q4WideLayer layers at 8 bits in blocks of 128 (q4WideBlockSize) at accuracy level 0.
func DefaultQuant(k WeightKind) Quant {
	q := Quant{Kind: k, BlockSize: DefaultBlockSize(k), AccuracyLevel: DefaultAccuracyLevel(k),
		FullRange: k == Int8 && hasInt8DotProduct()}
	if k == Q4 {
		q.Wide, q.WideBlockSize = Q4WideLayer, q4WideBlockSize
	}
	return q
}

func (q quantized) selects(weight string, in, out int) bool {
	_, bs := q.layout(weight, in)
	if bs > 0 && in%bs != 0 {
		return false
	}
	if q.q.Select != nil {
		return q.q.Select(weight, in, out)
	}
	return QuantizesLayer(weight, in, out, bs)
}

// quantLinear is Linear with a quantized weight; ok is false when the layer stays float.
func (n *Net) quantLinear(x, prefix string, in, out int, bias bool) (y string, ok bool) {
	q, isQ := n.w.(quantized)
	name := prefix + ".weight"
	if !isQ {
		return "", false
	}
	badBlock := func(bs int) bool { return bs < 16 || bs&(bs-1) != 0 }
	if q.q.Kind != Int8 && (badBlock(q.q.BlockSize) || q.q.WideBlockSize != 0 && badBlock(q.q.WideBlockSize)) ||
		q.q.AccuracyLevel > 4 || q.q.WideAccuracyLevel < 0 || q.q.WideAccuracyLevel > 4 {
		n.Fail("quantized weights: block size %d/%d (want a power of two ≥ 16) or accuracy level %d/%d (want 0…4)",
			q.q.BlockSize, q.q.WideBlockSize, q.q.AccuracyLevel, q.q.WideAccuracyLevel)
		return "", false
	}
	if !q.selects(name, in, out) {
		return "", false
	}
	want := shapeOf(out, in)
	got, has := n.w.Shape(name)
	switch {
	case !has:
		n.Fail("tensor %q is missing (expected shape %v)", name, want)
		return "", false
	case got != nil && !slices.Equal(got, want):
		n.Fail("tensor %q: expected shape %v, found %v", name, want, got)
		return "", false
	}
	b := ""
	if bias {
		b = n.Param(prefix+".bias", out)
	}
	l := &quantLayer{q: q, name: name, in: in, out: out}
	bits, bs := l.bits(), l.blockSize()
	init := func(suffix string, t onnx.DataType, part quantPart, dims ...int64) string {
		return n.B.Initializer(onnx.Tensor{Name: name + suffix, Type: t, Dims: dims, Source: quantSource{l, part}})
	}
	if q.q.Kind == Int8 {
		w := init(".int8", onnx.Int8, partData, int64(in), int64(out))
		s := init(".scale", onnx.Float, partScales, int64(out))
		return n.B.OpDomain("com.microsoft", "DynamicQuantizeMatMul", optional(x, w, s, "", b), 1)[0], true
	}
	kb := int64(in / bs)
	w := init(".qweight", onnx.Uint8, partData, int64(out), kb, int64(bs*bits/8))
	s := init(".scales", onnx.Float, partScales, int64(out), kb)
	z := init(".zero_points", onnx.Uint8, partZeros, int64(out), (kb*int64(bits)+7)/8)
	return n.B.OpDomain("com.microsoft", "MatMulNBits", optional(x, w, s, z, "", b), 1,
		onnx.AttrInt("K", int64(in)), onnx.AttrInt("N", int64(out)), onnx.AttrInt("bits", int64(bits)),
		onnx.AttrInt("block_size", int64(bs)), onnx.AttrInt("accuracy_level", int64(q.accuracyLevel(bits))))[0], true
}

// optional drops the trailing absent ("") inputs of a node.
func optional(inputs ...string) []string {
	for len(inputs) > 0 && inputs[len(inputs)-1] == "" {
		inputs = inputs[:len(inputs)-1]
	}
	return inputs
}

// quantLayer is one quantized Linear weight [out, in].
type quantLayer struct {
	q       quantized
	name    string
	in, out int
}

func (l *quantLayer) bits() int {
	b, _ := l.q.layout(l.name, l.in)
	return b
}

func (l *quantLayer) blockSize() int {
	_, bs := l.q.layout(l.name, l.in)
	return bs
}

type quantPart int

const (
	partData quantPart = iota
	partScales
	partZeros
)

// quantSource writes one part of a quantized weight.
type quantSource struct {
	l    *quantLayer
	part quantPart
}

func (s quantSource) WriteRaw(w io.Writer) error {
	r, err := s.l.q.memo.get(s.l)
	if err != nil {
		return err
	}
	switch s.part {
	case partData:
		_, err = w.Write(r.data)
	case partScales:
		err = writeFloats(w, r.scales, onnx.Float)
	case partZeros:
		_, err = w.Write(r.zeros)
	}
	return err
}

// quantMemo keeps the last quantized weight, so its parts — written one after another — read and
// quantize it once.
type quantMemo struct {
	mu   sync.Mutex
	name string
	r    quantResult
}

type quantResult struct {
	data   []byte // int8 [in, out] (Int8) or packed uint8 [out, blocks, blockSize·bits/8]
	scales []float32
	zeros  []byte // packed zero points [out, ⌈blocks·bits/8⌉] (MatMulNBits)
}

func (m *quantMemo) get(l *quantLayer) (quantResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.name == l.name && m.r.data != nil {
		return m.r, nil
	}
	shape := shapeOf(l.out, l.in)
	v, err := l.q.Weights.Float32(l.name, shape)
	if err != nil {
		return quantResult{}, fmt.Errorf("tensor %q: %w", l.name, err)
	}
	if len(v) != l.in*l.out {
		return quantResult{}, fmt.Errorf("tensor %q: %d values, want %d for shape %v", l.name, len(v), l.in*l.out, shape)
	}
	q := l.q.q
	if q.Kind == Int8 {
		m.r = quantizeInt8(v, l.out, l.in, !q.FullRange, !q.RoundToNearest)
	} else {
		m.r = quantizeBlocks(v, l.out, l.in, l.bits(), l.blockSize(), !q.RoundToNearest)
	}
	m.name = l.name
	return m.r, nil
}

// parallelRows runs f on row ranges of [0, rows) on every core.
func parallelRows(rows int, f func(r0, r1 int)) {
	workers := min(runtime.GOMAXPROCS(0), max(rows/8, 1))
	chunk := (rows + workers - 1) / workers
	var wg sync.WaitGroup
	for r0 := 0; r0 < rows; r0 += chunk {
		r1 := min(r0+chunk, rows)
		wg.Go(func() { f(r0, r1) })
	}
	wg.Wait()
}

// quantizeInt8 quantizes the [out, in] weight v symmetrically per output channel to int8 (±127, or
// ±63 with reduceRange), laid out [in, out] as DynamicQuantizeMatMul's B. With search each channel's
// scale is the best of a few clipped ranges, refitted by least squares (the smallest squared error of
// the channel); otherwise it is absmax/127.
func quantizeInt8(v []float32, out, in int, reduceRange, search bool) quantResult {
	qmax := float32(127)
	if reduceRange {
		qmax = 63
	}
	r := quantResult{data: make([]byte, in*out), scales: make([]float32, out)}
	const group = 16 // rows quantized together, so the transposed writes are 16 bytes long
	parallelRows((out+group-1)/group, func(g0, g1 int) {
		q := make([]int8, group*in)
		for o0 := g0 * group; o0 < min(g1*group, out); o0 += group {
			rows := min(group, out-o0)
			for j := range rows {
				o := o0 + j
				r.scales[o] = quantizeSymmetric(v[o*in:(o+1)*in], qmax, search, q[j*in:(j+1)*in])
			}
			for k := range in {
				dst := r.data[k*out+o0 : k*out+o0+rows]
				for j := range dst {
					dst[j] = byte(q[j*in+k])
				}
			}
		}
	})
	return r
}

// roundSym is round-half-away-from-zero of t clamped to ±m.
func roundSym(t, m float32) float32 {
	t = max(-m, min(m, t))
	if t < 0 {
		return -float32(int32(-t + 0.5))
	}
	return float32(int32(t + 0.5))
}

// quantizeSymmetric sets q[i] = clamp(round(x[i]/s), ±qmax) and returns s.
func quantizeSymmetric(x []float32, qmax float32, search bool, q []int8) float32 {
	var amax float32
	for _, v := range x {
		amax = max(amax, v, -v)
	}
	if amax == 0 {
		clear(q)
		return 0
	}
	errFor := func(s float32) float32 {
		inv := 1 / s
		var e float32
		for _, v := range x {
			d := v - s*roundSym(v*inv, qmax)
			e += d * d
		}
		return e
	}
	best := amax / qmax
	if search {
		bestErr := errFor(best)
		for _, f := range [...]float32{0.95, 0.9, 0.85, 0.8} {
			if e := errFor(amax * f / qmax); e < bestErr {
				best, bestErr = amax*f/qmax, e
			}
		}
		// Least-squares scale for the integers the best scale gives.
		inv := 1 / best
		var num, den float32
		for _, v := range x {
			k := roundSym(v*inv, qmax)
			num, den = num+v*k, den+k*k
		}
		if den > 0 && num > 0 {
			if e := errFor(num / den); e < bestErr {
				best = num / den
			}
		}
	}
	inv := 1 / best
	for i, v := range x {
		q[i] = int8(roundSym(v*inv, qmax))
	}
	return best
}

// quantizeBlocks quantizes the [out, in] weight v in blocks of bs along in, as MatMulNBits stores it:
// unsigned bits-bit values q with w ≈ scale·(q − zero point), packed low bits first.
func quantizeBlocks(v []float32, out, in, bits, bs int, search bool) quantResult {
	kb := in / bs
	blob := bs * bits / 8
	zrow := (kb*bits + 7) / 8
	r := quantResult{data: make([]byte, out*kb*blob), scales: make([]float32, out*kb), zeros: make([]byte, out*zrow)}
	nmax := float32(int(1)<<bits - 1)
	parallelRows(out, func(r0, r1 int) {
		q := make([]uint8, bs)
		for o := r0; o < r1; o++ {
			for b := range kb {
				x := v[o*in+b*bs : o*in+(b+1)*bs]
				s, z := quantizeBlock(x, nmax, search, q)
				r.scales[o*kb+b] = s
				dst := r.data[(o*kb+b)*blob : (o*kb+b+1)*blob]
				if bits == 8 {
					copy(dst, q)
					r.zeros[o*zrow+b] = z
				} else {
					for j := range dst {
						dst[j] = q[2*j] | q[2*j+1]<<4
					}
					r.zeros[o*zrow+b/2] |= z << (4 * (b % 2))
				}
			}
		}
	})
	return r
}

// roundU is round-half-up of t clamped to [0, m].
func roundU(t, m float32) float32 {
	return float32(int32(max(0, min(m, t)) + 0.5))
}

// blockErr is the squared error of x quantized with scale s and zero point z.
func blockErr(x []float32, s, z, nmax float32) float32 {
	inv := 1 / s
	var e float32
	for _, v := range x {
		d := v - s*(roundU(v*inv+z, nmax)-z)
		e += d * d
	}
	return e
}

// quantizeBlock quantizes x to q in [0, nmax] with x ≈ s·(q − z), z an integer in [0, nmax], and
// returns s and z. Round to nearest takes the range [min(x, 0), max(x, 0)] as it is. The search (after
// llama.cpp's k-quants) tries a few clipped ranges anchored at either end, then moves the best
// (s, z) to the least-squares line through its integers, keeping whatever has the smallest squared
// error: never more than round to nearest's.
func quantizeBlock(x []float32, nmax float32, search bool, q []uint8) (float32, uint8) {
	var lo, hi float32
	for _, v := range x {
		lo, hi = min(lo, v), max(hi, v)
	}
	if hi == lo {
		clear(q)
		return 0, 0
	}
	s0 := (hi - lo) / nmax
	bestS, bestZ := s0, roundU(-lo/s0, nmax)
	if search {
		bestErr := blockErr(x, bestS, bestZ, nmax)
		consider := func(s, z float32) bool {
			if e := blockErr(x, s, z, nmax); e < bestErr {
				bestS, bestZ, bestErr = s, z, e
				return true
			}
			return false
		}
		for _, f := range [...]float32{1.04, 0.96, 0.92, 0.88, 0.84, 0.8, 0.75} {
			s := s0 * f
			zl, zh := roundU(-lo/s, nmax), roundU(nmax-hi/s, nmax)
			consider(s, zl)
			if zh != zl {
				consider(s, zh)
			}
		}
		for range 3 {
			if !consider(refitBlock(x, bestS, bestZ, nmax)) {
				break
			}
		}
	}
	inv := 1 / bestS
	for i, v := range x {
		q[i] = uint8(roundU(v*inv+bestZ, nmax))
	}
	return bestS, uint8(bestZ)
}

// refitBlock fits x ≈ a·k + c by least squares over the integers k that (s, z) gives, and returns
// (s, z) on that line: z = round(−c/a), and s refitted to k − z.
func refitBlock(x []float32, s, z, nmax float32) (float32, float32) {
	inv := 1 / s
	var n, sk, skk, sx, skx float32
	for _, v := range x {
		k := roundU(v*inv+z, nmax)
		n, sk, skk, sx, skx = n+1, sk+k, skk+k*k, sx+v, skx+k*v
	}
	det := n*skk - sk*sk
	if det <= 0 {
		return s, z
	}
	a := (n*skx - sk*sx) / det
	if a <= 0 {
		return s, z
	}
	c := (sx - a*sk) / n
	z2 := roundU(-c/a, nmax)
	var num, den float32
	for _, v := range x {
		k := roundU(v*inv+z, nmax) - z2
		num, den = num+v*k, den+k*k
	}
	if den <= 0 || num <= 0 {
		return s, z
	}
	return num / den, z2
}

// dequantizeBlocks is quantizeBlocks' inverse: the [out, in] weight the graph multiplies by (tests).
func dequantizeBlocks(r quantResult, out, in, bits, bs int) []float32 {
	kb, blob, zrow := in/bs, bs*bits/8, (in/bs*bits+7)/8
	w := make([]float32, out*in)
	for o := range out {
		for b := range kb {
			s := r.scales[o*kb+b]
			var z int
			if bits == 8 {
				z = int(r.zeros[o*zrow+b])
			} else {
				z = int(r.zeros[o*zrow+b/2]>>(4*(b%2))) & 15
			}
			for j := range bs {
				var k int
				if bits == 8 {
					k = int(r.data[(o*kb+b)*blob+j])
				} else {
					k = int(r.data[(o*kb+b)*blob+j/2]>>(4*(j%2))) & 15
				}
				w[o*in+b*bs+j] = s * float32(k-z)
			}
		}
	}
	return w
}

// dequantizeInt8 is quantizeInt8's inverse, back to [out, in] (tests).
func dequantizeInt8(r quantResult, out, in int) []float32 {
	w := make([]float32, out*in)
	for o := range out {
		for k := range in {
			w[o*in+k] = r.scales[o] * float32(int8(r.data[k*out+o]))
		}
	}
	return w
}
