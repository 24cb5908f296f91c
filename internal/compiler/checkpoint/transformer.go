package checkpoint

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

func (g *group) convert(h Hints) (Component, error) {
	switch g.kind {
	case kindBFLFlux:
		return g.flux(h, bflFluxRecipes)
	case kindDiffusersFlux:
		return g.flux(h, identityRecipes)
	case kindSAISD3:
		return g.sd3(h, saiSD3Recipes)
	case kindDiffusersSD3:
		return g.sd3(h, identityRecipes)
	case kindLDMVAE, kindDiffusersVAE:
		return g.vae(h)
	case kindCLIP, kindOpenCLIP:
		return g.clip(h)
	case kindT5:
		return g.t5()
	}
	return Component{}, fmt.Errorf("%w: %s", ErrUnknownFormat, g.describe())
}

// identityRecipes maps an already canonical (diffusers/transformers-keyed) group onto itself.
func identityRecipes(g *group) (map[string]Recipe, error) {
	m := newMapper(g)
	for _, n := range g.names() {
		m.rename(n, n)
	}
	return m.out, m.err()
}

// format names what was recognised, with the prefix it sat under.
func (g *group) format(base string) string {
	switch g.prefix {
	case "":
		return base
	case "model.diffusion_model.", "diffusion_model.":
		if g.kind == kindSAISD3 {
			return base + " (prefix " + g.prefix + ")"
		}
		return base + " (ComfyUI prefix " + g.prefix + ")"
	}
	return base + " (prefix " + g.prefix + ")"
}

// ---------------------------------------------------------------- FLUX

// bflFluxRecipes inverts BFL's key layout as convert_flux_transformer_checkpoint_to_diffusers does, with the
// widths read from the tensors (diffusers hard-codes FLUX.1's 3072).
func bflFluxRecipes(g *group) (map[string]Recipe, error) {
	m := newMapper(g)
	m.linear("time_text_embed.timestep_embedder.linear_1", "time_in.in_layer")
	m.linear("time_text_embed.timestep_embedder.linear_2", "time_in.out_layer")
	m.linear("time_text_embed.text_embedder.linear_1", "vector_in.in_layer")
	m.linear("time_text_embed.text_embedder.linear_2", "vector_in.out_layer")
	if g.hasPrefix("guidance_in.") {
		m.linear("time_text_embed.guidance_embedder.linear_1", "guidance_in.in_layer")
		m.linear("time_text_embed.guidance_embedder.linear_2", "guidance_in.out_layer")
	}
	m.linear("context_embedder", "txt_in")
	m.linear("x_embedder", "img_in")
	for i := range blockCount(g, "double_blocks.") {
		b, d := "transformer_blocks."+itoa(i)+".", "double_blocks."+itoa(i)+"."
		m.linear(b+"norm1.linear", d+"img_mod.lin")
		m.linear(b+"norm1_context.linear", d+"txt_mod.lin")
		for _, p := range []string{"weight", "bias"} {
			m.splitEqual(d+"img_attn.qkv."+p, b+"attn.to_q."+p, b+"attn.to_k."+p, b+"attn.to_v."+p)
			m.splitEqual(d+"txt_attn.qkv."+p, b+"attn.add_q_proj."+p, b+"attn.add_k_proj."+p, b+"attn.add_v_proj."+p)
		}
		m.rename(b+"attn.norm_q.weight", d+"img_attn.norm.query_norm.scale")
		m.rename(b+"attn.norm_k.weight", d+"img_attn.norm.key_norm.scale")
		m.rename(b+"attn.norm_added_q.weight", d+"txt_attn.norm.query_norm.scale")
		m.rename(b+"attn.norm_added_k.weight", d+"txt_attn.norm.key_norm.scale")
		m.linear(b+"ff.net.0.proj", d+"img_mlp.0")
		m.linear(b+"ff.net.2", d+"img_mlp.2")
		m.linear(b+"ff_context.net.0.proj", d+"txt_mlp.0")
		m.linear(b+"ff_context.net.2", d+"txt_mlp.2")
		m.linear(b+"attn.to_out.0", d+"img_attn.proj")
		m.linear(b+"attn.to_add_out", d+"txt_attn.proj")
	}
	for i := range blockCount(g, "single_blocks.") {
		b, s := "single_transformer_blocks."+itoa(i)+".", "single_blocks."+itoa(i)+"."
		m.linear(b+"norm.linear", s+"modulation.lin")
		// linear1 stacks q, k, v (the width each) and the MLP's input projection.
		if w, ok := m.meta(s + "linear1.weight"); ok {
			if len(w.Shape) != 2 {
				m.bad = append(m.bad, fmt.Sprintf("%s: shape %v is not a matrix", g.source(s+"linear1.weight"), w.Shape))
			} else {
				width := w.Shape[1]
				dsts := func(p string) []string {
					return []string{b + "attn.to_q." + p, b + "attn.to_k." + p, b + "attn.to_v." + p, b + "proj_mlp." + p}
				}
				rows := []int64{width, width, width, -1}
				m.splitRows(s+"linear1.weight", dsts("weight"), rows)
				m.splitRows(s+"linear1.bias", dsts("bias"), rows)
			}
		}
		m.rename(b+"attn.norm_q.weight", s+"norm.query_norm.scale")
		m.rename(b+"attn.norm_k.weight", s+"norm.key_norm.scale")
		m.linear(b+"proj_out", s+"linear2")
	}
	m.linear("proj_out", "final_layer.linear")
	m.swapHalves("norm_out.linear.weight", "final_layer.adaLN_modulation.1.weight")
	m.swapHalves("norm_out.linear.bias", "final_layer.adaLN_modulation.1.bias")
	return m.out, m.err()
}

// flux1AxesDimsRope are FLUX.1's rope axes (FluxTransformer2DModel's default), for head size 128.
var flux1AxesDimsRope = []int{16, 56, 56}

func (g *group) flux(h Hints, recipes func(*group) (map[string]Recipe, error)) (Component, error) {
	t, err := recipes(g)
	if err != nil {
		return Component{}, err
	}
	s := &shapes{t: t}
	layers := canonicalCount(t, "transformer_blocks.")
	single := canonicalCount(t, "single_transformer_blocks.")
	normQ := "transformer_blocks.0.attn.norm_q.weight"
	if layers == 0 {
		normQ = "single_transformer_blocks.0.attn.norm_q.weight"
	}
	hd := s.dim(normQ, 0)
	width := s.dim("x_embedder.weight", 0)
	in := s.dim("x_embedder.weight", 1)
	joint := s.dim("context_embedder.weight", 1)
	pooled := s.dim("time_text_embed.text_embedder.linear_1.weight", 1)
	out := s.dim("proj_out.weight", 0)
	if err := s.err(); err != nil {
		return Component{}, err
	}
	if hd <= 0 || width%hd != 0 {
		return Component{}, fmt.Errorf("%w: width %d (%s) is not a multiple of the head size %d (%s)",
			ErrMismatch, width, sourceOf(t, "x_embedder.weight"), hd, sourceOf(t, normQ))
	}
	axes := h.AxesDimsRope
	if axes == nil {
		axes = flux1AxesDimsRope
	}
	var sum int64
	for _, a := range axes {
		sum += int64(a)
	}
	if sum != hd {
		return Component{}, fmt.Errorf("%w: head size %d (%s) differs from the sum of the rope axes %v; FLUX.1's "+
			"axes fit head size 128 only, other head sizes need the model's own config", ErrMismatch, hd,
			sourceOf(t, normQ), axes)
	}
	axesAny := make([]any, len(axes))
	for i, a := range axes {
		axesAny[i] = float64(a)
	}
	var outChannels any
	if out != in {
		outChannels = num(out)
	}
	cfg := map[string]any{
		"_class_name":           "FluxTransformer2DModel",
		"patch_size":            num(1),
		"in_channels":           num(in),
		"out_channels":          outChannels,
		"num_layers":            num(layers),
		"num_single_layers":     num(single),
		"attention_head_dim":    num(hd),
		"num_attention_heads":   num(width / hd),
		"joint_attention_dim":   num(joint),
		"pooled_projection_dim": num(pooled),
		"guidance_embeds":       hasKey(t, "time_text_embed.guidance_embedder.linear_1.weight"),
		"axes_dims_rope":        axesAny,
	}
	format := "diffusers FluxTransformer2DModel"
	if g.kind == kindBFLFlux {
		format = "BFL FLUX single file"
	}
	c := Component{Role: RoleTransformer, Class: "FluxTransformer2DModel", Config: cfg, Tensors: t, Format: g.format(format),
		Assumed: []string{"axes_dims_rope"}}
	return c, finish(g, &c, nil)
}

// ---------------------------------------------------------------- SD3

// saiSD3Recipes inverts SAI's MMDiT key layout as convert_sd3_transformer_checkpoint_to_diffusers does
// (SD3.5-large's qk RMSNorm ln_q/ln_k and SD3.5-medium's MMDiT-X attn2 included).
func saiSD3Recipes(g *group) (map[string]Recipe, error) {
	m := newMapper(g)
	m.rename("pos_embed.pos_embed", "pos_embed")
	m.linear("pos_embed.proj", "x_embedder.proj")
	m.linear("time_text_embed.timestep_embedder.linear_1", "t_embedder.mlp.0")
	m.linear("time_text_embed.timestep_embedder.linear_2", "t_embedder.mlp.2")
	m.linear("context_embedder", "context_embedder")
	m.linear("time_text_embed.text_embedder.linear_1", "y_embedder.mlp.0")
	m.linear("time_text_embed.text_embedder.linear_2", "y_embedder.mlp.2")
	n := blockCount(g, "joint_blocks.")
	qk := false
	for name := range g.meta {
		if strings.Contains(name, ".ln_q.") {
			qk = true
		}
	}
	for i := range n {
		b, j, last := "transformer_blocks."+itoa(i)+".", "joint_blocks."+itoa(i)+".", i == n-1
		for _, p := range []string{"weight", "bias"} {
			m.splitEqual(j+"x_block.attn.qkv."+p, b+"attn.to_q."+p, b+"attn.to_k."+p, b+"attn.to_v."+p)
			m.splitEqual(j+"context_block.attn.qkv."+p, b+"attn.add_q_proj."+p, b+"attn.add_k_proj."+p, b+"attn.add_v_proj."+p)
		}
		if qk {
			m.rename(b+"attn.norm_q.weight", j+"x_block.attn.ln_q.weight")
			m.rename(b+"attn.norm_k.weight", j+"x_block.attn.ln_k.weight")
			m.rename(b+"attn.norm_added_q.weight", j+"context_block.attn.ln_q.weight")
			m.rename(b+"attn.norm_added_k.weight", j+"context_block.attn.ln_k.weight")
		}
		m.linear(b+"attn.to_out.0", j+"x_block.attn.proj")
		if g.has(j+"x_block.attn2.qkv.weight") || g.has(j+"x_block.attn2.proj.weight") {
			for _, p := range []string{"weight", "bias"} {
				m.splitEqual(j+"x_block.attn2.qkv."+p, b+"attn2.to_q."+p, b+"attn2.to_k."+p, b+"attn2.to_v."+p)
			}
			if qk {
				m.rename(b+"attn2.norm_q.weight", j+"x_block.attn2.ln_q.weight")
				m.rename(b+"attn2.norm_k.weight", j+"x_block.attn2.ln_k.weight")
			}
			m.linear(b+"attn2.to_out.0", j+"x_block.attn2.proj")
		}
		m.linear(b+"norm1.linear", j+"x_block.adaLN_modulation.1")
		m.linear(b+"ff.net.0.proj", j+"x_block.mlp.fc1")
		m.linear(b+"ff.net.2", j+"x_block.mlp.fc2")
		if !last {
			m.linear(b+"attn.to_add_out", j+"context_block.attn.proj")
			m.linear(b+"norm1_context.linear", j+"context_block.adaLN_modulation.1")
			m.linear(b+"ff_context.net.0.proj", j+"context_block.mlp.fc1")
			m.linear(b+"ff_context.net.2", j+"context_block.mlp.fc2")
		} else { // context_pre_only: AdaLayerNormContinuous, (shift, scale) in SAI's order
			m.swapHalves(b+"norm1_context.linear.weight", j+"context_block.adaLN_modulation.1.weight")
			m.swapHalves(b+"norm1_context.linear.bias", j+"context_block.adaLN_modulation.1.bias")
		}
	}
	m.linear("proj_out", "final_layer.linear")
	m.swapHalves("norm_out.linear.weight", "final_layer.adaLN_modulation.1.weight")
	m.swapHalves("norm_out.linear.bias", "final_layer.adaLN_modulation.1.bias")
	return m.out, m.err()
}

// sd3HeadDim is the head size of SAI's MMDiT (hidden size = 64 × depth, heads = depth).
const sd3HeadDim = 64

// sd3SampleSize is sample_size in every released SD3/SD3.5 config.
const sd3SampleSize = 128

func (g *group) sd3(h Hints, recipes func(*group) (map[string]Recipe, error)) (Component, error) {
	t, err := recipes(g)
	if err != nil {
		return Component{}, err
	}
	s := &shapes{t: t}
	layers := canonicalCount(t, "transformer_blocks.")
	width := s.dim("pos_embed.proj.weight", 0)
	in := s.dim("pos_embed.proj.weight", 1)
	patch := s.dim("pos_embed.proj.weight", 2)
	posRows := s.dim("pos_embed.pos_embed", 1)
	joint := s.dim("context_embedder.weight", 1)
	capDim := s.dim("context_embedder.weight", 0)
	pooled := s.dim("time_text_embed.text_embedder.linear_1.weight", 1)
	out := s.dim("proj_out.weight", 0)
	qk := hasKey(t, "transformer_blocks.0.attn.norm_q.weight")
	var hd int64 = sd3HeadDim
	if qk {
		hd = s.dim("transformer_blocks.0.attn.norm_q.weight", 0)
	} else if v := h.HeadDim[RoleTransformer]; v > 0 {
		hd = int64(v)
	}
	if err := s.err(); err != nil {
		return Component{}, err
	}
	maxSize := int64(math.Round(math.Sqrt(float64(posRows))))
	if maxSize*maxSize != posRows {
		return Component{}, fmt.Errorf("%w: %s has %d positions, not a square number", ErrMismatch,
			sourceOf(t, "pos_embed.pos_embed"), posRows)
	}
	if hd <= 0 || width%hd != 0 {
		return Component{}, fmt.Errorf("%w: width %d (%s) is not a multiple of the head size %d",
			ErrMismatch, width, sourceOf(t, "pos_embed.proj.weight"), hd)
	}
	if patch <= 0 || out%(patch*patch) != 0 {
		return Component{}, fmt.Errorf("%w: %s has %d rows, not a multiple of patch size %d squared",
			ErrMismatch, sourceOf(t, "proj_out.weight"), out, patch)
	}
	dual := []any{}
	for i := range layers {
		if hasKey(t, "transformer_blocks."+itoa(i)+".attn2.to_q.weight") {
			dual = append(dual, float64(i))
		}
	}
	var qkNorm any
	if qk {
		qkNorm = "rms_norm"
	}
	sample := int64(sd3SampleSize)
	if h.SampleSize > 0 {
		sample = int64(h.SampleSize)
	}
	cfg := map[string]any{
		"_class_name":            "SD3Transformer2DModel",
		"sample_size":            num(sample),
		"patch_size":             num(patch),
		"in_channels":            num(in),
		"num_layers":             num(layers),
		"attention_head_dim":     num(hd),
		"num_attention_heads":    num(width / hd),
		"joint_attention_dim":    num(joint),
		"caption_projection_dim": num(capDim),
		"pooled_projection_dim":  num(pooled),
		"out_channels":           num(out / (patch * patch)),
		"pos_embed_max_size":     num(maxSize),
		"dual_attention_layers":  dual,
		"qk_norm":                qkNorm,
	}
	format := "diffusers SD3Transformer2DModel"
	if g.kind == kindSAISD3 {
		format = "SAI SD3 single file"
	}
	assumed := []string{"sample_size"}
	if !qk {
		assumed = append(assumed, "attention_head_dim", "num_attention_heads")
	}
	c := Component{Role: RoleTransformer, Class: "SD3Transformer2DModel", Config: cfg, Tensors: t, Format: g.format(format),
		Assumed: assumed}
	return c, finish(g, &c, nil)
}

// ---------------------------------------------------------------- helpers

func itoa(i int64) string { return strconv.FormatInt(i, 10) }

// sourceOf names the source tensor of a canonical one.
func sourceOf(t map[string]Recipe, name string) string {
	if r, ok := t[name]; ok && len(r.Pieces) > 0 {
		return r.Pieces[0].Tensor
	}
	return name
}

func hasKey(t map[string]Recipe, name string) bool { _, ok := t[name]; return ok }

// canonicalCount is 1 + the largest N among canonical names "prefix.N.…".
func canonicalCount(t map[string]Recipe, prefix string) int64 {
	g := &group{meta: map[string]TensorMeta{}}
	for name := range t {
		if strings.HasPrefix(name, prefix) {
			g.meta[name] = TensorMeta{}
		}
	}
	return blockCount(g, prefix)
}
