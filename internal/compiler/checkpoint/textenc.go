package checkpoint

import (
	"fmt"
	"strings"
)

// clipHeadDim is the attention head size of OpenAI CLIP ViT-L/14 (768/12) and OpenCLIP ViT-bigG/14
// (1280/20), the text encoders of SD3 and FLUX.
const clipHeadDim = 64

// clipGHidden is CLIP-G's width: a lone CLIP file of this width is taken for CLIP-G.
const clipGHidden = 1280

// openCLIPLayer maps OpenCLIP resblock parameter names to transformers' CLIPEncoderLayer names
// (diffusers' DIFFUSERS_TO_LDM_MAPPING["openclip"]["transformer"]); in_proj is split separately.
var openCLIPLayer = map[string]string{
	"attn.out_proj.weight": "self_attn.out_proj.weight", "attn.out_proj.bias": "self_attn.out_proj.bias",
	"ln_1.weight": "layer_norm1.weight", "ln_1.bias": "layer_norm1.bias",
	"ln_2.weight": "layer_norm2.weight", "ln_2.bias": "layer_norm2.bias",
	"mlp.c_fc.weight": "mlp.fc1.weight", "mlp.c_fc.bias": "mlp.fc1.bias",
	"mlp.c_proj.weight": "mlp.fc2.weight", "mlp.c_proj.bias": "mlp.fc2.bias",
}

// openCLIPRecipes converts OpenCLIP's text tower as convert_open_clip_checkpoint does: in_proj split into
// q/k/v, text_projection ([width, proj]) transposed into a Linear weight.
func openCLIPRecipes(g *group) (map[string]Recipe, error) {
	m := newMapper(g)
	m.rename("text_model.embeddings.token_embedding.weight", "token_embedding.weight")
	m.rename("text_model.embeddings.position_embedding.weight", "positional_embedding")
	m.rename("text_model.final_layer_norm.weight", "ln_final.weight")
	m.rename("text_model.final_layer_norm.bias", "ln_final.bias")
	if t, ok := g.meta["text_projection"]; ok {
		if len(t.Shape) != 2 {
			m.bad = append(m.bad, fmt.Sprintf("%s: shape %v is not a matrix", g.source("text_projection"), t.Shape))
		} else {
			m.out["text_projection.weight"] = Recipe{Pieces: []Piece{{g.source("text_projection"), 0, -1}},
				Shape: []int64{t.Shape[1], t.Shape[0]}, DType: t.DType, Transpose: true}
		}
	}
	for i := range blockCount(g, "transformer.resblocks.") {
		r, l := "transformer.resblocks."+itoa(i)+".", "text_model.encoder.layers."+itoa(i)+"."
		for _, p := range []string{"weight", "bias"} {
			m.splitEqual(r+"attn.in_proj_"+p, l+"self_attn.q_proj."+p, l+"self_attn.k_proj."+p, l+"self_attn.v_proj."+p)
		}
		for src, dst := range openCLIPLayer {
			m.rename(l+dst, r+src)
		}
	}
	return m.out, m.err()
}

// clipRole picks the slot of a CLIP encoder whose prefix does not name one.
func clipRole(g *group, h Hints, hidden int64) Role {
	if g.role != "" {
		return g.role
	}
	if h.Role == RoleCLIPL || h.Role == RoleCLIPG {
		return h.Role
	}
	if hidden == clipGHidden {
		return RoleCLIPG
	}
	return RoleCLIPL
}

func (g *group) clip(h Hints) (Component, error) {
	var t map[string]Recipe
	var err error
	if g.kind == kindOpenCLIP {
		t, err = openCLIPRecipes(g)
	} else {
		t, err = identityRecipes(g)
	}
	if err != nil {
		return Component{}, err
	}
	s := &shapes{t: t}
	vocab := s.dim("text_model.embeddings.token_embedding.weight", 0)
	hidden := s.dim("text_model.embeddings.token_embedding.weight", 1)
	pos := s.dim("text_model.embeddings.position_embedding.weight", 0)
	inter := s.dim("text_model.encoder.layers.0.mlp.fc1.weight", 0)
	if err := s.err(); err != nil {
		return Component{}, err
	}
	role := clipRole(g, h, hidden)
	hd := int64(clipHeadDim)
	if v := h.HeadDim[role]; v > 0 {
		hd = int64(v)
	}
	if hidden%hd != 0 {
		return Component{}, fmt.Errorf("%w: width %d is not a multiple of the head size %d", ErrMismatch, hidden, hd)
	}
	class, proj := "CLIPTextModel", hidden
	if hasKey(t, "text_projection.weight") {
		class, proj = "CLIPTextModelWithProjection", s.dim("text_projection.weight", 0)
	} else if role == RoleCLIPL && h.Family == FamilySD3 {
		// SAI's SD3 files carry no CLIP-L projection: SD3 uses the pooled output as it is, and diffusers
		// (create_diffusers_clip_model_from_ldm) gives the model an identity text_projection.
		dtype := t["text_model.embeddings.token_embedding.weight"].DType
		t["text_projection.weight"] = Recipe{Shape: []int64{hidden, hidden}, DType: dtype, Fill: FillEye}
		class = "CLIPTextModelWithProjection"
	}
	// CLIP-L (OpenAI) uses quick_gelu, OpenCLIP's bigG exact gelu (the released SD3/FLUX configs).
	act := "quick_gelu"
	if role == RoleCLIPG {
		act = "gelu"
	}
	cfg := map[string]any{
		"architectures":           strs(class),
		"model_type":              "clip_text_model",
		"hidden_size":             num(hidden),
		"intermediate_size":       num(inter),
		"num_hidden_layers":       num(canonicalCount(t, "text_model.encoder.layers.")),
		"num_attention_heads":     num(hidden / hd),
		"projection_dim":          num(proj),
		"hidden_act":              act,
		"max_position_embeddings": num(pos),
		"vocab_size":              num(vocab),
		"layer_norm_eps":          1e-5,
		"attention_dropout":       0.0,
		"dropout":                 0.0,
		"initializer_factor":      1.0,
		"initializer_range":       0.02,
		// eos_token_id 2 (the released configs) makes CLIPTextTransformer pool at the argmax of the ids
		// (49407, the end token): the legacy rule SD3 and FLUX run with.
		"bos_token_id": num(0),
		"eos_token_id": num(2),
		"pad_token_id": num(1),
	}
	format := "transformers CLIP"
	if g.kind == kindOpenCLIP {
		format = "OpenCLIP text tower"
	}
	c := Component{Role: role, Class: class, Config: cfg, Tensors: t, Format: g.format(format),
		Assumed: []string{"num_attention_heads", "hidden_act", "layer_norm_eps", "eos_token_id"}}
	return c, finish(g, &c, func(n string) bool {
		return n == "text_model.embeddings.position_ids" || n == "logit_scale" || n == "attn_mask"
	})
}

func (g *group) t5() (Component, error) {
	m := newMapper(g)
	for _, n := range g.names() {
		if strings.HasPrefix(n, "encoder.") && n != "encoder.embed_tokens.weight" {
			m.rename(n, n)
		}
	}
	// The token embedding is tied: shared.weight, or encoder.embed_tokens.weight in some files.
	if g.has("shared.weight") {
		m.rename("shared.weight", "shared.weight")
	} else {
		m.rename("shared.weight", "encoder.embed_tokens.weight")
	}
	if err := m.err(); err != nil {
		return Component{}, err
	}
	t := m.out
	s := &shapes{t: t}
	vocab := s.dim("shared.weight", 0)
	dModel := s.dim("shared.weight", 1)
	bias := "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"
	buckets := s.dim(bias, 0)
	heads := s.dim(bias, 1)
	inner := s.dim("encoder.block.0.layer.0.SelfAttention.q.weight", 0)
	gated := hasKey(t, "encoder.block.0.layer.1.DenseReluDense.wi_0.weight")
	wi := "encoder.block.0.layer.1.DenseReluDense.wi.weight"
	if gated {
		wi = "encoder.block.0.layer.1.DenseReluDense.wi_0.weight"
	}
	dff := s.dim(wi, 0)
	if err := s.err(); err != nil {
		return Component{}, err
	}
	if heads <= 0 || inner%heads != 0 {
		return Component{}, fmt.Errorf("%w: q.weight has %d rows, not a multiple of the %d heads of %s",
			ErrMismatch, inner, heads, bias)
	}
	// SD3's and FLUX's T5 v1.1 XXL: gated GELU (tanh approximation: gelu_new, which FLUX's config spells
	// gelu_pytorch_tanh; the same function).
	ffProj, act := "gated-gelu", "gelu_new"
	if !gated {
		ffProj, act = "relu", "relu"
	}
	cfg := map[string]any{
		"architectures":                   strs("T5EncoderModel"),
		"model_type":                      "t5",
		"d_model":                         num(dModel),
		"d_kv":                            num(inner / heads),
		"num_heads":                       num(heads),
		"num_layers":                      num(canonicalCount(t, "encoder.block.")),
		"d_ff":                            num(dff),
		"vocab_size":                      num(vocab),
		"relative_attention_num_buckets":  num(buckets),
		"relative_attention_max_distance": num(128),
		"feed_forward_proj":               ffProj,
		"dense_act_fn":                    act,
		"is_gated_act":                    gated,
		"layer_norm_epsilon":              1e-6,
		"pad_token_id":                    num(0),
		"eos_token_id":                    num(1),
		"decoder_start_token_id":          num(0),
		"tie_word_embeddings":             false,
	}
	c := Component{Role: RoleT5, Class: "T5EncoderModel", Config: cfg, Tensors: t, Format: g.format("transformers T5 encoder"),
		Assumed: []string{"dense_act_fn", "relative_attention_max_distance", "layer_norm_epsilon"}}
	return c, finish(g, &c, func(n string) bool { return n == "encoder.embed_tokens.weight" && g.has("shared.weight") })
}
