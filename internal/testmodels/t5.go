package testmodels

import (
	"fmt"
	"math"

	"github.com/rflowrt/rflow/internal/onnx"
)

// T5Config sizes a transformers T5EncoderModel (T5 v1.1: gated-GELU FFN) built by T5Encoder.
type T5Config struct {
	Vocab, DModel, Layers, Heads, DKV, FF int
	// IDs is input_ids' element type (Int64 as Optimum exports it); IO the output's float type.
	IDs, IO onnx.DataType
	Seed    uint64
}

// T5 relative attention constants of every T5 v1.1 / XXL config.
const (
	t5Buckets     = 32
	t5MaxDistance = 128
)

// TinyT5 is a T5 encoder with the real vocabulary (32128) but 96-d, 2-layer width; DModel matches
// TinySD3's and TinyFlux's JointDim.
func TinyT5() T5Config {
	return T5Config{Vocab: 32128, DModel: 96, Layers: 2, Heads: 2, DKV: 16, FF: 96, IDs: onnx.Int64, IO: onnx.Float,
		Seed: 0x75}
}

func (c T5Config) validate() error {
	switch {
	case c.Vocab <= 0 || c.DModel <= 0 || c.Layers <= 0 || c.Heads <= 0 || c.DKV <= 0 || c.FF <= 0:
		return fmt.Errorf("t5 config %+v: sizes must be positive", c)
	case c.IDs != onnx.Int64 && c.IDs != onnx.Int32:
		return fmt.Errorf("t5 config: ids type %v, want int64 or int32", c.IDs)
	}
	return checkIO(c.IO)
}

// T5Encoder builds T5EncoderModel as Optimum exports it (t5-encoder): input input_ids
// [batch_size,sequence_length], output last_hidden_state [batch_size,sequence_length,DModel].
// Structure: embeddings; per layer RMSNorm → self-attention (no 1/√d scaling, relative position
// bias computed once and shared) → residual, RMSNorm → gated-GELU FFN (wi_0, wi_1, wo) → residual;
// final RMSNorm. No attention mask, as the pipelines pass none.
func T5Encoder(c T5Config) (*onnx.Model, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	n := NewNet("t5_encoder", DefaultOpset, c.Seed)
	batch, seq := onnx.Sym("batch_size"), onnx.Sym("sequence_length")
	ids := n.B.Input("input_ids", c.IDs, batch, seq)
	if c.IDs != onnx.Int64 {
		ids = n.Cast(ids, onnx.Int64)
	}
	h := n.Op("Gather", []string{n.Weight("", []int64{int64(c.Vocab), int64(c.DModel)}, 1), ids})
	bias := n.t5PositionBias(ids, c.Heads)
	for range c.Layers {
		h = n.t5Layer(h, bias, c)
	}
	h = n.RMSNorm(h, c.DModel, 1e-6)
	n.FloatOutput(h, "last_hidden_state", c.IO, batch, seq, onnx.Fixed(int64(c.DModel)))
	return n.Model()
}

// t5Layer is one T5Block of the encoder.
func (n *Net) t5Layer(h, bias string, c T5Config) string {
	d, inner := c.DModel, c.Heads*c.DKV
	x := n.RMSNorm(h, d, 1e-6)
	// T5 folds 1/√d_kv into the query initialisation (std (d_model·d_kv)^-½) instead of scaling scores.
	q := n.MatMul(x, n.Weight("", []int64{int64(d), int64(inner)}, 1/math.Sqrt(float64(d*c.DKV))))
	k := n.Linear(x, d, inner, false)
	v := n.Linear(x, d, inner, false)
	a := n.SDPA(n.SplitHeads(q, c.Heads), n.SplitHeads(k, c.Heads), n.SplitHeads(v, c.Heads), bias, 1)
	h = n.Add(h, n.Linear(n.MergeHeads(a), inner, d, false))
	x = n.RMSNorm(h, d, 1e-6)
	gelu := n.GELU(n.Linear(x, d, c.FF, false), true) // gelu_new
	return n.Add(h, n.Linear(n.Mul(gelu, n.Linear(x, d, c.FF, false)), c.FF, d, false))
}

// t5PositionBias is T5Attention.compute_bias for the sequence of ids [B,S]: the learned
// [buckets, heads] table gathered at the bidirectional bucket of (key − query) → [1,heads,S,S].
func (n *Net) t5PositionBias(ids string, heads int) string {
	s := n.Squeeze(n.Dim(ids, 1), 0)
	r := n.Op("Range", []string{n.ConstInt64([]int64{0}), s, n.ConstInt64([]int64{1})})
	rel := n.Sub(n.Unsqueeze(r, 0), n.Unsqueeze(r, 1)) // memory − context
	table := n.Weight("", []int64{t5Buckets, int64(heads)}, 1)
	b := n.Op("Gather", []string{table, n.t5Bucket(rel)}) // [S,S,heads]
	return n.Unsqueeze(n.Transpose(b, 2, 0, 1), 0)
}

// t5Bucket is _relative_position_bucket(rel, bidirectional=True, num_buckets=32, max_distance=128),
// with the same float32 steps for the logarithmic buckets.
func (n *Net) t5Bucket(rel string) string {
	const half = t5Buckets / 2 // 16: one half per direction
	const exact = half / 2     // 8
	i64 := func(v int64) string { return n.ConstInt64([]int64{v}) }
	f32 := n.Scalar
	dir := n.Mul(n.Cast(n.Op("Greater", []string{rel, i64(0)}), onnx.Int64), i64(half))
	a := n.Op("Abs", []string{rel})
	small := n.Op("Less", []string{a, i64(exact)})
	af := n.Op("Max", []string{n.Cast(a, onnx.Float), f32(1)}) // log(0) is discarded by Where anyway
	l := n.Op("Log", []string{n.Div(af, f32(exact))})
	l = n.Mul(n.Div(l, f32(float32(math.Log(t5MaxDistance/exact)))), f32(half-exact))
	large := n.Op("Min", []string{n.Add(n.Cast(l, onnx.Int64), i64(exact)), i64(half - 1)})
	return n.Add(dir, n.Op("Where", []string{small, a, large}))
}
