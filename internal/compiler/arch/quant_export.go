package arch

import (
	"errors"
	"fmt"
)

// QuantizedLinear is one Linear weight quantized the way compiled graphs store it.
type QuantizedLinear struct {
	Kind WeightKind
	// Bits (8 or 4), BlockSize and AccuracyLevel are MatMulNBits' attributes (Q8, Q4): Quant.Layout.
	Bits, BlockSize, AccuracyLevel int
	// Data is int8 [in, out] (Int8: DynamicQuantizeMatMul's B) or uint8 [out, blocks,
	// blockSize·bits/8] (MatMulNBits' B).
	Data []byte
	// Scales is [out] (Int8) or [out, blocks]; Zeros the packed zero points [out, ⌈blocks·bits/8⌉].
	Scales []float32
	Zeros  []byte
}

// QuantSelects reports whether q quantizes the Linear layer whose weight (state-dict name, e.g.
// "transformer_blocks.3.attn.to_q.weight") is [out, in]: the rule compiled graphs follow
// (QuantizesLayer, or q.Select).
func QuantSelects(q Quant, weight string, in, out int) bool {
	qw, ok := Quantized(nil, q).(quantized)
	return ok && qw.selects(weight, in, out)
}

// QuantizeLinear quantizes the [out, in] Linear weight v named weight exactly as a compiled graph
// stores it for q (the same quantizer, defaults, search and q4 Wide rule); ok is false when q leaves
// the layer float (QuantSelects).
func QuantizeLinear(q Quant, weight string, v []float32, out, in int) (QuantizedLinear, bool, error) {
	if !q.Kind.Quantized() {
		return QuantizedLinear{}, false, fmt.Errorf("weight kind %q is not a quantized kind", q.Kind)
	}
	if len(v) != out*in {
		return QuantizedLinear{}, false, fmt.Errorf("tensor %q: %d values, want %d×%d", weight, len(v), out, in)
	}
	qw := Quantized(oneTensor{name: weight, t: Tensor{Shape: shapeOf(out, in), Data: v}}, q).(quantized)
	badBlock := func(bs int) bool { return bs < 16 || bs&(bs-1) != 0 }
	if qw.q.Kind != Int8 && (badBlock(qw.q.BlockSize) || qw.q.WideBlockSize != 0 && badBlock(qw.q.WideBlockSize)) ||
		qw.q.AccuracyLevel > 4 || qw.q.WideAccuracyLevel < 0 || qw.q.WideAccuracyLevel > 4 {
		return QuantizedLinear{}, false, fmt.Errorf("block size %d/%d (want a power of two ≥ 16) or accuracy level %d/%d (want 0…4)",
			qw.q.BlockSize, qw.q.WideBlockSize, qw.q.AccuracyLevel, qw.q.WideAccuracyLevel)
	}
	if !qw.selects(weight, in, out) {
		return QuantizedLinear{}, false, nil
	}
	l := &quantLayer{q: qw, name: weight, in: in, out: out}
	r, err := qw.memo.get(l)
	if err != nil {
		return QuantizedLinear{}, false, err
	}
	ql := QuantizedLinear{Kind: q.Kind, Data: r.data, Scales: r.scales, Zeros: r.zeros}
	if q.Kind != Int8 {
		ql.Bits, ql.BlockSize, ql.AccuracyLevel = q.Layout(weight, in)
	}
	return ql, true, nil
}

// oneTensor is the Weights of a single tensor.
type oneTensor struct {
	name string
	t    Tensor
}

func (o oneTensor) Shape(name string) ([]int64, bool) {
	if name != o.name {
		return nil, false
	}
	return o.t.Shape, true
}

func (o oneTensor) Float32(name string, shape []int64) ([]float32, error) {
	if name != o.name {
		return nil, errors.New("no such tensor")
	}
	return o.t.Data, nil
}
