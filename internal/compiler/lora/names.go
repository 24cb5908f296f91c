package lora

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/rflowrt/rflow/internal/compiler/checkpoint"
)

// target is what a module key patches: parameters of one component, named like the builders name them
// (diffusers/transformers state-dict names less ".weight"). A fused module (BFL/SAI qkv, FLUX linear1)
// has several parts: the update's rows are split over them in order, as the checkpoint converters split
// the weights. swap: the update's two row halves are exchanged (BFL/SAI adaLN (shift, scale) → diffusers
// (scale, shift)).
type target struct {
	role  checkpoint.Role
	parts []string
	swap  bool
}

// index maps every name a LoRA may use for a module (dotted, with its format's prefix, or kohya's
// underscored form) to its target.
type index map[string]*target

// add registers keys for t; a key already taken keeps its first meaning.
func (x index) add(t *target, keys ...string) {
	for _, k := range keys {
		if _, ok := x[k]; !ok {
			x[k] = t
		}
	}
}

// kohya is sd-scripts' module name: prefix + the dotted name with dots as underscores.
func kohya(prefix, name string) string { return prefix + strings.ReplaceAll(name, ".", "_") }

// Component is one model component LoRAs may patch, described as the builders see it.
type Component struct {
	Role   checkpoint.Role
	Class  string
	Config map[string]any
}

// buildIndex lists every module of the components under every name the formats use for it.
func buildIndex(family string, comps []Component) (index, map[string][]int64, error) {
	x := index{}
	shapes := map[string][]int64{} // role + "/" + parameter → shape
	for _, c := range comps {
		params, err := checkpoint.Expected(c.Class, c.Config)
		if err != nil {
			return nil, nil, err
		}
		var names []string
		for n, s := range params {
			shapes[string(c.Role)+"/"+n] = s
			if m, ok := strings.CutSuffix(n, ".weight"); ok && len(s) >= 2 && linearLike(m) {
				names = append(names, m)
			}
		}
		sort.Strings(names)
		for _, m := range names {
			t := &target{role: c.Role, parts: []string{m}}
			switch c.Role {
			case checkpoint.RoleTransformer:
				x.add(t, "transformer."+m, "base_model.model."+m, m, kohya("lora_transformer_", m), kohya("lora_unet_", m))
			case checkpoint.RoleCLIPL:
				x.add(t, "text_encoder."+m, kohya("lora_te1_", m), kohya("lora_te_", m))
			case checkpoint.RoleCLIPG:
				x.add(t, "text_encoder_2."+m, kohya("lora_te2_", m))
			case checkpoint.RoleT5:
				if family == checkpoint.FamilyFLUX {
					x.add(t, "text_encoder_2."+m, kohya("lora_te3_", m), kohya("lora_te2_", m))
				} else {
					x.add(t, "text_encoder_3."+m, kohya("lora_te3_", m))
				}
			}
		}
		if c.Role == checkpoint.RoleTransformer {
			orig := fluxOriginal
			if family == checkpoint.FamilySD3 {
				orig = sd3Original
			}
			for _, o := range orig(params) {
				t := o.t
				t.role = checkpoint.RoleTransformer
				x.add(&t, o.name, "diffusion_model."+o.name, "model.diffusion_model."+o.name, kohya("lora_unet_", o.name))
			}
		}
	}
	return x, shapes, nil
}

// linearLike leaves out the 2-D parameters that are not Linear or convolution weights: embedding
// tables and T5's relative attention bias.
func linearLike(module string) bool {
	for _, s := range []string{"embedding", "embed_tokens", "shared", "relative_attention_bias"} {
		if strings.Contains(module, s) {
			return false
		}
	}
	return true
}

// originalName is a module of the BFL/SAI layout and the diffusers parameters it becomes.
type originalName struct {
	name string
	t    target
}

// collector builds the original-layout names, keeping those whose parts the model has.
type collector struct {
	params map[string][]int64
	out    []originalName
}

func (c *collector) add(name string, swap bool, parts ...string) {
	for _, p := range parts {
		if _, ok := c.params[p+".weight"]; !ok {
			return
		}
	}
	c.out = append(c.out, originalName{name: name, t: target{parts: parts, swap: swap}})
}

func count(params map[string][]int64, prefix string) int {
	n := 0
	for name := range params {
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok {
			continue
		}
		i, err := strconv.Atoi(strings.SplitN(rest, ".", 2)[0])
		if err == nil && i+1 > n {
			n = i + 1
		}
	}
	return n
}

// fluxOriginal are BFL FLUX's Linear modules (convert_flux_transformer_checkpoint_to_diffusers's map,
// as package checkpoint's bflFluxRecipes applies it to weights).
func fluxOriginal(params map[string][]int64) []originalName {
	c := &collector{params: params}
	for i := range count(params, "transformer_blocks.") {
		b, d := fmt.Sprintf("transformer_blocks.%d.", i), fmt.Sprintf("double_blocks.%d.", i)
		c.add(d+"img_mod.lin", false, b+"norm1.linear")
		c.add(d+"txt_mod.lin", false, b+"norm1_context.linear")
		c.add(d+"img_attn.qkv", false, b+"attn.to_q", b+"attn.to_k", b+"attn.to_v")
		c.add(d+"txt_attn.qkv", false, b+"attn.add_q_proj", b+"attn.add_k_proj", b+"attn.add_v_proj")
		c.add(d+"img_attn.proj", false, b+"attn.to_out.0")
		c.add(d+"txt_attn.proj", false, b+"attn.to_add_out")
		c.add(d+"img_mlp.0", false, b+"ff.net.0.proj")
		c.add(d+"img_mlp.2", false, b+"ff.net.2")
		c.add(d+"txt_mlp.0", false, b+"ff_context.net.0.proj")
		c.add(d+"txt_mlp.2", false, b+"ff_context.net.2")
		// XLabs' attention-processor LoRAs (diffusers' _convert_xlabs_flux_lora_to_diffusers).
		c.add(d+"processor.qkv_lora1", false, b+"attn.to_q", b+"attn.to_k", b+"attn.to_v")
		c.add(d+"processor.qkv_lora2", false, b+"attn.add_q_proj", b+"attn.add_k_proj", b+"attn.add_v_proj")
		c.add(d+"processor.proj_lora1", false, b+"attn.to_out.0")
		c.add(d+"processor.proj_lora2", false, b+"attn.to_add_out")
	}
	for i := range count(params, "single_transformer_blocks.") {
		b, s := fmt.Sprintf("single_transformer_blocks.%d.", i), fmt.Sprintf("single_blocks.%d.", i)
		c.add(s+"modulation.lin", false, b+"norm.linear")
		c.add(s+"linear1", false, b+"attn.to_q", b+"attn.to_k", b+"attn.to_v", b+"proj_mlp")
		c.add(s+"linear2", false, b+"proj_out")
		c.add(s+"processor.qkv_lora", false, b+"attn.to_q", b+"attn.to_k", b+"attn.to_v")
		c.add(s+"processor.proj_lora", false, b+"proj_out")
	}
	c.add("time_in.in_layer", false, "time_text_embed.timestep_embedder.linear_1")
	c.add("time_in.out_layer", false, "time_text_embed.timestep_embedder.linear_2")
	c.add("vector_in.in_layer", false, "time_text_embed.text_embedder.linear_1")
	c.add("vector_in.out_layer", false, "time_text_embed.text_embedder.linear_2")
	c.add("guidance_in.in_layer", false, "time_text_embed.guidance_embedder.linear_1")
	c.add("guidance_in.out_layer", false, "time_text_embed.guidance_embedder.linear_2")
	c.add("txt_in", false, "context_embedder")
	c.add("img_in", false, "x_embedder")
	c.add("final_layer.linear", false, "proj_out")
	c.add("final_layer.adaLN_modulation.1", true, "norm_out.linear")
	return c.out
}

// sd3Original are SAI MMDiT's Linear and patch-embedding modules (convert_sd3_transformer_checkpoint_to_diffusers's
// map, as package checkpoint's saiSD3Recipes applies it to weights).
func sd3Original(params map[string][]int64) []originalName {
	c := &collector{params: params}
	for i := range count(params, "transformer_blocks.") {
		b, j := fmt.Sprintf("transformer_blocks.%d.", i), fmt.Sprintf("joint_blocks.%d.", i)
		c.add(j+"x_block.attn.qkv", false, b+"attn.to_q", b+"attn.to_k", b+"attn.to_v")
		c.add(j+"context_block.attn.qkv", false, b+"attn.add_q_proj", b+"attn.add_k_proj", b+"attn.add_v_proj")
		c.add(j+"x_block.attn.proj", false, b+"attn.to_out.0")
		c.add(j+"x_block.attn2.qkv", false, b+"attn2.to_q", b+"attn2.to_k", b+"attn2.to_v")
		c.add(j+"x_block.attn2.proj", false, b+"attn2.to_out.0")
		c.add(j+"x_block.adaLN_modulation.1", false, b+"norm1.linear")
		c.add(j+"x_block.mlp.fc1", false, b+"ff.net.0.proj")
		c.add(j+"x_block.mlp.fc2", false, b+"ff.net.2")
		c.add(j+"context_block.attn.proj", false, b+"attn.to_add_out")
		c.add(j+"context_block.mlp.fc1", false, b+"ff_context.net.0.proj")
		c.add(j+"context_block.mlp.fc2", false, b+"ff_context.net.2")
		// The last block's context side is context_pre_only: AdaLayerNormContinuous, (shift, scale) in SAI's order.
		_, hasOut := params[b+"attn.to_add_out.weight"]
		c.add(j+"context_block.adaLN_modulation.1", !hasOut, b+"norm1_context.linear")
	}
	c.add("x_embedder.proj", false, "pos_embed.proj")
	c.add("t_embedder.mlp.0", false, "time_text_embed.timestep_embedder.linear_1")
	c.add("t_embedder.mlp.2", false, "time_text_embed.timestep_embedder.linear_2")
	c.add("y_embedder.mlp.0", false, "time_text_embed.text_embedder.linear_1")
	c.add("y_embedder.mlp.2", false, "time_text_embed.text_embedder.linear_2")
	c.add("context_embedder", false, "context_embedder")
	c.add("final_layer.linear", false, "proj_out")
	c.add("final_layer.adaLN_modulation.1", true, "norm_out.linear")
	return c.out
}
