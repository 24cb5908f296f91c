package arch

import (
	"fmt"
	"math"

	"github.com/rflowrt/rflow/internal/onnx"
)

// The transformers classes a CLIP text encoder config can name in "architectures".
const (
	clipTextModel               = "CLIPTextModel"
	clipTextModelWithProjection = "CLIPTextModelWithProjection"
)

// CLIPTextConfig is what the graph of a transformers CLIP text encoder depends on, read from its
// config.json (CLIPTextConfig field names; absent fields take transformers' defaults).
type CLIPTextConfig struct {
	Vocab, Hidden, Intermediate, Layers, Heads, MaxPositions int
	// ProjectionDim is text_projection's output width (used only with the projection).
	ProjectionDim int
	HiddenAct     string  // the MLP activation: quick_gelu (CLIP-L), gelu (CLIP-G), …
	LayerNormEps  float32 // layer_norm_eps
	// EOSTokenID picks the pooled position: 2 (legacy configs, SD3's and FLUX's among them) pools at
	// argmax(input_ids), which is the EOS because it is the largest id of the original vocabulary;
	// any other value pools at the first occurrence of that id.
	EOSTokenID int64
	// Architecture is CLIPTextModel, CLIPTextModelWithProjection, or "" when "architectures" names
	// neither; then the weights decide (see CLIPText).
	Architecture string
}

// ParseCLIPConfig reads a CLIPTextModel(WithProjection) config.json.
func ParseCLIPConfig(c Config) (CLIPTextConfig, error) {
	r := configReader{c: c}
	cc := CLIPTextConfig{
		Vocab:         r.required("vocab_size"),
		Hidden:        r.required("hidden_size"),
		Intermediate:  r.required("intermediate_size"),
		Layers:        r.required("num_hidden_layers"),
		Heads:         r.required("num_attention_heads"),
		MaxPositions:  r.required("max_position_embeddings"),
		ProjectionDim: r.int("projection_dim", 512),
		HiddenAct:     r.str("hidden_act", "quick_gelu"),
		LayerNormEps:  float32(r.float("layer_norm_eps", 1e-5)),
		EOSTokenID:    int64(r.int("eos_token_id", 49407)),
	}
	for _, a := range r.strs("architectures", nil) {
		if a == clipTextModel || a == clipTextModelWithProjection {
			cc.Architecture = a
		}
	}
	if r.err != nil {
		return cc, r.err
	}
	switch {
	case cc.Hidden%cc.Heads != 0:
		return cc, fmt.Errorf("config: hidden_size %d is not a multiple of num_attention_heads %d", cc.Hidden, cc.Heads)
	case cc.Architecture == clipTextModelWithProjection && cc.ProjectionDim <= 0:
		return cc, fmt.Errorf("config: projection_dim %d, want a positive width", cc.ProjectionDim)
	case !(cc.LayerNormEps > 0):
		return cc, fmt.Errorf("config: layer_norm_eps %v, want a positive number", cc.LayerNormEps)
	}
	return cc, nil
}

// CLIPText builds transformers' CLIPTextModel or CLIPTextModelWithProjection from config c and
// weights named as their state dicts (text_model.embeddings.token_embedding.weight,
// text_model.encoder.layers.N.self_attn.q_proj.weight, …, text_model.final_layer_norm.weight,
// text_projection.weight), with the I/O of Optimum's exports:
//   - input input_ids [batch_size, sequence_length] (io.IDs);
//   - CLIPTextModel (clip-text, FLUX's text_encoder): last_hidden_state [B,S,hidden], pooler_output
//     [B,hidden];
//   - CLIPTextModelWithProjection (clip-text-with-projection exported with hidden states, SD3's
//     text_encoder and text_encoder_2): text_embeds [B,projection_dim], last_hidden_state, and
//     hidden_states.0…num_hidden_layers (the embeddings, then each layer's output before the final
//     layer norm).
//
// The variant is the one the config's "architectures" names. A config that names neither class (a
// single-file checkpoint's synthesized config) gets the projection when the weights hold
// text_projection.weight. Without an attention mask input, as the SD3 and FLUX pipelines call it.
func CLIPText(w Weights, c Config, io IO) (*onnx.Model, error) {
	cc, err := ParseCLIPConfig(c)
	if err != nil {
		return nil, err
	}
	if io, err = io.withDefaults(); err != nil {
		return nil, err
	}
	n := NewNet("clip_text_encoder", w)
	withProjection := cc.Architecture == clipTextModelWithProjection ||
		cc.Architecture == "" && n.Has("text_projection.weight")
	if withProjection && cc.ProjectionDim <= 0 {
		return nil, fmt.Errorf("config: projection_dim %d, want a positive width", cc.ProjectionDim)
	}

	batch, seq := onnx.Sym("batch_size"), onnx.Sym("sequence_length")
	ids := n.B.Input("input_ids", io.IDs, batch, seq)
	if io.IDs != onnx.Int64 {
		ids = n.Cast(ids, onnx.Int64)
	}
	const p = "text_model."
	tok := n.Param(p+"embeddings.token_embedding.weight", cc.Vocab, cc.Hidden)
	pos := n.Param(p+"embeddings.position_embedding.weight", cc.MaxPositions, cc.Hidden)
	h := n.Add(n.Op("Gather", []string{tok, ids}), n.Op("Slice", []string{pos, n.Ints(0), n.Dim(ids, 1), n.Ints(0)}))
	mask := n.clipCausalMask(ids)
	hidden := []string{h}
	for i := range cc.Layers {
		h = n.clipLayer(h, mask, fmt.Sprintf("%sencoder.layers.%d.", p, i), cc)
		hidden = append(hidden, h)
	}
	last := n.LayerNorm(h, p+"final_layer_norm", cc.Hidden, cc.LayerNormEps)
	pooled := n.Op("GatherND", []string{last, n.clipPooledIndex(ids, cc.EOSTokenID)}, onnx.AttrInt("batch_dims", 1))

	hd := onnx.Fixed(int64(cc.Hidden))
	if !withProjection {
		n.FloatOutput(last, "last_hidden_state", io.Float, batch, seq, hd)
		n.FloatOutput(pooled, "pooler_output", io.Float, batch, hd)
		return n.Model()
	}
	embeds := n.Linear(pooled, "text_projection", cc.Hidden, cc.ProjectionDim, false)
	n.FloatOutput(embeds, "text_embeds", io.Float, batch, onnx.Fixed(int64(cc.ProjectionDim)))
	n.FloatOutput(last, "last_hidden_state", io.Float, batch, seq, hd)
	for i, s := range hidden {
		n.FloatOutput(s, fmt.Sprintf("hidden_states.%d", i), io.Float, batch, seq, hd)
	}
	return n.Model()
}

// clipCausalMask is the additive [S,S] causal mask of transformers' _create_4d_causal_attention_mask
// for ids [B,S]: float32's lowest value where key > query, 0 elsewhere.
func (n *Net) clipCausalMask(ids string) string {
	r := n.Op("Range", []string{n.ConstInt64([]int64{0}), n.Squeeze(n.Dim(ids, 1), 0), n.ConstInt64([]int64{1})})
	future := n.Op("Greater", []string{n.Unsqueeze(r, 0), n.Unsqueeze(r, 1)})
	return n.Op("Where", []string{future, n.Scalar(-math.MaxFloat32), n.Scalar(0)})
}

// clipLayer is CLIPEncoderLayer named prefix: h + attn(layer_norm1(h)), then + mlp(layer_norm2(·)).
// The attention is the eager one: the query is scaled by head_dim^-½ before q·kᵀ.
func (n *Net) clipLayer(h, mask, prefix string, cc CLIPTextConfig) string {
	d := cc.Hidden
	x := n.LayerNorm(h, prefix+"layer_norm1", d, cc.LayerNormEps)
	a := prefix + "self_attn."
	scale := n.Scalar(float32(math.Pow(float64(d/cc.Heads), -0.5)))
	q := n.SplitHeads(n.Mul(n.Linear(x, a+"q_proj", d, d, true), scale), cc.Heads)
	k := n.SplitHeads(n.Linear(x, a+"k_proj", d, d, true), cc.Heads)
	v := n.SplitHeads(n.Linear(x, a+"v_proj", d, d, true), cc.Heads)
	h = n.Add(h, n.Linear(n.MergeHeads(n.SDPA(q, k, v, mask, 1)), a+"out_proj", d, d, true))
	x = n.LayerNorm(h, prefix+"layer_norm2", d, cc.LayerNormEps)
	x = n.Activation(n.Linear(x, prefix+"mlp.fc1", d, cc.Intermediate, true), cc.HiddenAct)
	return n.Add(h, n.Linear(x, prefix+"mlp.fc2", cc.Intermediate, d, true))
}

// clipPooledIndex is CLIPTextTransformer's pooled position per row, as [B,1]: argmax(ids as int32)
// when eos is 2 (legacy configs), else the first position where ids == eos (0 when a row has none,
// as argmax of all zeros). ArgMax keeps the first of equal maxima, as torch does.
func (n *Net) clipPooledIndex(ids string, eos int64) string {
	key := n.Cast(ids, onnx.Int32)
	if eos != 2 {
		key = n.Cast(n.Op("Equal", []string{ids, n.ConstInt64([]int64{eos})}), onnx.Int32)
	}
	return n.Op("ArgMax", []string{key}, onnx.AttrInt("axis", 1), onnx.AttrInt("keepdims", 1))
}
