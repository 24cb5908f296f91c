package compiler

import (
	"fmt"
	"slices"

	"github.com/rflowrt/rflow/internal/compiler/checkpoint"
	"github.com/rflowrt/rflow/internal/safetensors"
)

// tensorFile is an open checkpoint file or sharded set: tensor names, dtypes and shapes, and raw bytes
// as views into the (memory-mapped) file.
type tensorFile interface {
	Names() []string
	Meta(name string) (checkpoint.TensorMeta, bool)
	Raw(name string) ([]byte, error)
	Release(name string)
	Fingerprint() string
	Close() error
}

// recipeWeights is the arch.Weights of one component: canonical names resolved through recipes into a
// source file, converted to float32 one tensor at a time.
type recipeWeights struct {
	src     tensorFile
	recipes map[string]checkpoint.Recipe
}

// Shape implements arch.Weights.
func (w recipeWeights) Shape(name string) ([]int64, bool) {
	r, ok := w.recipes[name]
	return r.Shape, ok
}

// FreshFloat32 tells a wrapper (a LoRA merge) that Float32 returns a new slice it may change in place.
func (w recipeWeights) FreshFloat32() bool { return true }

// Float32 implements arch.Weights.
func (w recipeWeights) Float32(name string, shape []int64) ([]float32, error) {
	r, ok := w.recipes[name]
	if !ok {
		return nil, fmt.Errorf("no tensor %q in the checkpoint", name)
	}
	if !slices.Equal(r.Shape, shape) {
		return nil, fmt.Errorf("tensor %q: shape %v, want %v", name, r.Shape, shape)
	}
	if len(r.Pieces) == 1 && r.Pieces[0].Whole() && !r.Transpose && r.Fill == "" {
		// A plain rename: decode straight from the mapped file, no assembled copy.
		raw, err := w.src.Raw(r.Pieces[0].Tensor)
		if err != nil {
			return nil, err
		}
		v, err := safetensors.DecodeFloat32(raw, r.DType)
		w.src.Release(r.Pieces[0].Tensor)
		return v, err
	}
	raw, err := r.Assemble(w.rows)
	for _, p := range r.Pieces {
		w.src.Release(p.Tensor) // keep resident memory near one tensor, not the mapped file
	}
	if err != nil {
		return nil, err
	}
	return safetensors.DecodeFloat32(raw, r.DType)
}

// rows is the recipes' RowReader: rows [start, end) of dim 0 of a source tensor, as a view.
func (w recipeWeights) rows(tensor string, start, end int64) ([]byte, error) {
	meta, ok := w.src.Meta(tensor)
	if !ok {
		return nil, fmt.Errorf("no tensor %q", tensor)
	}
	raw, err := w.src.Raw(tensor)
	if err != nil {
		return nil, err
	}
	if start == 0 && end == -1 {
		return raw, nil
	}
	if len(meta.Shape) == 0 || meta.Shape[0] == 0 {
		return nil, fmt.Errorf("tensor %q of shape %v has no rows to split", tensor, meta.Shape)
	}
	rowBytes := int64(len(raw)) / meta.Shape[0]
	if end == -1 {
		end = meta.Shape[0]
	}
	if start < 0 || start > end || end > meta.Shape[0] {
		return nil, fmt.Errorf("rows [%d,%d) of tensor %q with %d rows", start, end, tensor, meta.Shape[0])
	}
	return raw[start*rowBytes : end*rowBytes], nil
}
