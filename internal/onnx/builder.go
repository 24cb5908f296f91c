package onnx

import (
	"fmt"
	"slices"
)

// Builder assembles a graph in code. Methods never panic: the first problem
// (a duplicate name, a bad argument) is kept and returned by Err, Graph, and
// Marshal of the built model, so building code can chain calls freely.
type Builder struct {
	g       Graph
	opset   int64
	domains []OpsetImport // non-default domains, in first-use order
	values  map[string]bool
	outputs map[string]bool
	seq     int
	err     error
}

// NewBuilder starts a graph named name that uses the given ai.onnx opset.
func NewBuilder(name string, opset int64) *Builder {
	b := &Builder{
		g:       Graph{Name: name},
		opset:   opset,
		values:  map[string]bool{},
		outputs: map[string]bool{},
	}
	if opset < 1 {
		b.fail("opset %d, want >= 1", opset)
	}
	return b
}

func (b *Builder) fail(format string, args ...any) {
	if b.err == nil {
		b.err = fmt.Errorf("builder: "+format, args...)
	}
}

// define records a new value name, failing on duplicates because ONNX
// values must be defined exactly once.
func (b *Builder) define(name, what string) {
	if name == "" {
		b.fail("%s with empty name", what)
		return
	}
	if b.values[name] {
		b.fail("duplicate value name %q (%s)", name, what)
		return
	}
	b.values[name] = true
}

// unique returns prefix_N for the next N not yet used as a value name.
func (b *Builder) unique(prefix string) string {
	for {
		b.seq++
		name := fmt.Sprintf("%s_%d", prefix, b.seq)
		if !b.values[name] {
			return name
		}
	}
}

// Input declares a graph input and returns its name.
func (b *Builder) Input(name string, t DataType, dims ...Dim) string {
	b.define(name, "input")
	b.g.Inputs = append(b.g.Inputs, ValueInfo{Name: name, Type: t, Dims: slices.Clone(dims)})
	return name
}

// Initializer adds a constant tensor and returns its name, generating a
// unique one when t.Name is empty.
func (b *Builder) Initializer(t Tensor) string {
	if t.Name == "" {
		t.Name = b.unique("init")
	}
	b.define(t.Name, "initializer")
	b.g.Initializers = append(b.g.Initializers, t)
	return t.Name
}

// Constant is Initializer: constants are stored as initializers, which every
// runtime folds and which can move to external data.
func (b *Builder) Constant(t Tensor) string { return b.Initializer(t) }

// Op adds a single-output ai.onnx node and returns its output name.
func (b *Builder) Op(opType string, inputs []string, attrs ...Attribute) string {
	return b.OpDomain("", opType, inputs, 1, attrs...)[0]
}

// OpN adds an ai.onnx node with nOut outputs and returns their names.
func (b *Builder) OpN(opType string, inputs []string, nOut int, attrs ...Attribute) []string {
	return b.OpDomain("", opType, inputs, nOut, attrs...)
}

// OpDomain adds a node from any domain (e.g. "com.microsoft") and returns its
// nOut output names. A non-default domain gets an opset import of version 1
// if it has none yet. With nOut < 1 it records an error and returns one
// placeholder name so callers can keep chaining.
func (b *Builder) OpDomain(domain, opType string, inputs []string, nOut int, attrs ...Attribute) []string {
	if opType == "" {
		b.fail("node with empty op type")
		opType = "Op"
	}
	if nOut < 1 {
		b.fail("%s: %d outputs, want >= 1", opType, nOut)
		nOut = 1
	}
	if domain != "" && domain != "ai.onnx" && !slices.ContainsFunc(b.domains, func(o OpsetImport) bool { return o.Domain == domain }) {
		b.domains = append(b.domains, OpsetImport{Domain: domain, Version: 1})
	}
	var base string
	outs := make([]string, nOut)
	for {
		base = b.unique(opType)
		if nOut == 1 {
			outs[0] = base
			break
		}
		free := true
		for i := range outs {
			outs[i] = fmt.Sprintf("%s_%d", base, i)
			free = free && !b.values[outs[i]]
		}
		if free {
			break
		}
	}
	for _, o := range outs {
		b.define(o, opType+" output")
	}
	b.g.Nodes = append(b.g.Nodes, Node{
		Name:    base,
		OpType:  opType,
		Domain:  domain,
		Inputs:  slices.Clone(inputs),
		Outputs: outs,
		Attrs:   slices.Clone(attrs),
	})
	return slices.Clone(outs)
}

// Output declares graph output name with the given type and shape. If value
// differs from name an Identity node renames it, so outputs can have stable
// public names independent of the generated ones.
func (b *Builder) Output(value, name string, t DataType, dims ...Dim) {
	if value == "" || name == "" {
		b.fail("output %q of value %q: empty name", name, value)
		return
	}
	if b.outputs[name] {
		b.fail("duplicate output %q", name)
		return
	}
	b.outputs[name] = true
	if value != name {
		b.define(name, "output")
		b.g.Nodes = append(b.g.Nodes, Node{
			Name:    b.unique("Identity"),
			OpType:  "Identity",
			Inputs:  []string{value},
			Outputs: []string{name},
		})
	}
	b.g.Outputs = append(b.g.Outputs, ValueInfo{Name: name, Type: t, Dims: slices.Clone(dims)})
}

// Err returns the first error recorded while building.
func (b *Builder) Err() error { return b.err }

// Graph returns a copy of the graph built so far, for use as a subgraph
// (AttrGraph), together with the first recorded error.
func (b *Builder) Graph() (*Graph, error) {
	g := b.g
	g.Nodes = slices.Clone(g.Nodes)
	g.Initializers = slices.Clone(g.Initializers)
	g.Inputs = slices.Clone(g.Inputs)
	g.Outputs = slices.Clone(g.Outputs)
	g.ValueInfo = slices.Clone(g.ValueInfo)
	return &g, b.err
}

// Model returns the model: IR version from the opset table, ai.onnx opset
// import plus one per extra domain, producer "rflow". A recorded builder
// error is returned by the model's Marshal.
func (b *Builder) Model() *Model {
	g, err := b.Graph()
	opsets := append([]OpsetImport{{Domain: "", Version: b.opset}}, b.domains...)
	return &Model{
		IRVersion:    IRVersionForOpset(b.opset),
		ProducerName: "rflow",
		Opsets:       opsets,
		Graph:        *g,
		err:          err,
	}
}
