package vae

import (
	"fmt"
	"strings"

	"github.com/rflowrt/rflow/internal/compiler/arch"
	"github.com/rflowrt/rflow/internal/onnx"
)

// exportWeights reads an AutoencoderKL decoder's parameters, by their diffusers names, back from a
// vae_decoder export: rflow's compiled decoders keep the state-dict names (the upsamplers as folded
// "….weight.subpixel<a><b>" kernels), and torch's exporter keeps them for convolutions behind the
// wrapper's prefix ("m.decoder.conv_in.weight") but folds each GroupNorm's affine into unnamed
// constants of the Mul and Add nodes it names after the module ("/decoder/mid_block/resnets.0/norm1/Mul").
// It implements arch.Weights; payloads are read from the file when asked for.
type exportWeights struct {
	byName   map[string]*onnx.Tensor
	prefix   string // what the export puts before "decoder."
	nodes    []onnx.Node
	identity map[string]string // output → input of the Identity nodes
}

// newExportWeights indexes m's initializers; ok is false when m does not name its decoder's
// parameters (no "decoder.conv_in.weight").
func newExportWeights(m *onnx.Model) (*exportWeights, bool) {
	w := &exportWeights{byName: map[string]*onnx.Tensor{}, nodes: m.Graph.Nodes, identity: map[string]string{}}
	for _, n := range m.Graph.Nodes {
		if n.OpType == "Identity" && len(n.Inputs) == 1 && len(n.Outputs) == 1 {
			w.identity[n.Outputs[0]] = n.Inputs[0]
		}
	}
	found := false
	for i := range m.Graph.Initializers {
		t := &m.Graph.Initializers[i]
		w.byName[t.Name] = t
		if p, ok := strings.CutSuffix(t.Name, "decoder.conv_in.weight"); ok && !found {
			w.prefix, found = p, true
		}
	}
	return w, found
}

// found is where a parameter lives in the export.
type found struct {
	t          *onnx.Tensor
	transposed bool // the initializer is the parameter's transpose (2-D)
	anyShape   bool // only the count is known to match (a norm's [C, 1, 1] constant for [C])
}

// find locates the diffusers parameter name: by name, as rflow's transposed "….weight.T", or, in a
// torch export, as the constant operand of the node its module became (a norm's Mul or Add, a
// Linear's MatMul, which holds the weight transposed).
func (w *exportWeights) find(name string) (found, bool) {
	if t, ok := w.byName[w.prefix+name]; ok {
		return found{t: t}, true
	}
	if t, ok := w.byName[w.prefix+name+".T"]; ok && len(t.Dims) == 2 {
		return found{t: t, transposed: true}, true
	}
	module, param, _ := cutLast(name)
	scope := torchScope(module)
	switch param {
	case "weight":
		if t, ok := w.nodeConstant(scope, "Mul"); ok {
			return found{t: t, anyShape: true}, true
		}
		if t, ok := w.nodeConstant(scope, "MatMul"); ok && len(t.Dims) == 2 {
			return found{t: t, transposed: true}, true
		}
	case "bias":
		if t, ok := w.nodeConstant(scope, "Add"); ok {
			return found{t: t, anyShape: true}, true
		}
	}
	return found{}, false
}

// nodeConstant is the constant operand of the node op that torch's exporter names scope+"/"+op.
func (w *exportWeights) nodeConstant(scope, op string) (*onnx.Tensor, bool) {
	suffix := scope + "/" + op
	for _, n := range w.nodes {
		if n.OpType != op || !strings.HasSuffix(n.Name, suffix) {
			continue
		}
		for _, in := range n.Inputs {
			if t, ok := w.constant(in); ok {
				return t, true
			}
		}
	}
	return nil, false
}

// constant is the initializer behind value name, following the Identity nodes by which torch's
// exporter shares equal constants.
func (w *exportWeights) constant(name string) (*onnx.Tensor, bool) {
	for range len(w.nodes) + 1 {
		if t, ok := w.byName[name]; ok {
			return t, true
		}
		src, ok := w.identity[name]
		if !ok {
			return nil, false
		}
		name = src
	}
	return nil, false
}

// cutLast splits "a.b.c" into "a.b" and "c".
func cutLast(name string) (string, string, bool) {
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return "", name, false
	}
	return name[:i], name[i+1:], true
}

// torchScope is the node-name scope torch's exporter gives a module path: "decoder.up_blocks.3.resnets.0.norm1"
// → "/decoder/up_blocks.3/resnets.0/norm1" (a ModuleList index stays on its list's name).
func torchScope(module string) string {
	var b strings.Builder
	for i, part := range strings.Split(module, ".") {
		if i > 0 && part != "" && part[0] >= '0' && part[0] <= '9' {
			b.WriteString("." + part)
			continue
		}
		b.WriteString("/" + part)
	}
	return b.String()
}

// Shape implements arch.Weights.
func (w *exportWeights) Shape(name string) ([]int64, bool) {
	f, ok := w.find(name)
	switch {
	case !ok:
		return nil, false
	case f.transposed:
		return []int64{f.t.Dims[1], f.t.Dims[0]}, true
	case f.anyShape:
		return nil, true // Float32 checks the count
	}
	return f.t.Dims, true
}

// Float32 implements arch.Weights: the values of any float type as float32.
func (w *exportWeights) Float32(name string, shape []int64) ([]float32, error) {
	f, ok := w.find(name)
	if !ok {
		return nil, fmt.Errorf("vae decoder export: no parameter %s", name)
	}
	v, err := f.t.Float32s()
	if err != nil {
		return nil, fmt.Errorf("vae decoder export: %s: %w", name, err)
	}
	if f.transposed {
		v = arch.Transpose(v, int(f.t.Dims[0]), int(f.t.Dims[1]))
	}
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	if int64(len(v)) != n {
		return nil, fmt.Errorf("vae decoder export: %s has %d values, want %v", name, len(v), shape)
	}
	return v, nil
}
