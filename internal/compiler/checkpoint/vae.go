package checkpoint

import (
	"fmt"
	"strconv"
	"strings"
)

// ldmVAEName translates one LDM VAE key to diffusers' AutoencoderKL name, as convert_ldm_vae_checkpoint
// does; nUp is the number of decoder up blocks (LDM numbers them from the bottom, diffusers from the top).
// ok is false for keys the converter does not map.
func ldmVAEName(name string, nUp int64) (string, bool) {
	part, rest, _ := strings.Cut(name, ".")
	switch part {
	case "quant_conv", "post_quant_conv":
		return name, true
	case "encoder", "decoder":
	default:
		return "", false
	}
	resnet := func(s string) string { return strings.Replace(s, "nin_shortcut", "conv_shortcut", 1) }
	f := strings.Split(rest, ".")
	switch {
	case len(f) == 2 && (f[0] == "conv_in" || f[0] == "conv_out"):
		return name, true
	case len(f) == 2 && f[0] == "norm_out":
		return part + ".conv_norm_out." + f[1], true
	case len(f) >= 5 && f[0] == "down" && f[2] == "block":
		return fmt.Sprintf("%s.down_blocks.%s.resnets.%s.%s", part, f[1], f[3], resnet(strings.Join(f[4:], "."))), true
	case len(f) == 5 && f[0] == "down" && f[2] == "downsample" && f[3] == "conv":
		return fmt.Sprintf("%s.down_blocks.%s.downsamplers.0.conv.%s", part, f[1], f[4]), true
	case len(f) >= 5 && f[0] == "up" && (f[2] == "block" || f[2] == "upsample"):
		bid, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || bid < 0 || bid >= nUp {
			return "", false
		}
		i := nUp - 1 - bid
		if f[2] == "block" {
			return fmt.Sprintf("%s.up_blocks.%d.resnets.%s.%s", part, i, f[3], resnet(strings.Join(f[4:], "."))), true
		}
		if len(f) == 5 && f[3] == "conv" {
			return fmt.Sprintf("%s.up_blocks.%d.upsamplers.0.conv.%s", part, i, f[4]), true
		}
	case len(f) >= 3 && f[0] == "mid" && strings.HasPrefix(f[1], "block_"):
		k, err := strconv.Atoi(strings.TrimPrefix(f[1], "block_"))
		if err != nil || k < 1 {
			return "", false
		}
		return fmt.Sprintf("%s.mid_block.resnets.%d.%s", part, k-1, resnet(strings.Join(f[2:], "."))), true
	case len(f) == 4 && f[0] == "mid" && f[1] == "attn_1":
		to := map[string]string{"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}[f[2]]
		if to == "" {
			return "", false
		}
		return part + ".mid_block.attentions.0." + to + "." + f[3], true
	}
	return "", false
}

// legacyAttention are the attention names of diffusers' AutoencoderKL before 0.15 (deprecated attention
// block), which from_pretrained still converts.
var legacyAttention = map[string]string{"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}

func (g *group) vae(h Hints) (Component, error) {
	m := newMapper(g)
	nUp := blockCount(g, "decoder.up.")
	for _, n := range g.names() {
		dst, ok := n, true
		if g.kind == kindLDMVAE {
			dst, ok = ldmVAEName(n, nUp)
		} else if rest, found := strings.CutPrefix(n, "encoder.mid_block.attentions.0."); found {
			dst = "encoder.mid_block.attentions.0." + renameLegacy(rest)
		} else if rest, found := strings.CutPrefix(n, "decoder.mid_block.attentions.0."); found {
			dst = "decoder.mid_block.attentions.0." + renameLegacy(rest)
		}
		if !ok {
			continue
		}
		t := g.meta[n]
		// The mid-block attention projections are 1x1 convolutions (or Conv1d) in LDM files, Linear in diffusers.
		if strings.Contains(dst, ".mid_block.attentions.0.to_") && strings.HasSuffix(dst, ".weight") && len(t.Shape) > 2 {
			m.reshape(dst, n, t.Shape[:2])
			continue
		}
		m.rename(dst, n)
	}
	if err := m.err(); err != nil {
		return Component{}, err
	}
	t := m.out
	s := &shapes{t: t}
	nBlocks := canonicalCount(t, "encoder.down_blocks.")
	if nBlocks == 0 {
		return Component{}, fmt.Errorf("%w: no encoder down blocks", ErrMismatch)
	}
	blocks := make([]int64, nBlocks)
	for i := range blocks {
		blocks[i] = s.dim(fmt.Sprintf("encoder.down_blocks.%d.resnets.0.conv1.weight", i), 0)
	}
	layers := canonicalCount(t, "encoder.down_blocks.0.resnets.")
	in := s.dim("encoder.conv_in.weight", 1)
	out := s.dim("decoder.conv_out.weight", 0)
	latent := s.dim("decoder.conv_in.weight", 1)
	if err := s.err(); err != nil {
		return Component{}, err
	}
	groups := int64(32)
	if h.NormNumGroups > 0 {
		groups = int64(h.NormNumGroups)
	}
	for _, c := range blocks {
		if c%groups != 0 {
			return Component{}, fmt.Errorf("%w: %d channels do not divide into %d norm groups", ErrMismatch, c, groups)
		}
	}
	types := func(t string) []any {
		out := make([]any, nBlocks)
		for i := range out {
			out[i] = t
		}
		return out
	}
	cfg := map[string]any{
		"_class_name":             "AutoencoderKL",
		"in_channels":             num(in),
		"out_channels":            num(out),
		"down_block_types":        types("DownEncoderBlock2D"),
		"up_block_types":          types("UpDecoderBlock2D"),
		"block_out_channels":      nums(blocks),
		"layers_per_block":        num(layers),
		"act_fn":                  "silu",
		"latent_channels":         num(latent),
		"norm_num_groups":         num(groups),
		"sample_size":             num(1024),
		"force_upcast":            true,
		"use_quant_conv":          hasKey(t, "quant_conv.weight"),
		"use_post_quant_conv":     hasKey(t, "post_quant_conv.weight"),
		"mid_block_add_attention": hasKey(t, "encoder.mid_block.attentions.0.to_q.weight"),
		"latents_mean":            nil,
		"latents_std":             nil,
	}
	assumed := []string{"norm_num_groups", "sample_size"}
	if f, ok := VAEFactors[h.Family]; ok {
		cfg["scaling_factor"], cfg["shift_factor"] = f[0], f[1]
		assumed = append(assumed, "scaling_factor", "shift_factor")
	}
	format := "diffusers AutoencoderKL"
	if g.kind == kindLDMVAE {
		format = "LDM VAE"
	}
	c := Component{Role: RoleVAE, Class: "AutoencoderKL", Config: cfg, Tensors: t, Format: g.format(format), Assumed: assumed}
	return c, finish(g, &c, nil)
}

func renameLegacy(rest string) string {
	name, p, _ := strings.Cut(rest, ".")
	if to, ok := legacyAttention[name]; ok {
		return to + "." + p
	}
	return rest
}
