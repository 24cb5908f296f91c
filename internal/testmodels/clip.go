package testmodels

import (
	"fmt"
	"math"

	"github.com/rflowrt/rflow/internal/onnx"
)

// CLIPConfig sizes a transformers CLIP text encoder built by CLIPTextEncoder.
type CLIPConfig struct {
	Vocab, Hidden, Layers, Heads, Intermediate, MaxPositions int
	// Projection > 0 builds CLIPTextModelWithProjection (outputs text_embeds, last_hidden_state,
	// hidden_states.0…Layers, as SD3's text_encoder/text_encoder_2); 0 builds CLIPTextModel
	// (last_hidden_state, pooler_output, as FLUX's text_encoder).
	Projection int
	// EOSTokenID selects the pooled position: the first occurrence of this id, or argmax(input_ids)
	// when it is 2 (legacy configs, including SD3's and FLUX's).
	EOSTokenID int64
	// IDs is input_ids' element type (Int64, or Int32 as older exports); IO the float outputs' type.
	IDs, IO onnx.DataType
	Seed    uint64
}

// TinyCLIP is a CLIP text encoder with the real vocabulary (49408) and 77 positions but 32-d,
// 2-layer width; proj > 0 gives the with-projection variant.
func TinyCLIP(proj int) CLIPConfig {
	return CLIPConfig{Vocab: 49408, Hidden: 32, Layers: 2, Heads: 2, Intermediate: 64, MaxPositions: 77,
		Projection: proj, EOSTokenID: 2, IDs: onnx.Int64, IO: onnx.Float, Seed: 0xc11 + uint64(proj)}
}

func (c CLIPConfig) validate() error {
	switch {
	case c.Vocab <= 0 || c.Hidden <= 0 || c.Layers <= 0 || c.Heads <= 0 || c.Intermediate <= 0 ||
		c.MaxPositions <= 0 || c.Projection < 0:
		return fmt.Errorf("clip config %+v: sizes must be positive", c)
	case c.Hidden%c.Heads != 0:
		return fmt.Errorf("clip config: hidden %d is not a multiple of heads %d", c.Hidden, c.Heads)
	case c.IDs != onnx.Int64 && c.IDs != onnx.Int32:
		return fmt.Errorf("clip config: ids type %v, want int64 or int32", c.IDs)
	}
	return checkIO(c.IO)
}

// CLIPTextEncoder builds CLIPTextModel(WithProjection) as Optimum exports it (clip-text,
// clip-text-with-projection): input input_ids [batch_size,sequence_length]; outputs in Optimum order.
func CLIPTextEncoder(c CLIPConfig) (*onnx.Model, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	n := NewNet("clip_text_encoder", DefaultOpset, c.Seed)
	batch, seq := onnx.Sym("batch_size"), onnx.Sym("sequence_length")
	ids := n.B.Input("input_ids", c.IDs, batch, seq)
	if c.IDs != onnx.Int64 {
		ids = n.Cast(ids, onnx.Int64)
	}
	h := n.clipEmbeddings(ids, c)
	mask := n.causalMask(h, c.MaxPositions)
	hidden := []string{h}
	for range c.Layers {
		h = n.clipLayer(h, mask, c)
		hidden = append(hidden, h)
	}
	last := n.LayerNorm(h, c.Hidden, true, 1e-5)
	pooled := n.Op("GatherND", []string{last, n.eosIndex(ids, c.EOSTokenID)}, onnx.AttrInt("batch_dims", 1))
	hd := onnx.Fixed(int64(c.Hidden))
	if c.Projection == 0 {
		n.FloatOutput(last, "last_hidden_state", c.IO, batch, seq, hd)
		n.FloatOutput(pooled, "pooler_output", c.IO, batch, hd)
		return n.Model()
	}
	p := c.Projection
	w := n.Weight("", []int64{int64(c.Hidden), int64(p)}, 1/math.Sqrt(float64(c.Hidden)))
	n.FloatOutput(n.MatMul(pooled, w), "text_embeds", c.IO, batch, onnx.Fixed(int64(p)))
	n.FloatOutput(last, "last_hidden_state", c.IO, batch, seq, hd)
	for i, s := range hidden {
		n.FloatOutput(s, fmt.Sprintf("hidden_states.%d", i), c.IO, batch, seq, hd)
	}
	return n.Model()
}

// clipEmbeddings is token_embedding(ids) + position_embedding(arange(S)), std 0.02 and 0.01 as the
// transformers initialisation.
func (n *Net) clipEmbeddings(ids string, c CLIPConfig) string {
	tok := n.Weight("", []int64{int64(c.Vocab), int64(c.Hidden)}, 0.02)
	pos := n.Weight("", []int64{int64(c.MaxPositions), int64(c.Hidden)}, 0.01)
	e := n.Op("Gather", []string{tok, ids})
	p := n.Op("Slice", []string{pos, n.ints(0), n.Dim(ids, 1), n.ints(0)})
	return n.Add(e, p)
}

// causalMask is the additive [S,S] causal mask (float32 min above the diagonal) for h [B,S,D],
// cut from a maxLen² table.
func (n *Net) causalMask(h string, maxLen int) string {
	v := make([]float32, maxLen*maxLen)
	for i := range maxLen {
		for j := i + 1; j < maxLen; j++ {
			v[i*maxLen+j] = -math.MaxFloat32
		}
	}
	s := n.Dim(h, 1)
	return n.Op("Slice", []string{n.Const(v, int64(maxLen), int64(maxLen)), n.ints(0, 0), n.Concat(0, s, s), n.ints(0, 1)})
}

// clipLayer is CLIPEncoderLayer: pre-LN causal self-attention and a quick_gelu MLP, both residual.
func (n *Net) clipLayer(h, mask string, c CLIPConfig) string {
	d := c.Hidden
	x := n.LayerNorm(h, d, true, 1e-5)
	q := n.Linear(x, d, d, true)
	k := n.Linear(x, d, d, true)
	v := n.Linear(x, d, d, true)
	h = n.Add(h, n.Linear(n.Attention(q, k, v, c.Heads, mask), d, d, true))
	x = n.LayerNorm(h, d, true, 1e-5)
	x = n.Linear(n.QuickGELU(n.Linear(x, d, c.Intermediate, true)), c.Intermediate, d, true)
	return n.Add(h, x)
}

// eosIndex is the pooled position per row as [B,1]: argmax(ids) when eos is 2 (legacy configs),
// else the first position where ids == eos.
func (n *Net) eosIndex(ids string, eos int64) string {
	var key string
	if eos == 2 {
		key = n.Cast(ids, onnx.Int32)
	} else {
		key = n.Cast(n.Op("Equal", []string{ids, n.ConstInt64([]int64{eos})}), onnx.Int32)
	}
	return n.Op("ArgMax", []string{key}, onnx.AttrInt("axis", 1), onnx.AttrInt("keepdims", 1))
}
