package testmodels

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sync"

	"github.com/rflowrt/rflow/internal/compiler/checkpoint"
	"github.com/rflowrt/rflow/internal/half"
	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/safetensors"
)

// WriteCheckpoint writes the model Write(dir, o) writes, as a diffusers checkpoint folder instead of an
// ONNX export: model_index.json, scheduler/ and the tokenizer folders as Write writes them, and per
// component its config.json (the same as Write's) and its weights as safetensors —
// diffusion_pytorch_model.safetensors for the diffusers classes (transformer, one vae/ folder holding
// the AutoencoderKL's encoder and decoder), model.safetensors for the transformers ones (text encoders).
// The tensors are those checkpoint.Expected lists for the component's class and config, with the values
// of the random weights Write's graphs get: F32, or BF16 with Options.BF16Weights (whose values Write
// also rounds to bf16, so both forms hold the same numbers). Each file is streamed one tensor at a time,
// so a large checkpoint never needs its weights in memory together.
func WriteCheckpoint(dir string, o Options) error {
	o, d, configs, err := writeFolderFiles(dir, o)
	if err != nil {
		return err
	}
	dtype := "F32"
	if o.BF16Weights {
		dtype = "BF16"
	}
	classes, err := indexClasses(dir)
	if err != nil {
		return err
	}
	var parts []component
	for _, c := range d.components(o.Kind) {
		switch c.dir {
		case "vae_encoder":
			continue // the same AutoencoderKL as vae_decoder
		case "vae_decoder":
			c.dir = "vae"
		}
		parts = append(parts, c)
	}
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, c := range parts {
		wg.Go(func() { errs[i] = writeCheckpointComponent(dir, configs, o.Kind.repo(), c, classes[c.dir], dtype) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// indexClasses reads model_index.json's [library, class] pairs: component folder → class.
func indexClasses(dir string) (map[string][2]string, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "model_index.json"))
	if err != nil {
		return nil, err
	}
	var index map[string]any
	if err := json.Unmarshal(raw, &index); err != nil {
		return nil, fmt.Errorf("testmodels: model_index.json: %w", err)
	}
	out := map[string][2]string{}
	for k, v := range index {
		if pair, ok := v.([]any); ok && len(pair) == 2 {
			lib, _ := pair[0].(string)
			class, _ := pair[1].(string)
			out[k] = [2]string{lib, class}
		}
	}
	return out, nil
}

// writeCheckpointComponent writes one component folder: config.json and the weights of class
// ([library, class] from model_index.json).
func writeCheckpointComponent(dir string, configs fs.FS, repo string, c component, class [2]string, dtype string) error {
	raw, err := fs.ReadFile(configs, path.Join(repo, c.config))
	if err != nil {
		return err
	}
	if raw, err = patchJSON(raw, c.set); err != nil {
		return fmt.Errorf("testmodels: %s config: %w", c.dir, err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return fmt.Errorf("testmodels: %s config: %w", c.dir, err)
	}
	file := "model.safetensors" // transformers' name
	if class[0] == "diffusers" {
		file = "diffusion_pytorch_model.safetensors"
	}
	shapes, err := checkpoint.Expected(class[1], cfg)
	if err != nil {
		return fmt.Errorf("testmodels: %s: %w", c.dir, err)
	}
	if err := resetDir(dir, c.dir); err != nil {
		return err
	}
	if err := writeFile(dir, c.dir+"/config.json", raw); err != nil {
		return err
	}
	buffers, err := computedBuffers(c)
	if err != nil {
		return err
	}
	entries := make([]safetensors.Entry, 0, len(shapes))
	for name, shape := range shapes {
		dt := dtype
		if _, ok := buffers[name]; ok {
			dt = "F32"
		}
		entries = append(entries, safetensors.Entry{Name: name, DType: dt, Shape: shape})
	}
	meta := map[string]string{"format": "pt"}
	return safetensors.WriteStream(filepath.Join(dir, c.dir, file), entries, meta, func(e safetensors.Entry) ([]byte, error) {
		if b, ok := buffers[e.Name]; ok {
			return b, nil
		}
		v, err := c.weights.Float32(e.Name, e.Shape)
		if err != nil {
			return nil, err
		}
		return encodeWeights(v, dtype), nil
	})
}

// bufferNames are state-dict entries that are not random parameters but buffers the builders compute
// for random weights (SD3's sincos position table): a checkpoint holds their computed values, as
// diffusers saves them.
var bufferNames = []string{"pos_embed.pos_embed"}

// computedBuffers are the bytes (float32, kept F32 whatever the weights' dtype, so they stay exact)
// of the component graph's initializers named in bufferNames, taken from the graph Write builds.
func computedBuffers(c component) (map[string][]byte, error) {
	m, err := c.build() // builds the graph only: parameters stream when written, never here
	if err != nil {
		return nil, fmt.Errorf("testmodels: build %s: %w", c.dir, err)
	}
	out := map[string][]byte{}
	for _, t := range m.Graph.Initializers {
		if !slices.Contains(bufferNames, t.Name) {
			continue
		}
		if t.Type != onnx.Float {
			return nil, fmt.Errorf("testmodels: %s: buffer %s is %v, want float32", c.dir, t.Name, t.Type)
		}
		if t.Raw != nil {
			out[t.Name] = t.Raw
			continue
		}
		var b bytes.Buffer
		if err := t.Source.WriteRaw(&b); err != nil {
			return nil, fmt.Errorf("testmodels: %s: %s: %w", c.dir, t.Name, err)
		}
		out[t.Name] = b.Bytes()
	}
	return out, nil
}

// encodeWeights stores v as little-endian F32 or BF16 (v is bf16-exact then, so nothing is rounded).
func encodeWeights(v []float32, dtype string) []byte {
	if dtype == "BF16" {
		b := make([]byte, 2*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint16(b[2*i:], half.BFloat16FromFloat32(x))
		}
		return b
	}
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}
