package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Full-size listings: the canonical state dict of the released configs (shared/model-configs, and the
// SD3.5 configs below), written back into BFL / SAI / LDM / OpenCLIP keys by inverting diffusers'
// converters (as shared/oracle/single_file.py does), then detected without hints.

const modelConfigs = "../../../../shared/model-configs"

func realConfig(t *testing.T, repo, rel string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(modelConfigs, repo, rel))
	if err != nil {
		t.Skipf("real configs not available (%v)", err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func expected(t *testing.T, class string, cfg map[string]any) map[string][]int64 {
	t.Helper()
	s, err := Expected(class, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// inverse builds a source listing from canonical shapes.
type inverse struct {
	canon map[string][]int64
	out   MapListing
	dtype string
}

func newInverse(canon map[string][]int64, dtype string) *inverse {
	return &inverse{canon: canon, out: MapListing{}, dtype: dtype}
}

func (v *inverse) put(dst string, shape []int64) {
	v.out[dst] = TensorMeta{DType: v.dtype, Shape: slices.Clone(shape)}
}

func (v *inverse) take(src string) []int64 {
	s, ok := v.canon[src]
	if !ok {
		panic("inverse: no canonical " + src)
	}
	delete(v.canon, src)
	return s
}

func (v *inverse) mv(dst, src string) { v.put(dst, v.take(src)) }

func (v *inverse) lin(dst, src string) {
	v.mv(dst+".weight", src+".weight")
	v.mv(dst+".bias", src+".bias")
}

// cat stacks canonical tensors along dim 0.
func (v *inverse) cat(dst string, srcs ...string) {
	var shape []int64
	for _, s := range srcs {
		x := v.take(s)
		if shape == nil {
			shape = slices.Clone(x)
		} else {
			shape[0] += x[0]
		}
	}
	v.put(dst, shape)
}

func (v *inverse) done(t *testing.T) MapListing {
	t.Helper()
	if len(v.canon) > 0 {
		t.Fatalf("inverse left canonical tensors unmapped: %v", sortedKeys(v.canon))
	}
	return v.out
}

func toBFL(t *testing.T, canon map[string][]int64, prefix string) MapListing {
	v := newInverse(maps.Clone(canon), "BF16")
	p := func(s string) string { return prefix + s }
	v.lin(p("time_in.in_layer"), "time_text_embed.timestep_embedder.linear_1")
	v.lin(p("time_in.out_layer"), "time_text_embed.timestep_embedder.linear_2")
	v.lin(p("vector_in.in_layer"), "time_text_embed.text_embedder.linear_1")
	v.lin(p("vector_in.out_layer"), "time_text_embed.text_embedder.linear_2")
	if _, ok := canon["time_text_embed.guidance_embedder.linear_1.weight"]; ok {
		v.lin(p("guidance_in.in_layer"), "time_text_embed.guidance_embedder.linear_1")
		v.lin(p("guidance_in.out_layer"), "time_text_embed.guidance_embedder.linear_2")
	}
	v.lin(p("txt_in"), "context_embedder")
	v.lin(p("img_in"), "x_embedder")
	for i := int64(0); ; i++ {
		b, d := fmt.Sprintf("transformer_blocks.%d.", i), p(fmt.Sprintf("double_blocks.%d.", i))
		if _, ok := canon[b+"norm1.linear.weight"]; !ok {
			break
		}
		v.lin(d+"img_mod.lin", b+"norm1.linear")
		v.lin(d+"txt_mod.lin", b+"norm1_context.linear")
		for _, w := range []string{"weight", "bias"} {
			v.cat(d+"img_attn.qkv."+w, b+"attn.to_q."+w, b+"attn.to_k."+w, b+"attn.to_v."+w)
			v.cat(d+"txt_attn.qkv."+w, b+"attn.add_q_proj."+w, b+"attn.add_k_proj."+w, b+"attn.add_v_proj."+w)
		}
		v.mv(d+"img_attn.norm.query_norm.scale", b+"attn.norm_q.weight")
		v.mv(d+"img_attn.norm.key_norm.scale", b+"attn.norm_k.weight")
		v.mv(d+"txt_attn.norm.query_norm.scale", b+"attn.norm_added_q.weight")
		v.mv(d+"txt_attn.norm.key_norm.scale", b+"attn.norm_added_k.weight")
		v.lin(d+"img_mlp.0", b+"ff.net.0.proj")
		v.lin(d+"img_mlp.2", b+"ff.net.2")
		v.lin(d+"txt_mlp.0", b+"ff_context.net.0.proj")
		v.lin(d+"txt_mlp.2", b+"ff_context.net.2")
		v.lin(d+"img_attn.proj", b+"attn.to_out.0")
		v.lin(d+"txt_attn.proj", b+"attn.to_add_out")
	}
	for i := int64(0); ; i++ {
		b, s := fmt.Sprintf("single_transformer_blocks.%d.", i), p(fmt.Sprintf("single_blocks.%d.", i))
		if _, ok := canon[b+"norm.linear.weight"]; !ok {
			break
		}
		v.lin(s+"modulation.lin", b+"norm.linear")
		for _, w := range []string{"weight", "bias"} {
			v.cat(s+"linear1."+w, b+"attn.to_q."+w, b+"attn.to_k."+w, b+"attn.to_v."+w, b+"proj_mlp."+w)
		}
		v.mv(s+"norm.query_norm.scale", b+"attn.norm_q.weight")
		v.mv(s+"norm.key_norm.scale", b+"attn.norm_k.weight")
		v.lin(s+"linear2", b+"proj_out")
	}
	v.lin(p("final_layer.linear"), "proj_out")
	v.lin(p("final_layer.adaLN_modulation.1"), "norm_out.linear")
	return v.done(t)
}

func toSAI(t *testing.T, canon map[string][]int64, prefix string) MapListing {
	v := newInverse(maps.Clone(canon), "F16")
	p := func(s string) string { return prefix + s }
	v.mv(p("pos_embed"), "pos_embed.pos_embed")
	v.lin(p("x_embedder.proj"), "pos_embed.proj")
	v.lin(p("t_embedder.mlp.0"), "time_text_embed.timestep_embedder.linear_1")
	v.lin(p("t_embedder.mlp.2"), "time_text_embed.timestep_embedder.linear_2")
	v.lin(p("context_embedder"), "context_embedder")
	v.lin(p("y_embedder.mlp.0"), "time_text_embed.text_embedder.linear_1")
	v.lin(p("y_embedder.mlp.2"), "time_text_embed.text_embedder.linear_2")
	for i := int64(0); ; i++ {
		b, j := fmt.Sprintf("transformer_blocks.%d.", i), p(fmt.Sprintf("joint_blocks.%d.", i))
		if _, ok := canon[b+"norm1.linear.weight"]; !ok {
			break
		}
		for _, w := range []string{"weight", "bias"} {
			v.cat(j+"x_block.attn.qkv."+w, b+"attn.to_q."+w, b+"attn.to_k."+w, b+"attn.to_v."+w)
			v.cat(j+"context_block.attn.qkv."+w, b+"attn.add_q_proj."+w, b+"attn.add_k_proj."+w, b+"attn.add_v_proj."+w)
		}
		if _, ok := canon[b+"attn.norm_q.weight"]; ok {
			v.mv(j+"x_block.attn.ln_q.weight", b+"attn.norm_q.weight")
			v.mv(j+"x_block.attn.ln_k.weight", b+"attn.norm_k.weight")
			v.mv(j+"context_block.attn.ln_q.weight", b+"attn.norm_added_q.weight")
			v.mv(j+"context_block.attn.ln_k.weight", b+"attn.norm_added_k.weight")
		}
		v.lin(j+"x_block.attn.proj", b+"attn.to_out.0")
		if _, ok := canon[b+"attn2.to_q.weight"]; ok {
			for _, w := range []string{"weight", "bias"} {
				v.cat(j+"x_block.attn2.qkv."+w, b+"attn2.to_q."+w, b+"attn2.to_k."+w, b+"attn2.to_v."+w)
			}
			if _, ok := canon[b+"attn2.norm_q.weight"]; ok {
				v.mv(j+"x_block.attn2.ln_q.weight", b+"attn2.norm_q.weight")
				v.mv(j+"x_block.attn2.ln_k.weight", b+"attn2.norm_k.weight")
			}
			v.lin(j+"x_block.attn2.proj", b+"attn2.to_out.0")
		}
		v.lin(j+"x_block.adaLN_modulation.1", b+"norm1.linear")
		v.lin(j+"x_block.mlp.fc1", b+"ff.net.0.proj")
		v.lin(j+"x_block.mlp.fc2", b+"ff.net.2")
		v.lin(j+"context_block.adaLN_modulation.1", b+"norm1_context.linear")
		if _, ok := canon[b+"attn.to_add_out.weight"]; ok {
			v.lin(j+"context_block.attn.proj", b+"attn.to_add_out")
			v.lin(j+"context_block.mlp.fc1", b+"ff_context.net.0.proj")
			v.lin(j+"context_block.mlp.fc2", b+"ff_context.net.2")
		}
	}
	v.lin(p("final_layer.linear"), "proj_out")
	v.lin(p("final_layer.adaLN_modulation.1"), "norm_out.linear")
	return v.done(t)
}

// toLDM writes an AutoencoderKL state dict in LDM keys (mid-block attention as 1x1 convolutions).
func toLDM(t *testing.T, canon map[string][]int64, nBlocks int, prefix string) MapListing {
	out := MapListing{}
	attn := map[string]string{"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out": "proj_out"}
	for k, shape := range canon {
		part, rest, _ := strings.Cut(k, ".")
		f := strings.Split(rest, ".")
		var dst string
		switch {
		case part == "quant_conv" || part == "post_quant_conv" || f[0] == "conv_in" || f[0] == "conv_out":
			dst = k
		case f[0] == "conv_norm_out":
			dst = part + ".norm_out." + f[1]
		case f[0] == "down_blocks" && f[2] == "resnets":
			dst = fmt.Sprintf("%s.down.%s.block.%s.%s", part, f[1], f[3], strings.Join(f[4:], "."))
		case f[0] == "down_blocks":
			dst = fmt.Sprintf("%s.down.%s.downsample.conv.%s", part, f[1], f[len(f)-1])
		case f[0] == "up_blocks":
			var i int
			fmt.Sscan(f[1], &i)
			bid := nBlocks - 1 - i
			if f[2] == "resnets" {
				dst = fmt.Sprintf("%s.up.%d.block.%s.%s", part, bid, f[3], strings.Join(f[4:], "."))
			} else {
				dst = fmt.Sprintf("%s.up.%d.upsample.conv.%s", part, bid, f[len(f)-1])
			}
		case f[0] == "mid_block" && f[1] == "resnets":
			var j int
			fmt.Sscan(f[2], &j)
			dst = fmt.Sprintf("%s.mid.block_%d.%s", part, j+1, strings.Join(f[3:], "."))
		case f[0] == "mid_block" && f[1] == "attentions":
			dst = fmt.Sprintf("%s.mid.attn_1.%s.%s", part, attn[f[3]], f[len(f)-1])
			if f[3] != "group_norm" && f[len(f)-1] == "weight" {
				shape = append(slices.Clone(shape), 1, 1)
			}
		default:
			t.Fatalf("toLDM: unmapped %s", k)
		}
		dst = strings.Replace(dst, "conv_shortcut", "nin_shortcut", 1)
		out[prefix+dst] = TensorMeta{DType: "F32", Shape: slices.Clone(shape)}
	}
	return out
}

func withPrefix(canon map[string][]int64, prefix, dtype string) MapListing {
	out := MapListing{}
	for k, s := range canon {
		out[prefix+k] = TensorMeta{DType: dtype, Shape: slices.Clone(s)}
	}
	return out
}

func merge(ls ...MapListing) MapListing {
	out := MapListing{}
	for _, l := range ls {
		maps.Copy(out, l)
	}
	return out
}

// roles adapts Detect's two results into components by role.
func roles(t *testing.T) func([]Component, error) map[Role]Component {
	return func(comps []Component, err error) map[Role]Component {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		out := map[Role]Component{}
		for _, c := range comps {
			if _, dup := out[c.Role]; dup {
				t.Fatalf("two %s components", c.Role)
			}
			out[c.Role] = c
		}
		return out
	}
}

// checkCanonical asserts that a component has exactly the canonical tensors with their shapes.
func checkCanonical(t *testing.T, label string, c Component, canon map[string][]int64) {
	t.Helper()
	want := MapListing{}
	for k, s := range canon {
		want[k] = TensorMeta{Shape: s}
	}
	for name := range want {
		r, ok := c.Tensors[name]
		if !ok {
			t.Errorf("%s: missing %s", label, name)
		} else if !slices.Equal(r.Shape, want[name].Shape) {
			t.Errorf("%s: %s shape %v, want %v", label, name, r.Shape, want[name].Shape)
		}
	}
	if len(c.Tensors) != len(want) {
		t.Errorf("%s: %d tensors, want %d", label, len(c.Tensors), len(want))
	}
	if len(c.Unused) > 0 {
		t.Errorf("%s: unused %v", label, c.Unused)
	}
}

func TestFullSizeFLUX(t *testing.T) {
	for _, repo := range []string{"black-forest-labs/FLUX.1-dev", "black-forest-labs/FLUX.1-schnell"} {
		cfg := realConfig(t, repo, "transformer/config.json")
		canon := expected(t, "FluxTransformer2DModel", cfg)
		// FLUX.1's config relies on the class defaults for these two.
		want := maps.Clone(cfg)
		want["axes_dims_rope"] = []any{16.0, 56.0, 56.0}
		want["out_channels"] = nil
		for _, prefix := range []string{"", "model.diffusion_model.", "diffusion_model."} {
			c := only(t)(Detect(toBFL(t, canon, prefix)))
			label := repo + " " + prefix
			checkCanonical(t, label, c, canon)
			compareConfig(t, label, c.Class, c.Config, want)
			if prefix != "" && !strings.Contains(c.Format, "ComfyUI prefix "+prefix) {
				t.Errorf("%s: format %q", label, c.Format)
			}
		}
		// The diffusers-keyed file of the same model.
		c := only(t)(Detect(withPrefix(canon, "", "BF16")))
		compareConfig(t, repo+" diffusers", c.Class, c.Config, want)
	}
}

// only adapts Detect's two results for a single component.
func only(t *testing.T) func([]Component, error) Component {
	return func(c []Component, err error) Component { t.Helper(); return onlyOne(t, c, err) }
}

func onlyOne(t *testing.T, comps []Component, err error) Component {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if len(comps) != 1 {
		t.Fatalf("%d components", len(comps))
	}
	return comps[0]
}

const sd3Repo = "stabilityai/stable-diffusion-3-medium-diffusers"

// SD3-medium as sd3_medium_incl_clips_t5xxlfp16.safetensors: transformer, CLIP-L (no text_projection),
// CLIP-G, T5-XXL and the VAE in one file, at full size.
func TestFullSizeSD3MediumBundle(t *testing.T) {
	cfgs := map[string]map[string]any{}
	for _, sub := range []string{"transformer", "vae", "text_encoder", "text_encoder_2", "text_encoder_3"} {
		cfgs[sub] = realConfig(t, sd3Repo, sub+"/config.json")
	}
	tr := expected(t, "SD3Transformer2DModel", cfgs["transformer"])
	vae := expected(t, "AutoencoderKL", cfgs["vae"])
	clipL := expected(t, "CLIPTextModelWithProjection", cfgs["text_encoder"])
	clipG := expected(t, "CLIPTextModelWithProjection", cfgs["text_encoder_2"])
	t5 := expected(t, "T5EncoderModel", cfgs["text_encoder_3"])
	clipLNoProj := maps.Clone(clipL)
	delete(clipLNoProj, "text_projection.weight")
	file := merge(toSAI(t, tr, "model.diffusion_model."), toLDM(t, vae, 4, "first_stage_model."),
		withPrefix(clipLNoProj, "text_encoders.clip_l.transformer.", "F16"),
		withPrefix(clipG, "text_encoders.clip_g.transformer.", "F16"),
		withPrefix(t5, "text_encoders.t5xxl.transformer.", "F16"))
	got := roles(t)(Detect(file))
	if len(got) != 5 {
		t.Fatalf("%d components, want 5", len(got))
	}
	for role, sub := range map[Role]string{RoleTransformer: "transformer", RoleVAE: "vae", RoleCLIPL: "text_encoder",
		RoleCLIPG: "text_encoder_2", RoleT5: "text_encoder_3"} {
		c := got[role]
		want := map[string][]int64(expected(t, c.Class, cfgs[sub]))
		checkCanonical(t, sub, c, want)
		compareConfig(t, sub, c.Class, c.Config, cfgs[sub])
	}
	if r := got[RoleCLIPL].Tensors["text_projection.weight"]; r.Fill != FillEye || !slices.Equal(r.Shape, []int64{768, 768}) {
		t.Errorf("CLIP-L text_projection %+v, want the 768x768 identity", r)
	}
	if f := got[RoleTransformer].Format; f != "SAI SD3 single file (prefix model.diffusion_model.)" {
		t.Errorf("format %q", f)
	}
}

// The SD3.5 configs as released (stabilityai/stable-diffusion-3.5-large and -medium, transformer/config.json).
func sd35Config(medium bool) map[string]any {
	cfg := map[string]any{"_class_name": "SD3Transformer2DModel", "attention_head_dim": 64.0,
		"caption_projection_dim": 2432.0, "in_channels": 16.0, "joint_attention_dim": 4096.0,
		"num_attention_heads": 38.0, "num_layers": 38.0, "out_channels": 16.0, "patch_size": 2.0,
		"pooled_projection_dim": 2048.0, "pos_embed_max_size": 192.0, "qk_norm": "rms_norm", "sample_size": 128.0,
		"dual_attention_layers": []any{}}
	if medium {
		cfg["caption_projection_dim"], cfg["num_attention_heads"], cfg["num_layers"] = 1536.0, 24.0, 24.0
		cfg["pos_embed_max_size"] = 384.0
		var dual []any
		for i := range 13 {
			dual = append(dual, float64(i))
		}
		cfg["dual_attention_layers"] = dual
	}
	return cfg
}

func TestFullSizeSD35(t *testing.T) {
	for _, medium := range []bool{false, true} {
		cfg := sd35Config(medium)
		canon := expected(t, "SD3Transformer2DModel", cfg)
		c := only(t)(Detect(toSAI(t, canon, "model.diffusion_model.")))
		label := fmt.Sprintf("SD3.5 medium=%v", medium)
		checkCanonical(t, label, c, canon)
		compareConfig(t, label, c.Class, c.Config, cfg)
		if medium {
			// MMDiT-X: 9-way modulation and a second attention in the first 13 blocks.
			if s := c.Tensors["transformer_blocks.12.norm1.linear.weight"].Shape; !slices.Equal(s, []int64{9 * 1536, 1536}) {
				t.Errorf("block 12 norm1 %v", s)
			}
			if r := c.Tensors["transformer_blocks.3.attn2.to_k.weight"]; r.Pieces[0] != (Piece{"model.diffusion_model.joint_blocks.3.x_block.attn2.qkv.weight", 1536, 3072}) {
				t.Errorf("attn2 k recipe %+v", r)
			}
		}
		// The context block of the last layer is pre-only: its modulation halves are swapped.
		last := fmt.Sprintf("transformer_blocks.%d.norm1_context.linear.weight", int(cfg["num_layers"].(float64))-1)
		d := int64(cfg["caption_projection_dim"].(float64))
		src := fmt.Sprintf("model.diffusion_model.joint_blocks.%d.context_block.adaLN_modulation.1.weight", int(cfg["num_layers"].(float64))-1)
		if r := c.Tensors[last]; !slices.Equal(r.Pieces, []Piece{{src, d, 2 * d}, {src, 0, d}}) {
			t.Errorf("%s recipe %+v", last, r.Pieces)
		}
	}
}

// ComfyUI's all-in-one FLUX checkpoint: transformer, CLIP-L, T5 and an LDM VAE under vae.
func TestFullSizeComfyFLUXBundle(t *testing.T) {
	repo := "black-forest-labs/FLUX.1-dev"
	cfgs := map[string]map[string]any{}
	for _, sub := range []string{"transformer", "vae", "text_encoder", "text_encoder_2"} {
		cfgs[sub] = realConfig(t, repo, sub+"/config.json")
	}
	tr := expected(t, "FluxTransformer2DModel", cfgs["transformer"])
	file := merge(toBFL(t, tr, "model.diffusion_model."),
		toLDM(t, expected(t, "AutoencoderKL", cfgs["vae"]), 4, "vae."),
		withPrefix(expected(t, "CLIPTextModel", cfgs["text_encoder"]), "text_encoders.clip_l.transformer.", "F16"),
		withPrefix(expected(t, "T5EncoderModel", cfgs["text_encoder_2"]), "text_encoders.t5xxl.transformer.", "F16"))
	got := roles(t)(Detect(file))
	if len(got) != 4 {
		t.Fatalf("%d components", len(got))
	}
	// The VAE takes FLUX's factors from the bundled transformer.
	compareConfig(t, "vae", "AutoencoderKL", got[RoleVAE].Config, cfgs["vae"])
	compareConfig(t, "clip_l", "CLIPTextModel", got[RoleCLIPL].Config, cfgs["text_encoder"])
	if got[RoleCLIPL].Class != "CLIPTextModel" {
		t.Errorf("FLUX CLIP-L class %s", got[RoleCLIPL].Class)
	}
	// FLUX's T5 config spells the activation gelu_pytorch_tanh (torch's name for gelu_new's tanh
	// approximation) and leaves feed_forward_proj at its default: compare the sizes.
	t5cfg := got[RoleT5].Config
	for _, k := range []string{"d_model", "d_kv", "num_heads", "num_layers", "d_ff", "vocab_size", "relative_attention_num_buckets", "is_gated_act"} {
		if t5cfg[k] != cfgs["text_encoder_2"][k] {
			t.Errorf("t5 %s = %v, want %v", k, t5cfg[k], cfgs["text_encoder_2"][k])
		}
	}
}

// OpenCLIP's text tower (bigG as SD3's CLIP-G): in_proj split into q/k/v, text_projection transposed.
func TestOpenCLIP(t *testing.T) {
	cfg := realConfig(t, sd3Repo, "text_encoder_2/config.json")
	canon := expected(t, "CLIPTextModelWithProjection", cfg)
	l := MapListing{}
	for k, s := range canon {
		dst := k
		switch {
		case k == "text_model.embeddings.token_embedding.weight":
			dst = "token_embedding.weight"
		case k == "text_model.embeddings.position_embedding.weight":
			dst = "positional_embedding"
		case strings.HasPrefix(k, "text_model.final_layer_norm."):
			dst = "ln_final." + strings.TrimPrefix(k, "text_model.final_layer_norm.")
		case k == "text_projection.weight":
			dst, s = "text_projection", []int64{s[1], s[0]}
		default:
			dst = strings.NewReplacer("text_model.encoder.layers.", "transformer.resblocks.", "layer_norm1", "ln_1",
				"layer_norm2", "ln_2", ".fc1.", ".c_fc.", ".fc2.", ".c_proj.", "self_attn.out_proj", "attn.out_proj").Replace(k)
			for _, x := range []string{"q", "k", "v"} {
				if strings.Contains(dst, "self_attn."+x+"_proj.") {
					kind := strings.TrimPrefix(dst[strings.LastIndex(dst, "."):], ".")
					dst = dst[:strings.Index(dst, "self_attn.")] + "attn.in_proj_" + kind
					s = []int64{3 * s[0], s[len(s)-1]}
					if kind == "bias" {
						s = s[:1]
					}
				}
			}
		}
		l[dst] = TensorMeta{DType: "F16", Shape: s}
	}
	l["logit_scale"] = TensorMeta{DType: "F16", Shape: []int64{}}
	c := only(t)(Detect(l))
	if c.Role != RoleCLIPG || c.Format != "OpenCLIP text tower" {
		t.Errorf("role %s format %q", c.Role, c.Format)
	}
	checkCanonical(t, "openclip", c, canon)
	compareConfig(t, "openclip", c.Class, c.Config, cfg)
	if r := c.Tensors["text_projection.weight"]; !r.Transpose {
		t.Errorf("text_projection recipe %+v", r)
	}
	if r := c.Tensors["text_model.encoder.layers.31.self_attn.v_proj.bias"]; r.Pieces[0] != (Piece{"transformer.resblocks.31.attn.in_proj_bias", 2560, 3840}) {
		t.Errorf("v_proj.bias recipe %+v", r)
	}
}

// A lone CLIP-L for SD3 gets the identity projection only when the caller says the family is SD3.
func TestCLIPLoneFile(t *testing.T) {
	cfg := realConfig(t, "black-forest-labs/FLUX.1-dev", "text_encoder/config.json")
	l := withPrefix(expected(t, "CLIPTextModel", cfg), "", "F16")
	l["text_model.embeddings.position_ids"] = TensorMeta{DType: "I64", Shape: []int64{1, 77}}
	c := only(t)(Detect(l))
	if c.Role != RoleCLIPL || c.Class != "CLIPTextModel" || len(c.Unused) != 0 {
		t.Errorf("role %s class %s unused %v", c.Role, c.Class, c.Unused)
	}
	c = only(t)(DetectWith(l, Hints{Family: FamilySD3}))
	if c.Class != "CLIPTextModelWithProjection" || c.Tensors["text_projection.weight"].Fill != FillEye {
		t.Errorf("SD3 CLIP-L: class %s projection %+v", c.Class, c.Tensors["text_projection.weight"])
	}
	// --clip-g on a small CLIP: the caller's role wins, and gelu follows.
	c = only(t)(DetectWith(l, Hints{Role: RoleCLIPG}))
	if c.Role != RoleCLIPG || c.Config["hidden_act"] != "gelu" {
		t.Errorf("role %s act %v", c.Role, c.Config["hidden_act"])
	}
}

// T5 files with the embedding under encoder.embed_tokens only, and full encoder-decoder files.
func TestT5Variants(t *testing.T) {
	cfg := realConfig(t, sd3Repo, "text_encoder_3/config.json")
	canon := expected(t, "T5EncoderModel", cfg)
	l := withPrefix(canon, "", "BF16")
	l["encoder.embed_tokens.weight"] = l["shared.weight"]
	delete(l, "shared.weight")
	c := only(t)(Detect(l))
	if r := c.Tensors["shared.weight"]; r.Pieces[0].Tensor != "encoder.embed_tokens.weight" {
		t.Errorf("shared.weight recipe %+v", r)
	}
	compareConfig(t, "t5", c.Class, c.Config, cfg)
	l["shared.weight"] = l["encoder.embed_tokens.weight"]
	l["decoder.block.0.layer.0.SelfAttention.q.weight"] = TensorMeta{DType: "BF16", Shape: []int64{4096, 4096}}
	l["lm_head.weight"] = TensorMeta{DType: "BF16", Shape: []int64{32128, 4096}}
	c = only(t)(Detect(l))
	if !slices.Equal(c.Unused, []string{"decoder.block.0.layer.0.SelfAttention.q.weight", "lm_head.weight"}) {
		t.Errorf("unused %v", c.Unused)
	}
}

// A diffusers VAE file from before diffusers 0.15 (query/key/value/proj_attn, 1x1 conv weights).
func TestDiffusersVAELegacyAttention(t *testing.T) {
	cfg := realConfig(t, sd3Repo, "vae/config.json")
	canon := expected(t, "AutoencoderKL", cfg)
	l := MapListing{}
	for k, s := range canon {
		for from, to := range map[string]string{".to_q.": ".query.", ".to_k.": ".key.", ".to_v.": ".value.", ".to_out.0.": ".proj_attn."} {
			if strings.Contains(k, "attentions.0"+from) {
				k = strings.Replace(k, from, to, 1)
				if len(s) == 2 {
					s = []int64{s[0], s[1], 1, 1}
				}
			}
		}
		l[k] = TensorMeta{DType: "F32", Shape: s}
	}
	c := only(t)(DetectWith(l, Hints{Family: FamilySD3}))
	checkCanonical(t, "vae", c, canon)
	compareConfig(t, "vae", c.Class, c.Config, cfg)
	// Without a family the factors are the caller's to add.
	c = only(t)(Detect(l))
	if _, ok := c.Config["scaling_factor"]; ok {
		t.Errorf("scaling_factor without a family: %v", c.Config["scaling_factor"])
	}
}

func TestErrors(t *testing.T) {
	flux := expected(t, "FluxTransformer2DModel", realConfig(t, "black-forest-labs/FLUX.1-dev", "transformer/config.json"))
	bfl := func() MapListing { return toBFL(t, flux, "") }
	cases := []struct {
		name  string
		l     MapListing
		h     Hints
		is    error
		wants []string
	}{
		{"unknown", MapListing{"input_blocks.0.0.weight": {"F16", []int64{320, 4, 3, 3}}, "foo": {"F16", []int64{1}}},
			Hints{}, ErrUnknownFormat, []string{"input_blocks.0.0.weight", "foo", "BFL FLUX"}},
		{"extra unknown", merge(bfl(), MapListing{"model_ema.decay": {"F32", []int64{}}}),
			Hints{}, ErrUnknownFormat, []string{"1 tensor matches none", "model_ema.decay"}},
		{"missing", func() MapListing { l := bfl(); delete(l, "double_blocks.7.txt_attn.proj.bias"); return l }(),
			Hints{}, ErrMismatch, []string{"missing double_blocks.7.txt_attn.proj.bias"}},
		{"shape", func() MapListing {
			l := bfl()
			l["single_blocks.3.linear2.weight"] = TensorMeta{"BF16", []int64{3072, 15000}}
			return l
		}(),
			Hints{}, ErrMismatch, []string{"single_transformer_blocks.3.proj_out.weight (from single_blocks.3.linear2.weight): expected shape [3072 15360], found [3072 15000]"}},
		{"qkv", func() MapListing {
			l := bfl()
			l["double_blocks.0.img_attn.qkv.weight"] = TensorMeta{"BF16", []int64{9217, 3072}}
			return l
		}(),
			Hints{}, ErrMismatch, []string{"double_blocks.0.img_attn.qkv.weight: shape [9217 3072] does not split into 3 equal parts"}},
		{"rope axes", bfl(), Hints{AxesDimsRope: []int{16, 56, 48}}, ErrMismatch, []string{"head size 128", "[16 56 48]"}},
		{"empty", MapListing{}, Hints{}, ErrUnknownFormat, []string{"no tensors"}},
		{"two transformers", merge(bfl(), toBFL(t, flux, "model.diffusion_model.")), Hints{}, ErrUnknownFormat,
			[]string{"two transformer models"}},
	}
	for _, c := range cases {
		_, err := DetectWith(c.l, c.h)
		if err == nil || !errors.Is(err, c.is) {
			t.Errorf("%s: error %v, want %v", c.name, err, c.is)
			continue
		}
		t.Logf("%s: %v", c.name, err)
		for _, w := range c.wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", c.name, err, w)
			}
		}
		if len(err.Error()) > 2000 {
			t.Errorf("%s: error of %d bytes", c.name, len(err.Error()))
		}
	}
}
