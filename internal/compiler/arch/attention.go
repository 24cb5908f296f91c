package arch

import (
	"fmt"

	"github.com/rflowrt/rflow/internal/onnx"
)

// AttentionOp is the operator the builders emit for scaled dot-product attention.
type AttentionOp int

const (
	// FusedAttention (the default) is com.microsoft MultiHeadAttention wherever it computes the same
	// attention: no additive bias or mask. ORT's CPU kernel runs it as flash attention (MLAS) when it
	// has float32 [B, S, D] q, k, v and no attention_bias, key_padding_mask, past/present or
	// unidirectional: it never holds a [S_q, S_k] score matrix (about 1 GB each for the SD3 bench
	// transformer at 1024²). Attention with a bias (CLIP's causal mask, T5's position bias) stays
	// unfused, since ORT takes its non-flash path for it and materialises the probabilities anyway.
	FusedAttention AttentionOp = iota
	// UnfusedAttention is MatMul → Softmax → MatMul, the form torch's exporter writes.
	UnfusedAttention
	// ONNXAttention is ai.onnx Attention (opset 23): the net is built at opset 23. ORT 1.24's CPU
	// kernel still materialises the probabilities (SD3 bench at 1024²: 2.3 GB peak against 0.76 GB
	// fused) and takes more CPU time (BenchmarkAttention); kept for comparison and for runtimes
	// without com.microsoft operators.
	ONNXAttention
)

// String names the operator as the flags and reports spell it.
func (a AttentionOp) String() string {
	switch a {
	case FusedAttention:
		return "fused"
	case UnfusedAttention:
		return "unfused"
	case ONNXAttention:
		return "onnx"
	}
	return fmt.Sprintf("AttentionOp(%d)", int(a))
}

// ParseAttentionOp reads an AttentionOp from its String form.
func ParseAttentionOp(s string) (AttentionOp, error) {
	for _, a := range []AttentionOp{FusedAttention, UnfusedAttention, ONNXAttention} {
		if a.String() == s {
			return a, nil
		}
	}
	return 0, fmt.Errorf("unknown attention operator %q (valid: fused, unfused, onnx)", s)
}

// onnxAttentionOpset is the first ai.onnx opset with the Attention operator.
const onnxAttentionOpset = 23

// UseAttention makes the net emit attention as op; call it before building any node. ONNXAttention
// raises the net's opset to 23.
func (n *Net) UseAttention(op AttentionOp) {
	switch op {
	case FusedAttention, UnfusedAttention:
	case ONNXAttention:
		if n.opset < onnxAttentionOpset {
			// the builder is still empty (UseAttention comes first), so it can be restarted
			n.opset = onnxAttentionOpset
			n.B = onnx.NewBuilder(n.B.Model().Graph.Name, onnxAttentionOpset)
		}
	default:
		n.Fail("unknown attention operator %d", int(op))
		return
	}
	n.attention = op
}

// fusedAttention is softmax(q·kᵀ·scale)·v for q, k, v [B, S, heads·headDim] with the heads merged, as
// one fused operator; ok is false when the net emits attention unfused.
func (n *Net) fusedAttention(q, k, v string, heads int, scale float32) (string, bool) {
	switch n.attention {
	case FusedAttention:
		return n.B.OpDomain("com.microsoft", "MultiHeadAttention", []string{q, k, v}, 1,
			onnx.AttrInt("num_heads", int64(heads)), onnx.AttrFloat("scale", scale))[0], true
	case ONNXAttention:
		return n.Op("Attention", []string{q, k, v}, onnx.AttrInt("q_num_heads", int64(heads)),
			onnx.AttrInt("kv_num_heads", int64(heads)), onnx.AttrFloat("scale", scale)), true
	}
	return "", false
}

// AttentionHeads is SDPA on split heads q, k, v [B, heads, S, d] followed by MergeHeads: the result
// is [B, S_q, heads·d]. Without a bias it is one fused operator (unless the net is unfused), fed the
// heads merged back.
func (n *Net) AttentionHeads(q, k, v, bias string, heads int, scale float32) string {
	if bias == "" && n.attention != UnfusedAttention {
		y, _ := n.fusedAttention(n.MergeHeads(q), n.MergeHeads(k), n.MergeHeads(v), heads, scale)
		return y
	}
	return n.MergeHeads(n.SDPA(q, k, v, bias, scale))
}
