package compiler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rflowrt/rflow/internal/compiler/arch"
	"github.com/rflowrt/rflow/internal/compiler/checkpoint"
	"github.com/rflowrt/rflow/internal/linkdir"
	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/tokenizerdata"
)

// GraphVersion names the builders' graphs; it is part of every cache key, so a change to any builder
// that changes its graph must change it (compiled models are then rebuilt, never reused stale).
const GraphVersion = "rflow-graphs-3"

// Options configure a compilation.
type Options struct {
	// Weights is how the transformer stores its weights: "fp32" (the default), "fp16" (half the disk;
	// the graphs compute in float32, so on the CPU ONNX Runtime widens them when it loads the model), or
	// quantized: "int8", "q8" or "q4" (arch.WeightKind: the Linear layers of the repeated blocks as
	// integers, the other parameters as fp16). With "fp16" the VAE is stored as fp16 too; otherwise it stays float32
	// (its convolutions are not MatMuls).
	Weights string
	// TextWeights is the same for the text encoders; "" is "fp16" when Weights is "fp16", else "fp32".
	TextWeights string
	// OnComponent, when set, is told each component before it is built and written.
	OnComponent func(name string)
	// donors are compiled components to link instead of building (componentKey → folder; Cached sets it).
	donors map[string]string
}

// kinds are the weight kinds of the transformer, the text encoders and the VAE.
type kinds struct{ transformer, text, vae arch.WeightKind }

func (o Options) kinds() (kinds, error) {
	t, err := arch.ParseWeightKind(o.Weights)
	if err != nil {
		return kinds{}, fmt.Errorf("transformer weights: %w", err)
	}
	k := kinds{transformer: t, text: arch.FP32, vae: arch.FP32}
	if t == arch.FP16 {
		k.text, k.vae = arch.FP16, arch.FP16
	}
	if o.TextWeights != "" {
		if k.text, err = arch.ParseWeightKind(o.TextWeights); err != nil {
			return kinds{}, fmt.Errorf("text encoder weights: %w", err)
		}
	}
	return k, nil
}

// weightsFor wraps a component's weights for its kind: fp16 storage or quantized Linear layers.
func weightsFor(w arch.Weights, k arch.WeightKind) arch.Weights {
	switch k {
	case arch.FP16:
		return arch.StoredAs(w, onnx.Float16)
	case arch.Int8, arch.Q8, arch.Q4, arch.Q4S:
		// The parameters left unquantized (embedders, norms, biases, the output projection) are stored
		// as fp16: on the bench SD3 transformer that costs no measurable output SNR (q4: 18.9 dB
		// either way) and takes q4 from 0.28× to 0.25× of fp32's size.
		return arch.StoredAs(arch.Quantized(w, quantFor(k)), onnx.Float16)
	}
	return w
}

// quantFor is how the compiler quantizes a kind (its fields enter the cache key): arch.DefaultQuant,
// the measured recipe that rflow quantize uses for exports too (q4 keeps the modulation layers, the
// image attention and the image MLP's input projection at 8 bits: arch.Q4WideLayer).
func quantFor(k arch.WeightKind) arch.Quant { return arch.DefaultQuant(k) }

// quantRecipe names quantFor's choice of 8-bit layers in q4 for the cache keys: a new rule needs a new
// name, so that folders compiled under the old one are not reused.
const quantRecipe = "q4-wide:modulation+image-attention+image-mlp-in"

// component is one model folder of the output and how to build it.
type component struct {
	dir   string
	part  *Part
	build func(w arch.Weights, c arch.Config, io arch.IO) (*onnx.Model, error)
}

// layout lists the output folder's components for the checkpoint, in the Optimum layout the pipeline
// reads (text_encoder*, transformer, vae_decoder, vae_encoder).
func (c *Checkpoint) layout() []component {
	p := c.Parts
	var cs []component
	add := func(dir string, role checkpoint.Role, build func(arch.Weights, arch.Config, arch.IO) (*onnx.Model, error)) {
		if p[role] != nil {
			cs = append(cs, component{dir: dir, part: p[role], build: build})
		}
	}
	if c.Family == "flux" {
		add("text_encoder", checkpoint.RoleCLIPL, arch.CLIPText)
		add("text_encoder_2", checkpoint.RoleT5, arch.T5Encoder)
		add("transformer", checkpoint.RoleTransformer, arch.FluxTransformer)
	} else {
		add("text_encoder", checkpoint.RoleCLIPL, arch.CLIPText)
		add("text_encoder_2", checkpoint.RoleCLIPG, arch.CLIPText)
		add("text_encoder_3", checkpoint.RoleT5, arch.T5Encoder)
		add("transformer", checkpoint.RoleTransformer, arch.SD3Transformer)
	}
	add("vae_decoder", checkpoint.RoleVAE, arch.VAEDecoder)
	add("vae_encoder", checkpoint.RoleVAE, arch.VAEEncoder)
	return cs
}

// componentConfig is the config.json written beside a component's model: the checkpoint's, with the
// class the pipeline runs it as (FLUX's CLIP-L is a CLIPTextModel even when the file has a projection).
func (c *Checkpoint) componentConfig(comp component) arch.Config {
	cfg := arch.Config{}
	for k, v := range comp.part.Config {
		cfg[k] = v
	}
	switch comp.part.Role {
	case checkpoint.RoleCLIPL, checkpoint.RoleCLIPG:
		class := "CLIPTextModelWithProjection"
		if c.Family == "flux" {
			class = "CLIPTextModel"
		}
		cfg["architectures"] = []any{class}
	case checkpoint.RoleT5:
		cfg["architectures"] = []any{"T5EncoderModel"}
	default:
		cfg["_class_name"] = comp.part.Class
	}
	return cfg
}

// Write compiles the checkpoint into a diffusers/Optimum ONNX folder at dir, which must not exist. The
// folder is written under a temporary name beside dir and renamed when complete, so dir is either
// absent or whole. Weights stream from the checkpoint into each graph's external data one tensor at a
// time; ctx cancels between tensors.
func Write(ctx context.Context, c *Checkpoint, dir string, o Options) (err error) {
	ks, err := o.kinds()
	if err != nil {
		return err
	}
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("%s already exists", dir)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".partial-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp makes it private
		return err
	}
	if err := c.writeFolderFiles(tmp); err != nil {
		return err
	}
	keys := map[string]string{}
	for _, comp := range c.layout() {
		kind := ks.of(comp.part.Role)
		keys[comp.dir] = c.componentKey(comp, kind)
		if src, ok := o.donors[keys[comp.dir]]; ok {
			if linkComponent(src, filepath.Join(tmp, comp.dir)) == nil {
				continue
			}
			os.RemoveAll(filepath.Join(tmp, comp.dir)) // built below instead
		}
		if o.OnComponent != nil {
			o.OnComponent(comp.dir)
		}
		if err := c.writeComponent(ctx, tmp, comp, kind); err != nil {
			return fmt.Errorf("%s (%s): %w", comp.dir, comp.part.File, err)
		}
	}
	if err := writeManifest(tmp, keys); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

// of is the weight kind of a component.
func (k kinds) of(r checkpoint.Role) arch.WeightKind {
	switch r {
	case checkpoint.RoleTransformer:
		return k.transformer
	case checkpoint.RoleVAE:
		return k.vae
	}
	return k.text
}

func (c *Checkpoint) writeComponent(ctx context.Context, root string, comp component, kind arch.WeightKind) error {
	cfg := c.componentConfig(comp)
	w := ctxWeights{ctx: ctx, w: comp.part.Weights}
	m, err := comp.build(weightsFor(w, kind), cfg, arch.IO{})
	if err != nil {
		return err
	}
	dir := filepath.Join(root, comp.dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(dir, "config.json"), cfg); err != nil {
		return err
	}
	return m.WriteFile(filepath.Join(dir, "model.onnx"), onnx.WriteOptions{ExternalData: true, DataName: "model.onnx_data"})
}

// ctxWeights stops a conversion between tensors when ctx is done.
type ctxWeights struct {
	ctx context.Context
	w   arch.Weights
}

func (c ctxWeights) Shape(name string) ([]int64, bool) { return c.w.Shape(name) }

func (c ctxWeights) Float32(name string, shape []int64) ([]float32, error) {
	if err := c.ctx.Err(); err != nil {
		return nil, err
	}
	return c.w.Float32(name, shape)
}

// writeFolderFiles writes what the folder needs besides the models: model_index.json, the scheduler
// config and the tokenizer folders — the diffusers folder's own, or for single files the released
// models' (tokenizers embedded in rflow).
func (c *Checkpoint) writeFolderFiles(root string) error {
	if c.Folder != "" {
		for _, rel := range []string{"model_index.json", "scheduler/scheduler_config.json"} {
			if err := copyFile(filepath.Join(c.Folder, rel), filepath.Join(root, rel)); err != nil {
				return err
			}
		}
		return c.copyFolderTokenizers(root)
	}
	index, sched, toks := c.singleFileLayout()
	if err := writeJSONText(filepath.Join(root, "model_index.json"), index); err != nil {
		return err
	}
	if c.configDir != "" {
		if b, err := os.ReadFile(filepath.Join(c.configDir, "scheduler", "scheduler_config.json")); err == nil {
			sched = string(b)
		}
	}
	if err := writeJSONText(filepath.Join(root, "scheduler", "scheduler_config.json"), sched); err != nil {
		return err
	}
	for dir, kind := range toks {
		if err := tokenizerdata.WriteFolder(filepath.Join(root, dir), kind); err != nil {
			return err
		}
	}
	return nil
}

// copyFolderTokenizers copies the diffusers folder's tokenizer folders.
func (c *Checkpoint) copyFolderTokenizers(root string) error {
	for _, name := range []string{"tokenizer", "tokenizer_2", "tokenizer_3"} {
		src := filepath.Join(c.Folder, name)
		ents, err := os.ReadDir(src)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		for _, e := range ents {
			if e.Type().IsRegular() {
				if err := copyFile(filepath.Join(src, e.Name()), filepath.Join(root, name, e.Name())); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// The released models' model_index.json and scheduler configs (stabilityai/stable-diffusion-3-medium-
// diffusers, black-forest-labs/FLUX.1-dev and -schnell), for checkpoints that come as single files.
const (
	sd3Index = `{"_class_name": "StableDiffusion3Pipeline", "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
 "text_encoder": ["transformers", "CLIPTextModelWithProjection"], "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
 "text_encoder_3": %s, "tokenizer": ["transformers", "CLIPTokenizer"], "tokenizer_2": ["transformers", "CLIPTokenizer"],
 "tokenizer_3": %s, "transformer": ["diffusers", "SD3Transformer2DModel"], "vae": ["diffusers", "AutoencoderKL"]}`
	fluxIndex = `{"_class_name": "FluxPipeline", "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
 "text_encoder": ["transformers", "CLIPTextModel"], "text_encoder_2": ["transformers", "T5EncoderModel"],
 "tokenizer": ["transformers", "CLIPTokenizer"], "tokenizer_2": ["transformers", "T5TokenizerFast"],
 "transformer": ["diffusers", "FluxTransformer2DModel"], "vae": ["diffusers", "AutoencoderKL"]}`
	sd3Scheduler      = `{"_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": 1000, "shift": 3.0}`
	fluxDevScheduler  = `{"_class_name": "FlowMatchEulerDiscreteScheduler", "base_image_seq_len": 256, "base_shift": 0.5, "max_image_seq_len": 4096, "max_shift": 1.15, "num_train_timesteps": 1000, "shift": 3.0, "use_dynamic_shifting": true}`
	fluxSchnScheduler = `{"_class_name": "FlowMatchEulerDiscreteScheduler", "base_image_seq_len": 256, "base_shift": 0.5, "max_image_seq_len": 4096, "max_shift": 1.15, "num_train_timesteps": 1000, "shift": 1.0, "use_dynamic_shifting": false}`
)

func (c *Checkpoint) singleFileLayout() (index, sched string, toks map[string]tokenizerdata.Kind) {
	if c.Family == "flux" {
		sched, index = fluxSchnScheduler, fluxIndex
		if c.Variant == "flux-dev" || c.Variant == VariantFluxKontext {
			sched = fluxDevScheduler
		}
		if c.Variant == VariantFluxKontext { // FLUX.1-Kontext-dev's model_index.json: the same components
			index = fluxKontextIndex
		}
		return index, sched, map[string]tokenizerdata.Kind{"tokenizer": tokenizerdata.CLIPL, "tokenizer_2": tokenizerdata.T5Flux}
	}
	toks = map[string]tokenizerdata.Kind{"tokenizer": tokenizerdata.CLIPL, "tokenizer_2": tokenizerdata.CLIPG}
	t5, t5tok := `[null, null]`, `[null, null]`
	if c.Parts[checkpoint.RoleT5] != nil {
		t5, t5tok = `["transformers", "T5EncoderModel"]`, `["transformers", "T5TokenizerFast"]`
		toks["tokenizer_3"] = tokenizerdata.T5SD3
	}
	return fmt.Sprintf(sd3Index, t5, t5tok), sd3Scheduler, toks
}

// writeJSONText writes a JSON document given as text, re-indented as transformers writes configs.
func writeJSONText(path, text string) error {
	var v any
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		return fmt.Errorf("internal JSON for %s: %w", path, err)
	}
	return writeJSON(path, v)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// copyFile copies src to dst (which must not exist yet), making dst's folder first.
func copyFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return linkdir.CopyFile(src, dst)
}
