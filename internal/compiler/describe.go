package compiler

import (
	"fmt"
	"sort"
	"strings"

	"github.com/rflowrt/rflow/internal/compiler/checkpoint"
)

// PartInfo describes one component of a checkpoint for `rflow inspect`.
type PartInfo struct {
	Role   string   `json:"role"`
	Class  string   `json:"class"`
	Format string   `json:"format"`
	File   string   `json:"file"`
	DType  string   `json:"dtype"`
	Sizes  string   `json:"sizes"`
	Params int64    `json:"params"`
	Unused []string `json:"unused,omitempty"`
}

// Describe lists the components found, in pipeline order, with the architecture's sizes.
func (c *Checkpoint) Describe() []PartInfo {
	var out []PartInfo
	for _, p := range c.Parts {
		info := PartInfo{Role: string(p.Role), Class: p.Class, Format: p.Format, File: p.File, DType: p.DType,
			Sizes: sizes(p), Unused: p.Unused}
		if rw, ok := p.Weights.(recipeWeights); ok {
			for _, r := range rw.recipes {
				n := int64(1)
				for _, d := range r.Shape {
					n *= d
				}
				info.Params += n
			}
		}
		out = append(out, info)
	}
	order := []checkpoint.Role{checkpoint.RoleTransformer, checkpoint.RoleCLIPL, checkpoint.RoleCLIPG, checkpoint.RoleT5, checkpoint.RoleVAE}
	rank := func(r string) int {
		for i, o := range order {
			if string(o) == r {
				return i
			}
		}
		return len(order)
	}
	sort.Slice(out, func(i, j int) bool { return rank(out[i].Role) < rank(out[j].Role) })
	return out
}

// sizes summarises the architecture from the component's config.
func sizes(p *Part) string {
	c := p.Config
	num := func(k string) string {
		if v, ok := c[k].(float64); ok {
			return fmt.Sprint(int64(v))
		}
		return "?"
	}
	switch p.Class {
	case "SD3Transformer2DModel":
		s := fmt.Sprintf("depth %s, %s heads × %s, joint %s, pooled %s, pos-embed %s", num("num_layers"),
			num("num_attention_heads"), num("attention_head_dim"), num("joint_attention_dim"),
			num("pooled_projection_dim"), num("pos_embed_max_size"))
		if q, _ := c["qk_norm"].(string); q != "" {
			s += ", qk norm " + q
		}
		if d, _ := c["dual_attention_layers"].([]any); len(d) > 0 {
			s += fmt.Sprintf(", dual attention in %d blocks", len(d))
		}
		return s
	case "FluxTransformer2DModel":
		g := "no guidance embedding (schnell)"
		if b, _ := c["guidance_embeds"].(bool); b {
			g = "guidance embedding (dev)"
		}
		return fmt.Sprintf("depth %s double + %s single, %s heads × %s, joint %s, pooled %s, %s", num("num_layers"),
			num("num_single_layers"), num("num_attention_heads"), num("attention_head_dim"),
			num("joint_attention_dim"), num("pooled_projection_dim"), g)
	case "CLIPTextModel", "CLIPTextModelWithProjection":
		return fmt.Sprintf("%s layers, hidden %s, %s heads, projection %s, %v", num("num_hidden_layers"),
			num("hidden_size"), num("num_attention_heads"), num("projection_dim"), c["hidden_act"])
	case "T5EncoderModel":
		return fmt.Sprintf("%s layers, d_model %s, %s heads × %s, d_ff %s", num("num_layers"), num("d_model"),
			num("num_heads"), num("d_kv"), num("d_ff"))
	case "AutoencoderKL":
		var ch []string
		if b, ok := c["block_out_channels"].([]any); ok {
			for _, v := range b {
				ch = append(ch, fmt.Sprint(v))
			}
		}
		return fmt.Sprintf("channels [%s], %s latent channels, scaling %v, shift %v", strings.Join(ch, " "),
			num("latent_channels"), c["scaling_factor"], c["shift_factor"])
	}
	return ""
}
