package checkpoint

import (
	"fmt"
	"sort"
	"strings"
)

// kind is the key layout of one group of tensors.
type kind int

const (
	kindNone kind = iota
	kindBFLFlux
	kindSAISD3
	kindDiffusersFlux
	kindDiffusersSD3
	kindLDMVAE
	kindDiffusersVAE
	kindCLIP
	kindOpenCLIP
	kindT5
)

// group is the tensors of one model: the source names less a common prefix.
type group struct {
	prefix string // stripped from every source name
	role   Role   // from the prefix; "" when the prefix does not say
	family string // "transformer", "vae", "clip" or "t5"
	kind   kind
	meta   map[string]TensorMeta // stripped name → metadata
}

func (g *group) source(name string) string { return g.prefix + name }

func (g *group) names() []string {
	out := make([]string, 0, len(g.meta))
	for n := range g.meta {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (g *group) has(name string) bool { _, ok := g.meta[name]; return ok }

func (g *group) hasPrefix(p string) bool {
	for n := range g.meta {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	return false
}

func (g *group) describe() string {
	where := "tensors without prefix"
	if g.prefix != "" {
		where = "tensors under " + g.prefix
	}
	return fmt.Sprintf("%s (%s)", where, kindNames[g.kind])
}

var kindNames = map[kind]string{
	kindNone:          "unknown",
	kindBFLFlux:       "BFL FLUX transformer",
	kindSAISD3:        "SAI SD3 MMDiT",
	kindDiffusersFlux: "diffusers FluxTransformer2DModel",
	kindDiffusersSD3:  "diffusers SD3Transformer2DModel",
	kindLDMVAE:        "LDM VAE",
	kindDiffusersVAE:  "diffusers AutoencoderKL",
	kindCLIP:          "transformers CLIP",
	kindOpenCLIP:      "OpenCLIP text tower",
	kindT5:            "transformers T5 encoder",
}

// knownPrefixes are the prefixes under which single files bundle their models (longest first where one
// prefix starts another).
var knownPrefixes = []struct {
	prefix string
	role   Role
	family string
}{
	{"model.diffusion_model.", RoleTransformer, "transformer"},
	{"diffusion_model.", RoleTransformer, "transformer"},
	{"text_encoders.clip_l.transformer.", RoleCLIPL, "clip"},
	{"text_encoders.clip_g.transformer.", RoleCLIPG, "clip"},
	{"text_encoders.t5xxl.transformer.", RoleT5, "t5"},
	{"first_stage_model.", RoleVAE, "vae"},
	{"vae.", RoleVAE, "vae"},
}

// family tells which kind of model an unprefixed tensor name belongs to ("" when none).
func family(name string) string {
	first, rest, _ := strings.Cut(name, ".")
	second, _, _ := strings.Cut(rest, ".")
	switch first {
	case "double_blocks", "single_blocks", "img_in", "txt_in", "time_in", "vector_in", "guidance_in", "final_layer",
		"joint_blocks", "x_embedder", "pos_embed", "t_embedder", "y_embedder", "context_embedder",
		"transformer_blocks", "single_transformer_blocks", "time_text_embed", "norm_out", "proj_out":
		return "transformer"
	case "quant_conv", "post_quant_conv":
		return "vae"
	case "text_model", "vision_model", "visual_projection", "logit_scale", "text_projection",
		"token_embedding", "positional_embedding", "ln_final", "attn_mask":
		return "clip"
	case "transformer":
		if second == "resblocks" {
			return "clip"
		}
	case "shared", "lm_head":
		return "t5"
	case "encoder", "decoder":
		switch second {
		case "down", "up", "mid", "conv_in", "conv_out", "norm_out", "down_blocks", "up_blocks", "mid_block", "conv_norm_out":
			return "vae"
		case "block", "final_layer_norm", "embed_tokens":
			return "t5"
		}
	}
	return ""
}

// split sorts every tensor of l into groups (one per model) and returns the names that fit none.
func split(l Listing) ([]*group, []string, error) {
	byKey := map[string]*group{}
	var order []string
	var unknown []string
	for _, name := range l.Names() {
		m, ok := l.Meta(name)
		if !ok {
			return nil, nil, fmt.Errorf("checkpoint: tensor %s is listed without metadata", name)
		}
		for _, d := range m.Shape {
			if d < 0 {
				return nil, nil, fmt.Errorf("checkpoint: tensor %s has shape %v", name, m.Shape)
			}
		}
		prefix, role, fam := "", Role(""), ""
		for _, p := range knownPrefixes {
			if strings.HasPrefix(name, p.prefix) {
				prefix, role, fam = p.prefix, p.role, p.family
				break
			}
		}
		if prefix == "" {
			if fam = family(name); fam == "" {
				unknown = append(unknown, name)
				continue
			}
		}
		key := prefix + "|" + fam
		g := byKey[key]
		if g == nil {
			g = &group{prefix: prefix, role: role, family: fam, meta: map[string]TensorMeta{}}
			byKey[key] = g
			order = append(order, key)
		}
		g.meta[strings.TrimPrefix(name, prefix)] = m
	}
	var groups []*group
	for _, key := range order {
		g := byKey[key]
		g.kind = detectKind(g)
		if g.kind == kindNone {
			for n := range g.meta {
				unknown = append(unknown, g.source(n))
			}
			continue
		}
		groups = append(groups, g)
	}
	// A prefix that does not name a role (none today) or an unprefixed group takes its role from its family.
	roles := map[Role]string{}
	for _, g := range groups {
		if g.role == "" {
			switch g.family {
			case "transformer":
				g.role = RoleTransformer
			case "vae":
				g.role = RoleVAE
			case "t5":
				g.role = RoleT5
			}
		}
		if g.role != "" {
			if other, dup := roles[g.role]; dup {
				return nil, nil, fmt.Errorf("%w: two %s models in one file (%s and %s)", ErrUnknownFormat, g.role, other, g.describe())
			}
			roles[g.role] = g.describe()
		}
	}
	return groups, unknown, nil
}

// detectKind recognises a group's key layout from signature tensors.
func detectKind(g *group) kind {
	switch g.family {
	case "transformer":
		switch {
		case g.hasPrefix("double_blocks.") || g.hasPrefix("single_blocks."):
			return kindBFLFlux
		case g.hasPrefix("joint_blocks."):
			return kindSAISD3
		case g.has("pos_embed.pos_embed") || g.has("pos_embed.proj.weight"):
			return kindDiffusersSD3
		case g.hasPrefix("single_transformer_blocks.") || g.has("x_embedder.weight"):
			return kindDiffusersFlux
		}
	case "vae":
		switch {
		case g.hasPrefix("encoder.down.") || g.hasPrefix("decoder.up.") || g.hasPrefix("encoder.mid.") || g.hasPrefix("decoder.mid."):
			return kindLDMVAE
		case g.hasPrefix("encoder.down_blocks.") || g.hasPrefix("decoder.up_blocks.") || g.hasPrefix("decoder.mid_block."):
			return kindDiffusersVAE
		}
	case "clip":
		switch {
		case g.hasPrefix("text_model."):
			return kindCLIP
		case g.hasPrefix("transformer.resblocks."):
			return kindOpenCLIP
		}
	case "t5":
		if g.hasPrefix("encoder.block.") {
			return kindT5
		}
	}
	return kindNone
}
