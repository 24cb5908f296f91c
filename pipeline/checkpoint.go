package pipeline

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/rflowrt/rflow/internal/compiler"
	"github.com/rflowrt/rflow/internal/compiler/arch"
	"github.com/rflowrt/rflow/internal/compiler/checkpoint"
	"github.com/rflowrt/rflow/internal/compiler/lora"
)

// CheckpointSource names a checkpoint as people download it: Model is a diffusers folder of
// safetensors, or a .safetensors file (BFL FLUX, SAI SD3/SD3.5 with or without bundled text encoders
// and VAE, ComfyUI-prefixed variants) or a sharded set's index; CLIPL, CLIPG, T5 and VAE are single
// files that supply or replace those components (stable-diffusion.cpp's --clip_l, --clip_g, --t5xxl,
// --vae).
type CheckpointSource struct {
	Model, CLIPL, CLIPG, T5, VAE string
	// Config is a diffusers repository folder whose configs (model_index.json, scheduler/,
	// <component>/config.json; no weights needed) replace those inferred from single files' shapes, as
	// diffusers' from_single_file(config=…) does. Released models need none; a model whose head counts,
	// rope axes or VAE norm groups differ from theirs does, since shapes cannot tell them.
	Config string
	// LoRAs are merged into the weights as they are compiled (kohya, diffusers/PEFT, BFL/ComfyUI or SAI
	// key formats; LoHa and LoKr too). The compiled-model cache keys on each file's identity and weight.
	LoRAs []LoRA
}

// LoRA is one LoRA file (Path) at a weight (Weight): W' = W + Weight·(α/r)·up·down, summed over the
// LoRAs.
type LoRA = compiler.LoRA

// AppliedLoRA is a LoRA merged into a compiled model (Model.LoRAs).
type AppliedLoRA struct {
	// Name is the file's base name without its extension (A1111's LoRA name).
	Name, Path string
	Weight     float64
	// Modules is how many modules it patched, in Components ("transformer", "clip_l", "clip_g", "t5").
	Modules    int
	Components []string
	// Hash is A1111's LoRA hash: the trainer's sshs_model_hash, else the SHA-256 of the file's tensor data
	// (everything after the safetensors header); "Lora hashes" shows its first 12 characters.
	Hash string
}

// CompileOptions configure how a checkpoint becomes the ONNX folder the pipeline runs.
type CompileOptions struct {
	// CacheDir is the root of compiled models; "" is $XDG_CACHE_HOME/rflow/compiled.
	CacheDir string
	// Weights is how the transformer's weights are stored: "fp32" (default), "fp16" (also the text
	// encoders' and the VAE's), or quantized "int8", "q8", "q4", "q4s" (WeightKinds); TextWeights the same for
	// the text encoders ("" → fp16 with fp16 weights, else fp32). The VAE is never quantized.
	Weights, TextWeights string
	// OnComponent, when set, is told each component as it is compiled (only on a cache miss).
	OnComponent func(name string)
}

// WeightKinds are the valid CompileOptions.Weights and TextWeights.
func WeightKinds() []string {
	var ks []string
	for _, k := range arch.WeightKinds() {
		ks = append(ks, string(k))
	}
	return ks
}

// MissingComponentError is OpenCheckpoint's error for a checkpoint without a component the pipeline
// needs; Components are "clip_l", "clip_g", "t5" or "vae" (CheckpointSource.CLIPL, CLIPG, T5, VAE supply them).
type MissingComponentError struct {
	Model      string
	Components []string
	err        error
}

func (e *MissingComponentError) Error() string {
	return fmt.Sprintf("checkpoint %s: %v", e.Model, e.err)
}

// IsCheckpoint reports whether path is a checkpoint (a safetensors file or index, or a diffusers folder
// of safetensors) rather than an ONNX export folder.
func IsCheckpoint(path string) bool { return compiler.IsCheckpoint(path) }

// OpenCheckpoint opens a checkpoint: it recognises every file, builds the ONNX graph of each component
// with the checkpoint's weights streamed into it — or finds that result in the compiled-model cache —
// and opens the compiled folder like an export. Compiled models skip ONNX Runtime's optimized-graph
// cache, which would hold a second full copy of the weights on disk.
func OpenCheckpoint(ctx context.Context, src CheckpointSource, o CompileOptions) (*Model, error) {
	c, err := openCheckpoint(src)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	root := o.CacheDir
	if root == "" {
		if root, err = compiler.CacheDir(); err != nil {
			return nil, err
		}
	}
	dir, _, err := compiler.Cached(ctx, c, root, compiler.Options{Weights: o.Weights, TextWeights: o.TextWeights, OnComponent: o.OnComponent})
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", src.Model, err)
	}
	m, err := Open(dir)
	if err != nil {
		return nil, err
	}
	m.Name = strings.TrimSuffix(filepath.Base(filepath.Clean(src.Model)), filepath.Ext(src.Model))
	m.Compiled = true
	for _, a := range c.LoRAs {
		h, err := lora.Hash(a.Path)
		if err != nil {
			return nil, err
		}
		m.LoRAs = append(m.LoRAs, AppliedLoRA{Name: a.Name, Path: a.Path, Weight: a.Weight, Modules: a.Modules,
			Components: a.Components, Hash: h})
	}
	return m, nil
}

// ConvertCheckpoint compiles a checkpoint into a standalone diffusers/Optimum ONNX folder at outDir (which
// must not exist) that any ONNX Runtime user can load. It is written under a temporary name and renamed
// when complete.
func ConvertCheckpoint(ctx context.Context, src CheckpointSource, outDir string, o CompileOptions) error {
	c, err := openCheckpoint(src)
	if err != nil {
		return err
	}
	defer c.Close()
	return compiler.Write(ctx, c, outDir, compiler.Options{Weights: o.Weights, TextWeights: o.TextWeights, OnComponent: o.OnComponent})
}

// CheckpointPart describes one component a checkpoint holds (for inspection).
type CheckpointPart struct {
	Role   string   `json:"role"`
	Class  string   `json:"class"`
	Format string   `json:"format"`
	File   string   `json:"file"`
	DType  string   `json:"dtype"`
	Sizes  string   `json:"sizes"`
	Params int64    `json:"params"`
	Unused []string `json:"unused,omitempty"`
}

// CheckpointReport is what InspectCheckpoint finds without compiling anything.
type CheckpointReport struct {
	Model   string           `json:"model"`
	Variant string           `json:"variant"`
	Parts   []CheckpointPart `json:"parts"`
	Notes   []string         `json:"notes,omitempty"`
}

// InspectCheckpoint reads a checkpoint's headers and reports the format of every file, the architecture
// and its sizes, and the tensors no component uses. An error says what is missing or not understood.
func InspectCheckpoint(src CheckpointSource) (CheckpointReport, error) {
	c, err := openCheckpoint(src)
	if err != nil {
		return CheckpointReport{Model: src.Model}, err
	}
	defer c.Close()
	rep := CheckpointReport{Model: src.Model, Variant: c.Variant, Notes: c.Notes}
	for _, p := range c.Describe() {
		rep.Parts = append(rep.Parts, CheckpointPart(p))
	}
	return rep, nil
}

// ErrConfigNeeded is wrapped by the error for a checkpoint whose shapes do not fit the released models'
// architecture: its head counts, rope axes or VAE norm groups (which shapes cannot tell) differ, and
// CheckpointSource.Config must name a folder with its configs.
var ErrConfigNeeded = errors.New("the checkpoint needs its configs")

// configNeededError adds ErrConfigNeeded to a shape mismatch found without a config folder.
type configNeededError struct{ err error }

func (e configNeededError) Error() string   { return "checkpoint: " + e.err.Error() }
func (e configNeededError) Unwrap() []error { return []error{e.err, ErrConfigNeeded} }

// openCheckpoint opens src, turning a missing component into a MissingComponentError.
func openCheckpoint(src CheckpointSource) (*compiler.Checkpoint, error) {
	c, err := compiler.Open(compiler.Source(src))
	var missing *compiler.MissingError
	if errors.As(err, &missing) {
		me := &MissingComponentError{Model: src.Model, err: err}
		for _, r := range missing.Roles {
			me.Components = append(me.Components, string(r))
		}
		return nil, me
	}
	if errors.Is(err, checkpoint.ErrMismatch) && src.Config == "" {
		return nil, configNeededError{err}
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return c, nil
}
