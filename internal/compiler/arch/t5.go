package arch

import (
	"fmt"
	"math"
	"strings"

	"github.com/rflowrt/rflow/internal/onnx"
)

// T5EncoderConfig is what the graph of a transformers T5EncoderModel depends on, read from its
// config.json (T5Config field names; absent fields take transformers' defaults).
type T5EncoderConfig struct {
	Vocab, DModel, DKV, Heads, Layers, DFF int
	// Buckets and MaxDistance parameterize the relative position buckets.
	Buckets, MaxDistance int
	// Act is the feed-forward activation and Gated whether the FFN is gated (wi_0, wi_1) or not (wi).
	Act   string
	Gated bool
	Eps   float32 // layer_norm_epsilon
}

// ParseT5Config reads a T5EncoderModel config.json. The feed-forward is T5Config's: feed_forward_proj
// ("relu" by default, "gated-ACT", or "ACT"; "gated-gelu" means gelu_new), then dense_act_fn and
// is_gated_act when the file carries them (transformers sets them after, so they win: FLUX's
// text_encoder_2 config has only those two).
func ParseT5Config(c Config) (T5EncoderConfig, error) {
	r := configReader{c: c}
	tc := T5EncoderConfig{
		Vocab:       r.required("vocab_size"),
		DModel:      r.required("d_model"),
		DKV:         r.required("d_kv"),
		Heads:       r.required("num_heads"),
		Layers:      r.required("num_layers"),
		DFF:         r.required("d_ff"),
		Buckets:     r.int("relative_attention_num_buckets", 32),
		MaxDistance: r.int("relative_attention_max_distance", 128),
		Eps:         float32(r.float("layer_norm_epsilon", 1e-6)),
	}
	proj := r.str("feed_forward_proj", "relu")
	parts := strings.Split(proj, "-")
	tc.Act, tc.Gated = parts[len(parts)-1], parts[0] == "gated"
	if len(parts) > 1 && parts[0] != "gated" || len(parts) > 2 {
		r.fail("feed_forward_proj %q, want gated-ACT or ACT", proj)
	}
	if proj == "gated-gelu" {
		tc.Act = "gelu_new"
	}
	tc.Act = r.str("dense_act_fn", tc.Act)
	tc.Gated = r.bool("is_gated_act", tc.Gated)
	if r.err != nil {
		return tc, r.err
	}
	switch {
	case tc.Buckets < 4 || tc.Buckets > 1<<16:
		return tc, fmt.Errorf("config: relative_attention_num_buckets %d, want 4…65536", tc.Buckets)
	case tc.MaxDistance <= tc.Buckets/4 || tc.MaxDistance > 1<<20:
		return tc, fmt.Errorf("config: relative_attention_max_distance %d, want more than num_buckets/4 (%d)",
			tc.MaxDistance, tc.Buckets/4)
	case !(tc.Eps > 0):
		return tc, fmt.Errorf("config: layer_norm_epsilon %v, want a positive number", tc.Eps)
	}
	return tc, nil
}

// T5Encoder builds transformers' T5EncoderModel from config c and weights named as its state dict
// (shared.weight or its tie encoder.embed_tokens.weight, encoder.block.N.layer.0.SelfAttention.q.weight,
// encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight, encoder.block.N.layer.1
// .DenseReluDense.wi_0.weight, encoder.final_layer_norm.weight, …), with the I/O of Optimum's t5-encoder
// export: input input_ids [batch_size, sequence_length] (io.IDs), output last_hidden_state
// [batch_size, sequence_length, d_model] (io.Float).
//
// Per block: T5LayerNorm (RMS, no mean, no bias) → self-attention without 1/√d_kv scaling (T5 folds it
// into the query weights) plus the relative position bias that block 0 computes and every block
// reuses → residual; T5LayerNorm → gated or plain FFN → residual; then the final T5LayerNorm. No
// attention mask input: the SD3 and FLUX pipelines pass none.
func T5Encoder(w Weights, c Config, io IO) (*onnx.Model, error) {
	tc, err := ParseT5Config(c)
	if err != nil {
		return nil, err
	}
	if io, err = io.withDefaults(); err != nil {
		return nil, err
	}
	n := NewNet("t5_encoder", w)
	batch, seq := onnx.Sym("batch_size"), onnx.Sym("sequence_length")
	ids := n.B.Input("input_ids", io.IDs, batch, seq)
	if io.IDs != onnx.Int64 {
		ids = n.Cast(ids, onnx.Int64)
	}
	embed := "shared.weight"
	if !n.Has(embed) && n.Has("encoder.embed_tokens.weight") {
		embed = "encoder.embed_tokens.weight" // checkpoints that keep only the encoder's side of the tie
	}
	h := n.Op("Gather", []string{n.Param(embed, tc.Vocab, tc.DModel), ids})
	bias := n.t5PositionBias(ids, "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", tc)
	for i := range tc.Layers {
		h = n.t5Block(h, bias, fmt.Sprintf("encoder.block.%d.", i), tc)
	}
	h = n.RMSNorm(h, "encoder.final_layer_norm.weight", tc.DModel, tc.Eps)
	n.FloatOutput(h, "last_hidden_state", io.Float, batch, seq, onnx.Fixed(int64(tc.DModel)))
	return n.Model()
}

// t5Block is one encoder T5Block named prefix.
func (n *Net) t5Block(h, bias, prefix string, tc T5EncoderConfig) string {
	d, inner := tc.DModel, tc.Heads*tc.DKV
	a := prefix + "layer.0."
	x := n.RMSNorm(h, a+"layer_norm.weight", d, tc.Eps)
	q := n.SplitHeads(n.Linear(x, a+"SelfAttention.q", d, inner, false), tc.Heads)
	k := n.SplitHeads(n.Linear(x, a+"SelfAttention.k", d, inner, false), tc.Heads)
	v := n.SplitHeads(n.Linear(x, a+"SelfAttention.v", d, inner, false), tc.Heads)
	att := n.MergeHeads(n.SDPA(q, k, v, bias, 1))
	h = n.Add(h, n.Linear(att, a+"SelfAttention.o", inner, d, false))

	f := prefix + "layer.1."
	x = n.RMSNorm(h, f+"layer_norm.weight", d, tc.Eps)
	ff := f + "DenseReluDense."
	if tc.Gated {
		x = n.Mul(n.Activation(n.Linear(x, ff+"wi_0", d, tc.DFF, false), tc.Act), n.Linear(x, ff+"wi_1", d, tc.DFF, false))
	} else {
		x = n.Activation(n.Linear(x, ff+"wi", d, tc.DFF, false), tc.Act)
	}
	return n.Add(h, n.Linear(x, ff+"wo", tc.DFF, d, false))
}

// t5PositionBias is T5Attention.compute_bias for the encoder (bidirectional) on ids [B,S]: the
// learned [buckets, heads] table (state-dict name table) gathered at the bucket of memory − context
// position → [1, heads, S, S].
func (n *Net) t5PositionBias(ids, table string, tc T5EncoderConfig) string {
	s := n.Squeeze(n.Dim(ids, 1), 0)
	r := n.Op("Range", []string{n.ConstInt64([]int64{0}), s, n.ConstInt64([]int64{1})})
	rel := n.Sub(n.Unsqueeze(r, 0), n.Unsqueeze(r, 1))
	b := n.Op("Gather", []string{n.Param(table, tc.Buckets, tc.Heads), n.t5Bucket(rel, tc)}) // [S,S,heads]
	return n.Unsqueeze(n.Transpose(b, 2, 0, 1), 0)
}

// t5Bucket maps int64 relative positions to T5Attention._relative_position_bucket(rel,
// bidirectional=True, num_buckets, max_distance): half the buckets per direction (the upper half for
// rel > 0), within one exact steps below max_exact = half/2, logarithmic bins above, the last bin from
// max_distance on. The bins of |rel| are a table computed here with transformers' float32 steps, so
// the graph does no logarithm: the buckets are exact on every execution provider.
func (n *Net) t5Bucket(rel string, tc T5EncoderConfig) string {
	table := t5BucketTable(tc.Buckets, tc.MaxDistance)
	half := int64(tc.Buckets / 2)
	dir := n.Mul(n.Cast(n.Op("Greater", []string{rel, n.ConstInt64([]int64{0})}), onnx.Int64), n.ConstInt64([]int64{half}))
	a := n.Op("Min", []string{n.Op("Abs", []string{rel}), n.ConstInt64([]int64{int64(len(table) - 1)})})
	return n.Add(dir, n.Op("Gather", []string{n.ConstInt64(table, int64(len(table))), a}))
}

// t5BucketTable is the one-direction bucket of |rel| = 0, 1, … up to the first distance whose bucket
// is the last (half−1), which every larger distance shares:
// max_exact + int64(float32(log(float32(|rel|)/max_exact)) / float32(log(max_distance/max_exact)) · (half−max_exact)),
// capped at half−1, and |rel| itself below max_exact.
func t5BucketTable(buckets, maxDistance int) []int64 {
	half := buckets / 2
	exact := half / 2
	logRatio := float32(math.Log(float64(maxDistance) / float64(exact)))
	var table []int64
	for a := 0; ; a++ {
		if a < exact {
			table = append(table, int64(a))
			continue
		}
		l := float32(math.Log(float64(float32(a) / float32(exact))))
		b := min(int64(exact)+int64(l/logRatio*float32(half-exact)), int64(half-1))
		table = append(table, b)
		if b == int64(half-1) {
			return table
		}
	}
}
