package testmodels

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing/fstest"
)

// configSource gives the diffusers/transformers configs Write patches: the real ones from
// shared/model-configs (read from there, never copied into the repository) when Options.SharedDir or
// the module's neighbourhood has them, else builtinConfigs — minimal configs with the keys rflow reads.
// label names the source in cache keys.
func (o Options) configSource() (fsys fs.FS, label string, err error) {
	dir := ""
	if o.SharedDir != "" {
		dir = filepath.Join(filepath.Dir(o.SharedDir), "model-configs")
	} else if tok := findSharedTokenizers(); tok != "" {
		dir = filepath.Join(filepath.Dir(tok), "model-configs")
	}
	if dir == "" || missingConfigs(dir) != "" {
		if o.SharedDir != "" && dir != "" {
			return nil, "", fmt.Errorf("testmodels: shared configs %s: %s is missing", dir, missingConfigs(dir))
		}
		return builtinConfigs, "builtin", nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, "", err
	}
	return os.DirFS(abs), abs, nil
}

// missingConfigs returns the first config file Write reads that dir lacks, or "".
func missingConfigs(dir string) string {
	for p := range builtinConfigs {
		if st, err := os.Stat(filepath.Join(dir, filepath.FromSlash(p))); err != nil || !st.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

const (
	sd3Repo         = "stabilityai/stable-diffusion-3-medium-diffusers/"
	fluxDevRepo     = "black-forest-labs/FLUX.1-dev/"
	fluxSchnellRepo = "black-forest-labs/FLUX.1-schnell/"
)

// builtinConfigs stand in for shared/model-configs: the class names, fixed architecture keys, VAE
// factors and scheduler settings of the real configs (flow-sampling.md §3.1, §4.1); Write sets the
// size keys.
var builtinConfigs = func() fstest.MapFS {
	files := map[string]string{
		sd3Repo + "model_index.json":                `{"_class_name": "StableDiffusion3Pipeline", "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"], "text_encoder": ["transformers", "CLIPTextModelWithProjection"], "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"], "text_encoder_3": ["transformers", "T5EncoderModel"], "tokenizer": ["transformers", "CLIPTokenizer"], "tokenizer_2": ["transformers", "CLIPTokenizer"], "tokenizer_3": ["transformers", "T5TokenizerFast"], "transformer": ["diffusers", "SD3Transformer2DModel"], "vae": ["diffusers", "AutoencoderKL"]}`,
		sd3Repo + "scheduler/scheduler_config.json": `{"_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": 1000, "shift": 3.0}`,
		sd3Repo + "text_encoder/config.json":        clipConfigJSON("CLIPTextModelWithProjection"),
		sd3Repo + "text_encoder_2/config.json":      clipConfigJSON("CLIPTextModelWithProjection"),
		sd3Repo + "text_encoder_3/config.json":      t5ConfigJSON,
		sd3Repo + "transformer/config.json":         `{"_class_name": "SD3Transformer2DModel", "in_channels": 16, "out_channels": 16, "patch_size": 2}`,
		sd3Repo + "vae/config.json":                 vaeConfigJSON(1.5305, 0.0609),
	}
	for repo, sched := range map[string]string{
		fluxDevRepo:     `{"_class_name": "FlowMatchEulerDiscreteScheduler", "base_image_seq_len": 256, "base_shift": 0.5, "max_image_seq_len": 4096, "max_shift": 1.15, "num_train_timesteps": 1000, "shift": 3.0, "use_dynamic_shifting": true}`,
		fluxSchnellRepo: `{"_class_name": "FlowMatchEulerDiscreteScheduler", "base_image_seq_len": 256, "base_shift": 0.5, "max_image_seq_len": 4096, "max_shift": 1.15, "num_train_timesteps": 1000, "shift": 1.0, "use_dynamic_shifting": false}`,
	} {
		files[repo+"model_index.json"] = `{"_class_name": "FluxPipeline", "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"], "text_encoder": ["transformers", "CLIPTextModel"], "text_encoder_2": ["transformers", "T5EncoderModel"], "tokenizer": ["transformers", "CLIPTokenizer"], "tokenizer_2": ["transformers", "T5TokenizerFast"], "transformer": ["diffusers", "FluxTransformer2DModel"], "vae": ["diffusers", "AutoencoderKL"]}`
		files[repo+"scheduler/scheduler_config.json"] = sched
		files[repo+"text_encoder/config.json"] = clipConfigJSON("CLIPTextModel")
		files[repo+"text_encoder_2/config.json"] = t5ConfigJSON
		files[repo+"transformer/config.json"] = `{"_class_name": "FluxTransformer2DModel", "in_channels": 64, "patch_size": 1}`
		files[repo+"vae/config.json"] = vaeConfigJSON(0.3611, 0.1159)
	}
	m := fstest.MapFS{}
	for p, s := range files {
		m[p] = &fstest.MapFile{Data: []byte(s + "\n"), Mode: 0o444}
	}
	return m
}()

func clipConfigJSON(arch string) string {
	return `{"architectures": ["` + arch + `"], "bos_token_id": 0, "eos_token_id": 2, "layer_norm_eps": 1e-05, "model_type": "clip_text_model", "vocab_size": 49408}`
}

const t5ConfigJSON = `{"eos_token_id": 1, "is_gated_act": true, "layer_norm_epsilon": 1e-06, "model_type": "t5", "pad_token_id": 0, "relative_attention_num_buckets": 32, "vocab_size": 32128}`

func vaeConfigJSON(scale, shift float64) string {
	return fmt.Sprintf(`{"_class_name": "AutoencoderKL", "force_upcast": true, "in_channels": 3, "latent_channels": 16, "out_channels": 3, "scaling_factor": %v, "shift_factor": %v, "use_post_quant_conv": false, "use_quant_conv": false}`, scale, shift)
}
