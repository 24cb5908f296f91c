package pipeline

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/rflowrt/rflow/internal/ort"
)

// ONNX layouts found in the wild besides Optimum's (turn2-findings.md §5), as Inspect names them.
const (
	// LayoutOptimum is the diffusers/Optimum export folder (model_index.json, one folder per component).
	LayoutOptimum = "optimum"
	// LayoutOnnxStack is TensorStack/OnnxStack's: the diffusers layout with the transformer in unet/ or
	// weights in model.onnx.data.
	LayoutOnnxStack = "onnxstack"
	// LayoutAMDIO32 and LayoutAMDIO16 are AMD's *_amdgpu repositories: <name>_io32/ and <name>_io16/
	// subfolders, each a diffusers layout (float32 or float16 inputs and outputs); rflow takes _io32
	// when it is there (float32 I/O runs on every provider), else _io16.
	LayoutAMDIO32 = "amd-io32"
	LayoutAMDIO16 = "amd-io16"
	// LayoutTensorRT is a transformer exported for NVIDIA's TensorRT demos inside a diffusers folder:
	// Stability's SD3.5 *-tensorrt graphs (a block_controlnet_hidden_states input rflow fills with
	// zeros, the output named latent) or the SD3 MMDiT demo's (sample, sigma, c_crossattn, y → latent).
	LayoutTensorRT = "tensorrt"
	// LayoutOpt is the *.opt/ folder set of BFL's FLUX.1-*-onnx and Stability's SD3.5-*-tensorrt
	// repositories (clip.opt/, t5.opt/, transformer.opt/<precision>/, vae.opt/), read through an
	// overlay folder that adds the released model's index, scheduler, tokenizers and VAE factors
	// (optOverlay); its encoders' text_embeddings/pooled_embeddings outputs are textenc's.
	LayoutOpt = "tensorrt-opt"
)

// controlnetResidual is the SD3.5 TensorRT transformer's ControlNet input, fed zeros (no ControlNet).
const controlnetResidual = "block_controlnet_hidden_states"

// resolveLayoutDir finds the diffusers folder inside an AMD repository: dir itself when it has a
// model_index.json, else its *_io32/ (or *_io16/) subfolder that has one. It returns the folder to
// read, the layout it implies ("" for dir itself) and what was picked.
func resolveLayoutDir(dir string) (string, string, string) {
	if _, err := os.Stat(filepath.Join(dir, "model_index.json")); !errors.Is(err, fs.ErrNotExist) {
		return dir, "", ""
	}
	if opt := optFolders(dir); len(opt) > 0 { // a TensorRT-demo *.opt/ set, read through an overlay folder
		if overlay, note, err := optOverlay(dir, opt); err == nil {
			return overlay, LayoutOpt, note
		}
		return dir, "", "" // scan reports why (layoutOptProblem)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return dir, "", ""
	}
	var io32, io16 []string
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(dir, e.Name(), "model_index.json")); err != nil {
			continue
		}
		switch {
		case strings.HasSuffix(e.Name(), "_io32"):
			io32 = append(io32, e.Name())
		case strings.HasSuffix(e.Name(), "_io16"):
			io16 = append(io16, e.Name())
		}
	}
	sort.Strings(io32)
	sort.Strings(io16)
	switch {
	case len(io32) > 0:
		return filepath.Join(dir, io32[0]), LayoutAMDIO32, fmt.Sprintf("AMD layout: using %s/ (float32 inputs and outputs)", io32[0])
	case len(io16) > 0:
		return filepath.Join(dir, io16[0]), LayoutAMDIO16, fmt.Sprintf("AMD layout: using %s/ (float16 inputs and outputs)", io16[0])
	}
	return dir, "", ""
}

// optFolders lists dir's *.opt/ subfolders (the TensorRT-demo layout), sorted.
func optFolders(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var opt []string
	for _, e := range entries {
		if e.IsDir() && strings.HasSuffix(e.Name(), ".opt") {
			opt = append(opt, e.Name())
		}
	}
	return opt
}

// layoutOptProblem is the report's line for a *.opt/ folder set rflow could not read.
func layoutOptProblem(dir string, opt []string) string {
	_, _, err := optOverlay(dir, opt)
	return fmt.Sprintf("a TensorRT-demo layout (%s) that rflow cannot read: %v; use the model's diffusers ONNX export, "+
		"or its checkpoint (rflow compiles it)", strings.Join(opt, ", "), err)
}

// detectLayout names the layout of a scanned folder (after its components are read).
func (s *scanner) detectLayout(resolved string) string {
	if resolved != "" {
		return resolved
	}
	if tr := s.m.Components[compTransformer]; tr != nil {
		if _, ok := tr.Input(controlnetResidual); ok {
			return LayoutTensorRT
		}
		if s.m.Transformer.Output == "latent" || s.m.Transformer.Timestep == "sigma" {
			return LayoutTensorRT
		}
		if filepath.Base(tr.Dir) == "unet" {
			return LayoutOnnxStack
		}
	}
	for _, c := range s.rep.Components {
		if slices.ContainsFunc(c.ExternalData, func(p string) bool { return filepath.Base(p) == "model.onnx.data" }) {
			return LayoutOnnxStack
		}
	}
	return LayoutOptimum
}

// zeroResidual allocates the ControlNet residual input of an SD3.5 TensorRT transformer, all zeros (no
// ControlNet: diffusers passes None). Its declared fixed dimensions are kept; the unknown ones are, in
// order, the batch rows and the image tokens (h/2)(w/2).
func (d *denoiser) zeroResidual(name string, rows int64) (*ort.Tensor, error) {
	info, _ := d.sess.Input(name)
	fill := []int64{rows, int64(d.h / 2 * d.w / 2)}
	shape := make([]int64, len(info.Shape))
	for i, v := range info.Shape {
		if v > 0 {
			shape[i] = v
			continue
		}
		if len(fill) == 0 {
			return nil, fmt.Errorf("pipeline: transformer input %s: cannot size %v (more than two unknown dimensions)", name, info.Shape)
		}
		shape[i], fill = fill[0], fill[1:]
	}
	return d.input(name, shape...) // new tensors are zero
}
