package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/rflowrt/rflow/assets"
	"github.com/rflowrt/rflow/pipeline"
)

// checkpointFlags are the options that name a checkpoint's separate files (stable-diffusion.cpp's
// meaning) and how it is compiled; txt2img, batch, compare and inspect share them.
type checkpointFlags struct {
	clipL, clipG, t5xxl, vae, config string
	weights, teWeights               weightKind
	loras                            loraFlag // --lora, then the prompt's <lora:NAME:WEIGHT> tags
	loraDir                          string
}

func (c *checkpointFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.clipL, "clip-l", "", "CLIP-L text encoder `FILE` (.safetensors) for a checkpoint given with -m")
	fs.StringVar(&c.clipG, "clip-g", "", "CLIP-G text encoder `FILE` (.safetensors; SD3/SD3.5)")
	fs.StringVar(&c.t5xxl, "t5xxl", "", "T5-XXL text encoder `FILE` (.safetensors)")
	fs.StringVar(&c.vae, "vae", "", "VAE `FILE` (.safetensors: ae.safetensors, LDM or diffusers keys)")
	c.weights = "fp32"
	fs.Var(&c.weights, "weights", "how a compiled checkpoint stores the transformer's weights: fp32, fp16 (GPU providers; also the text encoders and VAE), int8, q8, q4 or q4s (quantized Linear layers, smaller and for int8 faster on CPU; q4 keeps its most sensitive layers at 8 bits, q4s none: FLUX.1-dev in 6.9 GB)")
	fs.Var(&c.teWeights, "te-weights", "the same for the text encoders: fp32, fp16, int8, q8, q4 or q4s (default fp16 with --weights fp16, else fp32)")
	fs.Var(&c.loras, "lora", "merge a LoRA `FILE[:WEIGHT]` (.safetensors: kohya, diffusers/PEFT, BFL/ComfyUI, XLabs or SAI keys; weight default 1) into the model's weights (checkpoints, and ONNX exports that keep parameter names); repeatable")
	fs.StringVar(&c.loraDir, "lora-dir", os.Getenv("RFLOW_LORA_DIR"), "`DIR` where a prompt's <lora:NAME:WEIGHT> finds NAME.safetensors (default $RFLOW_LORA_DIR)")
	fs.StringVar(&c.config, "model-config", os.Getenv("RFLOW_MODEL_CONFIG"), "diffusers repository `DIR` whose config.json files replace the configs inferred from single files (for models whose head counts, rope axes or norm groups differ from the released ones; default $RFLOW_MODEL_CONFIG)")
}

func (c checkpointFlags) anyFile() string {
	var lora string
	if len(c.loras) > 0 {
		lora = c.loras[0].Path
	}
	for _, f := range []struct{ flag, v string }{{"--clip-l", c.clipL}, {"--clip-g", c.clipG}, {"--t5xxl", c.t5xxl}, {"--vae", c.vae}, {"--lora", lora}} {
		if f.v != "" {
			return f.flag
		}
	}
	return ""
}

// openAnyModel opens what -m names: an embedded demo, an ONNX export folder, or a checkpoint (diffusers
// folder of safetensors or single files), compiled on first use into the compiled-model cache.
func openAnyModel(ctx context.Context, name string, c checkpointFlags, errOut io.Writer, quiet bool) (*pipeline.Model, error) {
	if name == "" {
		name = assets.Default
	}
	for _, d := range assets.Names() {
		if name == d {
			if f := c.anyFile(); f != "" {
				return nil, fmt.Errorf("%s applies to checkpoints, not to the demo model %s", f, d)
			}
			return pipeline.OpenDemo(d)
		}
	}
	if !pipeline.IsCheckpoint(name) {
		if f := c.anyFile(); f != "" && f != "--lora" {
			return nil, fmt.Errorf("%s applies to checkpoints (.safetensors files or diffusers folders), not to the ONNX export %s", f, name)
		}
		if len(c.loras) > 0 {
			m, err := pipeline.OpenExportWithLoRAs(name, c.loras, "")
			if errors.Is(err, pipeline.ErrExportLoRA) {
				err = fmt.Errorf("%w; give -m the checkpoint it was exported from (a diffusers folder or .safetensors file)", err)
			}
			reportLoRAs(errOut, m, quiet)
			return m, err
		}
		return pipeline.Open(name)
	}
	o := pipeline.CompileOptions{Weights: string(c.weights), TextWeights: string(c.teWeights)}
	if !quiet {
		o.OnComponent = func(comp string) { fmt.Fprintf(errOut, "rflow: compiling %s of %s\n", comp, name) }
	}
	m, err := pipeline.OpenCheckpoint(ctx, c.source(name), o)
	reportLoRAs(errOut, m, quiet)
	return m, withFlagAdvice(err)
}

// weightKind is a --weights/--te-weights value, checked when the flag is parsed.
type weightKind string

func (w *weightKind) String() string { return string(*w) }
func (w *weightKind) Type() string   { return "kind" }
func (w *weightKind) Set(s string) error {
	if !slices.Contains(pipeline.WeightKinds(), s) {
		return fmt.Errorf("unknown weight kind %q (valid: %s)", s, strings.Join(pipeline.WeightKinds(), ", "))
	}
	*w = weightKind(s)
	return nil
}

func (c checkpointFlags) source(model string) pipeline.CheckpointSource {
	return pipeline.CheckpointSource{Model: model, CLIPL: c.clipL, CLIPG: c.clipG, T5: c.t5xxl, VAE: c.vae, Config: c.config,
		LoRAs: c.loras}
}

// withFlagAdvice names the flags that supply what a checkpoint lacks: components, or its configs.
func withFlagAdvice(err error) error {
	if errors.Is(err, pipeline.ErrConfigNeeded) {
		return fmt.Errorf("%w; if this model's head counts, rope axes or VAE norm groups differ from the released models', give --model-config DIR (a diffusers folder with its config.json files)", err)
	}
	var missing *pipeline.MissingComponentError
	if !errors.As(err, &missing) {
		return err
	}
	flags := map[string]string{"clip_l": "--clip-l", "clip_g": "--clip-g", "t5": "--t5xxl", "vae": "--vae"}
	var give []string
	for _, comp := range missing.Components {
		give = append(give, flags[comp]+" FILE")
	}
	return fmt.Errorf("%w: give %s", err, strings.Join(give, " and "))
}

// inspectCheckpoint prints what a checkpoint holds: each component's file, recognised format,
// architecture and sizes, and the tensors no component uses. Nothing is compiled.
func inspectCheckpoint(out io.Writer, src pipeline.CheckpointSource, asJSON bool) error {
	rep, err := pipeline.InspectCheckpoint(src)
	if err != nil {
		return withFlagAdvice(err)
	}
	if asJSON {
		return json.NewEncoder(out).Encode(rep)
	}
	fmt.Fprintf(out, "checkpoint %s\nmodel      %s\n\ncomponents:\n", src.Model, rep.Variant)
	for _, p := range rep.Parts {
		fmt.Fprintf(out, "  %-12s %s (%s, %s, %.1fM parameters)\n", p.Role, p.Class, p.Format, p.DType, float64(p.Params)/1e6)
		fmt.Fprintf(out, "  %-12s %s\n  %-12s %s\n", "", p.Sizes, "", p.File)
		if len(p.Unused) > 0 {
			shown := p.Unused
			if len(shown) > 8 {
				shown = shown[:8]
			}
			fmt.Fprintf(out, "  %-12s %d tensors not used: %s", "", len(p.Unused), strings.Join(shown, ", "))
			if len(p.Unused) > len(shown) {
				fmt.Fprint(out, ", …")
			}
			fmt.Fprintln(out)
		}
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(out, "note: %s\n", n)
	}
	return nil
}
