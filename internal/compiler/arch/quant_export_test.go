package arch

import (
	"strings"
	"testing"
)

// QuantizeLinear gives the bytes a compiled graph stores for the layer (its own quantizer and
// layout), leaves unselected layers alone and rejects bad input.
func TestQuantizeLinear(t *testing.T) {
	const in, out = 64, 96
	v := make([]float32, in*out)
	for i := range v {
		v[i] = float32(i%13) - 6
	}
	for _, k := range []WeightKind{Int8, Q8, Q4} {
		q := DefaultQuant(k)
		ql, ok, err := QuantizeLinear(q, "blocks.0.ff.weight", v, out, in)
		if err != nil || !ok {
			t.Fatalf("%s: ok %v, %v", k, ok, err)
		}
		l := &quantLayer{q: Quantized(oneTensor{"blocks.0.ff.weight", Tensor{Shape: shapeOf(out, in), Data: v}}, q).(quantized),
			name: "blocks.0.ff.weight", in: in, out: out}
		want, err := l.q.memo.get(l)
		if err != nil || string(want.data) != string(ql.Data) || len(want.scales) != len(ql.Scales) {
			t.Errorf("%s: QuantizeLinear differs from the graph's quantizer (%v)", k, err)
		}
		bits, bs, level := q.Layout("blocks.0.ff.weight", in)
		if k != Int8 && (ql.Bits != bits || ql.BlockSize != bs || ql.AccuracyLevel != level || in%ql.BlockSize != 0) {
			t.Errorf("%s: layout %d/%d/%d, want %d/%d/%d", k, ql.Bits, ql.BlockSize, ql.AccuracyLevel, bits, bs, level)
		}
		if _, ok, err := QuantizeLinear(q, "proj_out.weight", v, out, in); ok || err != nil {
			t.Errorf("%s: a layer outside the blocks was quantized (%v)", k, err)
		}
		if QuantSelects(q, "proj_out.weight", in, out) || !QuantSelects(q, "blocks.0.ff.weight", in, out) {
			t.Errorf("%s: QuantSelects disagrees with the layer rule", k)
		}
	}
	if _, _, err := QuantizeLinear(Quant{Kind: FP16}, "blocks.0.ff.weight", v, out, in); err == nil {
		t.Error("fp16 accepted as a quantized kind")
	}
	if _, _, err := QuantizeLinear(DefaultQuant(Q8), "blocks.0.ff.weight", v[:10], out, in); err == nil || !strings.Contains(err.Error(), "10 values") {
		t.Errorf("short weight: %v", err)
	}
	if _, _, err := QuantizeLinear(Quant{Kind: Q4, BlockSize: 24}, "blocks.0.ff.weight", v, out, in); err == nil {
		t.Error("block size 24 accepted")
	}
}
