package checkpoint

import (
	"fmt"
	"strconv"
)

// Expected returns the canonical state dict of class built from config: every parameter name the
// diffusers/transformers module has (as its save_pretrained safetensors file holds them) and its shape.
// config is a config.json as json.Unmarshal gives it; absent fields take the class's defaults.
func Expected(class string, config map[string]any) (map[string][]int64, error) {
	s := schema{}
	var err error
	switch class {
	case "FluxTransformer2DModel":
		err = s.flux(config)
	case "SD3Transformer2DModel":
		err = s.sd3(config)
	case "AutoencoderKL":
		err = s.vae(config)
	case "CLIPTextModel", "CLIPTextModelWithProjection":
		err = s.clip(config, class == "CLIPTextModelWithProjection")
	case "T5EncoderModel":
		err = s.t5(config)
	default:
		return nil, fmt.Errorf("checkpoint: no schema for class %q", class)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", class, err)
	}
	return s, nil
}

type schema map[string][]int64

func (s schema) add(name string, shape ...int64) { s[name] = shape }

// linear adds name.weight [out, in] and name.bias [out].
func (s schema) linear(name string, out, in int64) {
	s.add(name+".weight", out, in)
	s.add(name+".bias", out)
}

func (s schema) norm(name string, n int64) {
	s.add(name+".weight", n)
	s.add(name+".bias", n)
}

func (s schema) conv(name string, out, in, k int64) {
	s.add(name+".weight", out, in, k, k)
	s.add(name+".bias", out)
}

// timestepTextEmbed adds CombinedTimestep(Guidance)TextProjEmbeddings: sinusoidal 256 channels in.
func (s schema) timestepTextEmbed(dim, pooled int64, guidance bool) {
	s.linear("time_text_embed.timestep_embedder.linear_1", dim, 256)
	s.linear("time_text_embed.timestep_embedder.linear_2", dim, dim)
	if guidance {
		s.linear("time_text_embed.guidance_embedder.linear_1", dim, 256)
		s.linear("time_text_embed.guidance_embedder.linear_2", dim, dim)
	}
	s.linear("time_text_embed.text_embedder.linear_1", dim, pooled)
	s.linear("time_text_embed.text_embedder.linear_2", dim, dim)
}

// feedForward adds diffusers' FeedForward(dim, mult 4, gelu-approximate): net.0.proj and net.2.
func (s schema) feedForward(p string, dim int64) {
	s.linear(p+".net.0.proj", 4*dim, dim)
	s.linear(p+".net.2", dim, 4*dim)
}

func (s schema) flux(cfg map[string]any) error {
	heads, err1 := cfgInt(cfg, "num_attention_heads", 24)
	hd, err2 := cfgInt(cfg, "attention_head_dim", 128)
	in, err3 := cfgInt(cfg, "in_channels", 64)
	out, err4 := cfgInt(cfg, "out_channels", in)
	patch, err5 := cfgInt(cfg, "patch_size", 1)
	layers, err6 := cfgInt(cfg, "num_layers", 19)
	single, err7 := cfgInt(cfg, "num_single_layers", 38)
	joint, err8 := cfgInt(cfg, "joint_attention_dim", 4096)
	pooled, err9 := cfgInt(cfg, "pooled_projection_dim", 768)
	guidance, err10 := cfgBool(cfg, "guidance_embeds", false)
	if err := firstErr(err1, err2, err3, err4, err5, err6, err7, err8, err9, err10); err != nil {
		return err
	}
	if err := positive("num_attention_heads", heads, "attention_head_dim", hd, "in_channels", in,
		"out_channels", out, "patch_size", patch, "joint_attention_dim", joint, "pooled_projection_dim", pooled); err != nil {
		return err
	}
	d := heads * hd
	s.linear("x_embedder", d, in)
	s.linear("context_embedder", d, joint)
	s.timestepTextEmbed(d, pooled, guidance)
	for i := range layers {
		b := "transformer_blocks." + strconv.FormatInt(i, 10) + "."
		s.linear(b+"norm1.linear", 6*d, d)
		s.linear(b+"norm1_context.linear", 6*d, d)
		for _, n := range []string{"to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out"} {
			s.linear(b+"attn."+n, d, d)
		}
		for _, n := range []string{"norm_q", "norm_k", "norm_added_q", "norm_added_k"} {
			s.add(b+"attn."+n+".weight", hd)
		}
		s.feedForward(b+"ff", d)
		s.feedForward(b+"ff_context", d)
	}
	for i := range single {
		b := "single_transformer_blocks." + strconv.FormatInt(i, 10) + "."
		s.linear(b+"norm.linear", 3*d, d)
		for _, n := range []string{"to_q", "to_k", "to_v"} {
			s.linear(b+"attn."+n, d, d)
		}
		s.add(b+"attn.norm_q.weight", hd)
		s.add(b+"attn.norm_k.weight", hd)
		s.linear(b+"proj_mlp", 4*d, d)
		s.linear(b+"proj_out", d, 5*d)
	}
	s.linear("norm_out.linear", 2*d, d)
	s.linear("proj_out", patch*patch*out, d)
	return nil
}

func (s schema) sd3(cfg map[string]any) error {
	heads, err1 := cfgInt(cfg, "num_attention_heads", 18)
	hd, err2 := cfgInt(cfg, "attention_head_dim", 64)
	in, err3 := cfgInt(cfg, "in_channels", 16)
	out, err4 := cfgInt(cfg, "out_channels", in)
	patch, err5 := cfgInt(cfg, "patch_size", 2)
	layers, err6 := cfgInt(cfg, "num_layers", 18)
	joint, err7 := cfgInt(cfg, "joint_attention_dim", 4096)
	capDim, err8 := cfgInt(cfg, "caption_projection_dim", 1152)
	pooled, err9 := cfgInt(cfg, "pooled_projection_dim", 2048)
	maxSize, err10 := cfgInt(cfg, "pos_embed_max_size", 96)
	dual, err11 := cfgInts(cfg, "dual_attention_layers", nil)
	qk, err12 := cfgString(cfg, "qk_norm", "")
	if err := firstErr(err1, err2, err3, err4, err5, err6, err7, err8, err9, err10, err11, err12); err != nil {
		return err
	}
	if err := positive("num_attention_heads", heads, "attention_head_dim", hd, "in_channels", in,
		"out_channels", out, "patch_size", patch, "joint_attention_dim", joint, "caption_projection_dim", capDim,
		"pooled_projection_dim", pooled, "pos_embed_max_size", maxSize); err != nil {
		return err
	}
	if qk != "" && qk != "rms_norm" {
		return fmt.Errorf("config: qk_norm %q is not supported (only rms_norm)", qk)
	}
	isDual := map[int64]bool{}
	for _, i := range dual {
		isDual[i] = true
	}
	d := heads * hd
	s.add("pos_embed.pos_embed", 1, maxSize*maxSize, d)
	s.conv("pos_embed.proj", d, in, patch)
	s.timestepTextEmbed(d, pooled, false)
	s.linear("context_embedder", capDim, joint)
	for i := range layers {
		b := "transformer_blocks." + strconv.FormatInt(i, 10) + "."
		last := i == layers-1
		if isDual[i] {
			s.linear(b+"norm1.linear", 9*d, d) // SD35AdaLayerNormZeroX
		} else {
			s.linear(b+"norm1.linear", 6*d, d)
		}
		if last {
			s.linear(b+"norm1_context.linear", 2*d, d) // AdaLayerNormContinuous (context_pre_only)
		} else {
			s.linear(b+"norm1_context.linear", 6*d, d)
		}
		for _, n := range []string{"to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj"} {
			s.linear(b+"attn."+n, d, d)
		}
		if !last {
			s.linear(b+"attn.to_add_out", d, d)
		}
		if qk != "" {
			for _, n := range []string{"norm_q", "norm_k", "norm_added_q", "norm_added_k"} {
				s.add(b+"attn."+n+".weight", hd)
			}
		}
		if isDual[i] {
			for _, n := range []string{"to_q", "to_k", "to_v", "to_out.0"} {
				s.linear(b+"attn2."+n, d, d)
			}
			if qk != "" {
				s.add(b+"attn2.norm_q.weight", hd)
				s.add(b+"attn2.norm_k.weight", hd)
			}
		}
		s.feedForward(b+"ff", d)
		if !last {
			s.feedForward(b+"ff_context", d)
		}
	}
	s.linear("norm_out.linear", 2*d, d)
	s.linear("proj_out", patch*patch*out, d)
	return nil
}

func (s schema) vae(cfg map[string]any) error {
	blocks, err1 := cfgInts(cfg, "block_out_channels", []int64{64})
	layers, err2 := cfgInt(cfg, "layers_per_block", 1)
	in, err3 := cfgInt(cfg, "in_channels", 3)
	out, err4 := cfgInt(cfg, "out_channels", 3)
	latent, err5 := cfgInt(cfg, "latent_channels", 4)
	quant, err6 := cfgBool(cfg, "use_quant_conv", true)
	postQuant, err7 := cfgBool(cfg, "use_post_quant_conv", true)
	midAttn, err8 := cfgBool(cfg, "mid_block_add_attention", true)
	if err := firstErr(err1, err2, err3, err4, err5, err6, err7, err8); err != nil {
		return err
	}
	if len(blocks) == 0 || len(blocks) > 16 {
		return fmt.Errorf("config: block_out_channels %v", blocks)
	}
	for _, c := range blocks {
		if err := positive("block_out_channels", c); err != nil {
			return err
		}
	}
	if err := positive("layers_per_block", layers, "in_channels", in, "out_channels", out, "latent_channels", latent); err != nil {
		return err
	}
	n := len(blocks)
	top := blocks[n-1]
	resnet := func(p string, cin, cout int64) {
		s.norm(p+".norm1", cin)
		s.conv(p+".conv1", cout, cin, 3)
		s.norm(p+".norm2", cout)
		s.conv(p+".conv2", cout, cout, 3)
		if cin != cout {
			s.conv(p+".conv_shortcut", cout, cin, 1)
		}
	}
	mid := func(p string) {
		resnet(p+".mid_block.resnets.0", top, top)
		if midAttn {
			a := p + ".mid_block.attentions.0."
			s.norm(a+"group_norm", top)
			for _, x := range []string{"to_q", "to_k", "to_v", "to_out.0"} {
				s.linear(a+x, top, top)
			}
		}
		resnet(p+".mid_block.resnets.1", top, top)
	}
	s.conv("encoder.conv_in", blocks[0], in, 3)
	cout := blocks[0]
	for i := range n {
		cin := cout
		cout = blocks[i]
		for j := range layers {
			c := cin
			if j > 0 {
				c = cout
			}
			resnet(fmt.Sprintf("encoder.down_blocks.%d.resnets.%d", i, j), c, cout)
		}
		if i < n-1 {
			s.conv(fmt.Sprintf("encoder.down_blocks.%d.downsamplers.0.conv", i), cout, cout, 3)
		}
	}
	mid("encoder")
	s.norm("encoder.conv_norm_out", top)
	s.conv("encoder.conv_out", 2*latent, top, 3)
	if quant {
		s.conv("quant_conv", 2*latent, 2*latent, 1)
	}
	if postQuant {
		s.conv("post_quant_conv", latent, latent, 1)
	}
	s.conv("decoder.conv_in", top, latent, 3)
	mid("decoder")
	cout = top
	for i := range n {
		cin := cout
		cout = blocks[n-1-i]
		for j := range layers + 1 {
			c := cin
			if j > 0 {
				c = cout
			}
			resnet(fmt.Sprintf("decoder.up_blocks.%d.resnets.%d", i, j), c, cout)
		}
		if i < n-1 {
			s.conv(fmt.Sprintf("decoder.up_blocks.%d.upsamplers.0.conv", i), cout, cout, 3)
		}
	}
	s.norm("decoder.conv_norm_out", blocks[0])
	s.conv("decoder.conv_out", out, blocks[0], 3)
	return nil
}

func (s schema) clip(cfg map[string]any, projection bool) error {
	hidden, err1 := cfgInt(cfg, "hidden_size", 512)
	inter, err2 := cfgInt(cfg, "intermediate_size", 2048)
	layers, err3 := cfgInt(cfg, "num_hidden_layers", 12)
	heads, err4 := cfgInt(cfg, "num_attention_heads", 8)
	pos, err5 := cfgInt(cfg, "max_position_embeddings", 77)
	vocab, err6 := cfgInt(cfg, "vocab_size", 49408)
	proj, err7 := cfgInt(cfg, "projection_dim", 512)
	if err := firstErr(err1, err2, err3, err4, err5, err6, err7); err != nil {
		return err
	}
	if err := positive("hidden_size", hidden, "intermediate_size", inter, "num_attention_heads", heads,
		"max_position_embeddings", pos, "vocab_size", vocab, "projection_dim", proj); err != nil {
		return err
	}
	if hidden%heads != 0 {
		return fmt.Errorf("config: hidden_size %d is not a multiple of num_attention_heads %d", hidden, heads)
	}
	s.add("text_model.embeddings.token_embedding.weight", vocab, hidden)
	s.add("text_model.embeddings.position_embedding.weight", pos, hidden)
	for i := range layers {
		p := "text_model.encoder.layers." + strconv.FormatInt(i, 10) + "."
		for _, n := range []string{"q_proj", "k_proj", "v_proj", "out_proj"} {
			s.linear(p+"self_attn."+n, hidden, hidden)
		}
		s.norm(p+"layer_norm1", hidden)
		s.norm(p+"layer_norm2", hidden)
		s.linear(p+"mlp.fc1", inter, hidden)
		s.linear(p+"mlp.fc2", hidden, inter)
	}
	s.norm("text_model.final_layer_norm", hidden)
	if projection {
		s.add("text_projection.weight", proj, hidden)
	}
	return nil
}

func (s schema) t5(cfg map[string]any) error {
	dModel, err1 := cfgInt(cfg, "d_model", 512)
	dkv, err2 := cfgInt(cfg, "d_kv", 64)
	heads, err3 := cfgInt(cfg, "num_heads", 8)
	layers, err4 := cfgInt(cfg, "num_layers", 6)
	dff, err5 := cfgInt(cfg, "d_ff", 2048)
	vocab, err6 := cfgInt(cfg, "vocab_size", 32128)
	buckets, err7 := cfgInt(cfg, "relative_attention_num_buckets", 32)
	ffProj, err8 := cfgString(cfg, "feed_forward_proj", "relu")
	gated, err9 := cfgBool(cfg, "is_gated_act", len(ffProj) > 6 && ffProj[:6] == "gated-")
	if err := firstErr(err1, err2, err3, err4, err5, err6, err7, err8, err9); err != nil {
		return err
	}
	if err := positive("d_model", dModel, "d_kv", dkv, "num_heads", heads, "d_ff", dff, "vocab_size", vocab,
		"relative_attention_num_buckets", buckets); err != nil {
		return err
	}
	inner := heads * dkv
	s.add("shared.weight", vocab, dModel)
	for i := range layers {
		p := "encoder.block." + strconv.FormatInt(i, 10) + ".layer."
		for _, n := range []string{"q", "k", "v"} {
			s.add(p+"0.SelfAttention."+n+".weight", inner, dModel)
		}
		s.add(p+"0.SelfAttention.o.weight", dModel, inner)
		if i == 0 {
			s.add(p+"0.SelfAttention.relative_attention_bias.weight", buckets, heads)
		}
		s.add(p+"0.layer_norm.weight", dModel)
		if gated {
			s.add(p+"1.DenseReluDense.wi_0.weight", dff, dModel)
			s.add(p+"1.DenseReluDense.wi_1.weight", dff, dModel)
		} else {
			s.add(p+"1.DenseReluDense.wi.weight", dff, dModel)
		}
		s.add(p+"1.DenseReluDense.wo.weight", dModel, dff)
		s.add(p+"1.layer_norm.weight", dModel)
	}
	s.add("encoder.final_layer_norm.weight", dModel)
	return nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
