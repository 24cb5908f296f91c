package onnx

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sort"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// maxProtoSize is the largest message protobuf parsers (and so ONNX Runtime)
// accept; bigger models must keep their weights in external data.
const maxProtoSize = math.MaxInt32

// externalAlign is the alignment of each tensor in the external data file, so
// runtimes can memory-map tensors with aligned pointers.
const externalAlign = 64

// maxGraphDepth bounds subgraph nesting so a cyclic *Graph cannot recurse
// forever.
const maxGraphDepth = 64

// Marshal encodes the model as ONNX protobuf bytes. The output is
// deterministic. The model is validated first and problems are reported as
// errors naming the offending graph element.
func (m *Model) Marshal() ([]byte, error) {
	b, _, err := m.marshal("", -1)
	return b, err
}

// MarshalExternal encodes the model with every initializer whose raw data is
// at least threshold bytes moved to a separate data file, because protobuf
// cannot hold messages over 2 GiB and mmap-friendly weights load faster.
// dataName is the data file's name relative to the model file; tensors are
// stored in it at 64-byte aligned offsets. A threshold <= 0 moves every
// non-empty initializer. Tensors inside node attributes stay inline.
func (m *Model) MarshalExternal(dataName string, threshold int) (model, data []byte, err error) {
	if err := checkDataName(dataName); err != nil {
		return nil, nil, fmt.Errorf("onnx: marshal: %w", err)
	}
	if threshold < 1 {
		threshold = 1
	}
	return m.marshal(dataName, threshold)
}

func checkDataName(name string) error {
	switch {
	case name == "":
		return errors.New("external data name is empty")
	case strings.ContainsAny(name, `/\`) || name == "." || name == "..":
		return fmt.Errorf("external data name %q must be a plain file name next to the model", name)
	}
	return nil
}

// marshal does the work for both entry points; threshold < 0 disables
// external data.
func (m *Model) marshal(dataName string, threshold int) ([]byte, []byte, error) {
	e := encoder{dataName: dataName, threshold: threshold}
	b, err := m.encode(&e)
	return b, e.data, err
}

// encode validates the model and encodes it with e.
func (m *Model) encode(e *encoder) ([]byte, error) {
	threshold := e.threshold
	if m == nil {
		return nil, errors.New("onnx: marshal: nil model")
	}
	if m.err != nil {
		return nil, fmt.Errorf("onnx: marshal: %w", m.err)
	}
	ir, err := m.validate()
	if err != nil {
		return nil, fmt.Errorf("onnx: marshal: %w", err)
	}
	if threshold < 0 {
		if n := inlineBytes(&m.Graph, 0); n > maxProtoSize {
			return nil, fmt.Errorf("onnx: marshal: tensors hold %d bytes, over the 2 GiB protobuf limit; use external data", n)
		}
	}
	b := e.model(nil, m, ir)
	if e.err != nil {
		return nil, fmt.Errorf("onnx: marshal: %w", e.err)
	}
	if len(b) > maxProtoSize {
		return nil, fmt.Errorf("onnx: marshal: model is %d bytes, over the 2 GiB protobuf limit; use external data", len(b))
	}
	return b, nil
}

// inlineBytes sums tensor payloads so an oversized model fails before
// allocating a buffer it could not use.
func inlineBytes(g *Graph, depth int) int64 {
	if depth > maxGraphDepth {
		return 0
	}
	var n int64
	for i := range g.Initializers {
		n += g.Initializers[i].RawSize()
	}
	for i := range g.Nodes {
		for _, a := range g.Nodes[i].Attrs {
			if a.T != nil {
				n += a.T.RawSize()
			}
			if a.G != nil {
				n += inlineBytes(a.G, depth+1)
			}
		}
	}
	return n
}

// validate checks the model and returns the IR version to write.
func (m *Model) validate() (int64, error) {
	if len(m.Opsets) == 0 {
		return 0, errors.New("model has no opset imports")
	}
	seen := map[string]bool{}
	defaultOpset := int64(-1)
	for _, o := range m.Opsets {
		d := o.Domain
		if d == "ai.onnx" {
			d = ""
		}
		if seen[d] {
			return 0, fmt.Errorf("duplicate opset import for domain %q", o.Domain)
		}
		seen[d] = true
		if o.Version < 1 {
			return 0, fmt.Errorf("opset import for domain %q has version %d, want >= 1", o.Domain, o.Version)
		}
		if d == "" {
			defaultOpset = o.Version
		}
	}
	ir := m.IRVersion
	switch {
	case ir < 0:
		return 0, fmt.Errorf("negative IR version %d", ir)
	case ir == 0 && defaultOpset < 0:
		return 0, errors.New("IR version is 0 and there is no default-domain opset import to derive it from")
	case ir == 0:
		ir = IRVersionForOpset(defaultOpset)
	}
	if err := validateGraph(&m.Graph, "graph", 0); err != nil {
		return 0, err
	}
	return ir, nil
}

func validateGraph(g *Graph, where string, depth int) error {
	if depth > maxGraphDepth {
		return fmt.Errorf("%s: subgraphs nested deeper than %d (cycle?)", where, maxGraphDepth)
	}
	if g.Name != "" {
		where = fmt.Sprintf("%s %q", where, g.Name)
	}
	if len(g.Outputs) == 0 {
		return fmt.Errorf("%s: no outputs", where)
	}
	for _, list := range []struct {
		kind string
		vs   []ValueInfo
	}{{"input", g.Inputs}, {"output", g.Outputs}, {"value_info", g.ValueInfo}} {
		names := map[string]bool{}
		for i, v := range list.vs {
			if v.Name == "" {
				return fmt.Errorf("%s: %s %d has no name", where, list.kind, i)
			}
			if names[v.Name] {
				return fmt.Errorf("%s: duplicate %s %q", where, list.kind, v.Name)
			}
			names[v.Name] = true
			if v.Type.Size() == 0 && v.encoded == nil {
				return fmt.Errorf("%s: %s %q has unknown data type %v", where, list.kind, v.Name, v.Type)
			}
		}
	}
	// Values are SSA: an initializer or node output may be defined only once.
	// Inputs may repeat initializer names (IR < 4 style) so they are not
	// counted as definitions here.
	defined := map[string]string{}
	for i := range g.Initializers {
		t := &g.Initializers[i]
		if t.Name == "" {
			return fmt.Errorf("%s: initializer %d has no name", where, i)
		}
		if prev, ok := defined[t.Name]; ok {
			return fmt.Errorf("%s: initializer %q already defined as %s", where, t.Name, prev)
		}
		defined[t.Name] = "an initializer"
		if err := validateTensor(t); err != nil {
			return fmt.Errorf("%s: initializer %q: %w", where, t.Name, err)
		}
	}
	for i := range g.Nodes {
		n := &g.Nodes[i]
		id := fmt.Sprintf("node %d", i)
		if n.Name != "" {
			id = fmt.Sprintf("node %d (%s)", i, n.Name)
		}
		if n.OpType == "" {
			return fmt.Errorf("%s: %s has no op_type", where, id)
		}
		for _, o := range n.Outputs {
			if o == "" {
				continue
			}
			if prev, ok := defined[o]; ok {
				return fmt.Errorf("%s: %s %s: output %q already defined as %s", where, id, n.OpType, o, prev)
			}
			defined[o] = "an output of " + id
		}
		attrNames := map[string]bool{}
		for _, a := range n.Attrs {
			if a.Name == "" {
				return fmt.Errorf("%s: %s %s: attribute with no name", where, id, n.OpType)
			}
			if attrNames[a.Name] {
				return fmt.Errorf("%s: %s %s: duplicate attribute %q", where, id, n.OpType, a.Name)
			}
			attrNames[a.Name] = true
			if err := validateAttr(&a, depth); err != nil {
				return fmt.Errorf("%s: %s %s: attribute %q: %w", where, id, n.OpType, a.Name, err)
			}
		}
	}
	return nil
}

func validateAttr(a *Attribute, depth int) error {
	if a.encoded != nil {
		return nil // read from a model and written back as it was
	}
	switch a.Type {
	case AttrTypeFloat, AttrTypeInt, AttrTypeString, AttrTypeFloats, AttrTypeInts, AttrTypeStrings:
		return nil
	case AttrTypeTensor:
		if a.T == nil {
			return errors.New("tensor attribute has nil tensor")
		}
		return validateTensor(a.T)
	case AttrTypeGraph:
		if a.G == nil {
			return errors.New("graph attribute has nil graph")
		}
		return validateGraph(a.G, "subgraph", depth+1)
	}
	return fmt.Errorf("unknown attribute type %d", a.Type)
}

func validateTensor(t *Tensor) error {
	size := t.Type.Size()
	if size == 0 {
		return fmt.Errorf("unknown data type %v", t.Type)
	}
	n := uint64(1)
	for _, d := range t.Dims {
		if d < 0 {
			return fmt.Errorf("negative dimension in dims %v", t.Dims)
		}
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > math.MaxInt64 {
			return fmt.Errorf("dims %v overflow", t.Dims)
		}
		n = lo
	}
	hi, want := bits.Mul64(n, uint64(size))
	if t.Raw == nil && t.Source != nil {
		if hi != 0 || want > math.MaxInt64 {
			return fmt.Errorf("dims %v of %v overflow", t.Dims, t.Type)
		}
		return nil
	}
	if hi != 0 || want != uint64(len(t.Raw)) {
		return fmt.Errorf("raw data is %d bytes, want %d (dims %v of %v)", len(t.Raw), n*uint64(size), t.Dims, t.Type)
	}
	return nil
}

// encoder appends messages in field-number order. When threshold >= 0 large
// initializers go to data instead of the message.
type encoder struct {
	dataName  string
	threshold int
	data      []byte
	// stream mode: external tensors are only laid out (offsets from their sizes) and listed in
	// pending, for the caller to write afterwards one at a time.
	stream   bool
	dataSize int64
	pending  []pendingTensor
	err      error
}

// pendingTensor is an external tensor whose bytes go to the data file at off.
type pendingTensor struct {
	t   *Tensor
	off int64
}

// appendMessage writes a length-delimited field whose body is produced by
// enc. The body is encoded in place and shifted once to make room for the
// length prefix, which avoids a temporary buffer per nesting level.
func appendMessage(b []byte, num protowire.Number, enc func([]byte) []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	start := len(b)
	b = enc(b)
	n := len(b) - start
	sz := protowire.SizeVarint(uint64(n))
	b = append(b, make([]byte, sz)...)
	copy(b[start+sz:], b[start:start+n])
	protowire.AppendVarint(b[:start], uint64(n))
	return b
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// appendPackedInts writes repeated int64 as one packed field (smaller; both
// packed and unpacked are accepted by ONNX parsers).
func appendPackedInts(b []byte, num protowire.Number, v []int64) []byte {
	if len(v) == 0 {
		return b
	}
	return appendMessage(b, num, func(b []byte) []byte {
		for _, x := range v {
			b = protowire.AppendVarint(b, uint64(x))
		}
		return b
	})
}

func appendEntry(b []byte, num protowire.Number, k, v string) []byte {
	return appendMessage(b, num, func(b []byte) []byte {
		b = appendString(b, 1, k)
		return appendString(b, 2, v)
	})
}

func (e *encoder) model(b []byte, m *Model, ir int64) []byte {
	b = appendVarint(b, 1, uint64(ir))
	if m.ProducerName != "" {
		b = appendString(b, 2, m.ProducerName)
	}
	if m.ProducerVersion != "" {
		b = appendString(b, 3, m.ProducerVersion)
	}
	b = appendMessage(b, 7, func(b []byte) []byte { return e.graph(b, &m.Graph, true) })
	for _, o := range m.Opsets {
		b = appendMessage(b, 8, func(b []byte) []byte {
			if o.Domain != "" {
				b = appendString(b, 1, o.Domain)
			}
			return appendVarint(b, 2, uint64(o.Version))
		})
	}
	keys := make([]string, 0, len(m.Metadata))
	for k := range m.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b = appendEntry(b, 14, k, m.Metadata[k])
	}
	return append(b, m.unknown...)
}

func (e *encoder) graph(b []byte, g *Graph, top bool) []byte {
	for i := range g.Nodes {
		b = appendMessage(b, 1, func(b []byte) []byte { return e.node(b, &g.Nodes[i]) })
	}
	if g.Name != "" {
		b = appendString(b, 2, g.Name)
	}
	for i := range g.Initializers {
		b = appendMessage(b, 5, func(b []byte) []byte { return e.tensor(b, &g.Initializers[i], true) })
	}
	for _, list := range []struct {
		num protowire.Number
		vs  []ValueInfo
	}{{11, g.Inputs}, {12, g.Outputs}, {13, g.ValueInfo}} {
		for i := range list.vs {
			b = appendMessage(b, list.num, func(b []byte) []byte { return valueInfo(b, &list.vs[i]) })
		}
	}
	return append(b, g.unknown...)
}

func (e *encoder) node(b []byte, n *Node) []byte {
	for _, s := range n.Inputs {
		b = appendString(b, 1, s)
	}
	for _, s := range n.Outputs {
		b = appendString(b, 2, s)
	}
	if n.Name != "" {
		b = appendString(b, 3, n.Name)
	}
	b = appendString(b, 4, n.OpType)
	for i := range n.Attrs {
		b = appendMessage(b, 5, func(b []byte) []byte { return e.attr(b, &n.Attrs[i]) })
	}
	if n.Domain != "" {
		b = appendString(b, 7, n.Domain)
	}
	return append(b, n.unknown...)
}

func (e *encoder) attr(b []byte, a *Attribute) []byte {
	if a.encoded != nil {
		return append(b, a.encoded...)
	}
	b = appendString(b, 1, a.Name)
	switch a.Type {
	case AttrTypeFloat:
		b = protowire.AppendTag(b, 2, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(a.F))
	case AttrTypeInt:
		b = appendVarint(b, 3, uint64(a.I))
	case AttrTypeString:
		b = appendString(b, 4, a.S)
	case AttrTypeTensor:
		b = appendMessage(b, 5, func(b []byte) []byte { return e.tensor(b, a.T, false) })
	case AttrTypeGraph:
		b = appendMessage(b, 6, func(b []byte) []byte { return e.graph(b, a.G, false) })
	case AttrTypeFloats:
		if len(a.Floats) > 0 {
			b = appendMessage(b, 7, func(b []byte) []byte {
				for _, f := range a.Floats {
					b = protowire.AppendFixed32(b, math.Float32bits(f))
				}
				return b
			})
		}
	case AttrTypeInts:
		b = appendPackedInts(b, 8, a.Ints)
	case AttrTypeStrings:
		for _, s := range a.Strings {
			b = appendString(b, 9, s)
		}
	}
	return appendVarint(b, 20, uint64(a.Type))
}

// tensor writes a TensorProto; initializers (mayExternal) at or above the
// threshold get their bytes appended to e.data instead of raw_data.
func (e *encoder) tensor(b []byte, t *Tensor, mayExternal bool) []byte {
	b = appendPackedInts(b, 1, t.Dims)
	b = appendVarint(b, 2, uint64(t.Type))
	if t.Name != "" {
		b = appendString(b, 8, t.Name)
	}
	size := t.RawSize()
	if mayExternal && e.threshold > 0 && size >= int64(e.threshold) {
		var off int64
		if e.stream {
			off = (e.dataSize + externalAlign - 1) / externalAlign * externalAlign
			e.dataSize = off + size
			e.pending = append(e.pending, pendingTensor{t: t, off: off})
		} else {
			off = int64((len(e.data) + externalAlign - 1) / externalAlign * externalAlign)
			e.data = append(e.data, make([]byte, int(off)-len(e.data))...)
			e.data = e.appendRaw(e.data, t)
		}
		b = appendEntry(b, 13, "location", e.dataName)
		b = appendEntry(b, 13, "offset", strconv.FormatInt(off, 10))
		b = appendEntry(b, 13, "length", strconv.FormatInt(size, 10))
		return appendVarint(b, 14, 1)
	}
	b = protowire.AppendTag(b, 9, protowire.BytesType)
	if t.Raw == nil && t.Source != nil {
		return protowire.AppendBytes(b, e.appendRaw(nil, t))
	}
	return protowire.AppendBytes(b, t.Raw)
}

// appendRaw appends t's bytes to b, asking its Source when it has no Raw; a source error or a
// wrong byte count is kept in e.err (the encoder's append chain cannot return errors).
func (e *encoder) appendRaw(b []byte, t *Tensor) []byte {
	if t.Raw != nil || t.Source == nil {
		return append(b, t.Raw...)
	}
	w := sliceWriter{b: b}
	start := len(b)
	if err := t.Source.WriteRaw(&w); err != nil && e.err == nil {
		e.err = fmt.Errorf("initializer %q: %w", t.Name, err)
	} else if got := int64(len(w.b) - start); got != t.RawSize() && e.err == nil {
		e.err = fmt.Errorf("initializer %q: source wrote %d bytes, want %d", t.Name, got, t.RawSize())
	}
	return w.b
}

type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func valueInfo(b []byte, v *ValueInfo) []byte {
	if v.encoded != nil {
		return append(b, v.encoded...)
	}
	b = appendString(b, 1, v.Name)
	return appendMessage(b, 2, func(b []byte) []byte { // TypeProto
		return appendMessage(b, 1, func(b []byte) []byte { // TypeProto.Tensor
			b = appendVarint(b, 1, uint64(v.Type))
			if v.Dims == nil {
				return b
			}
			return appendMessage(b, 2, func(b []byte) []byte { // TensorShapeProto
				for _, d := range v.Dims {
					b = appendMessage(b, 1, func(b []byte) []byte {
						switch {
						case d.Param != "":
							return appendString(b, 2, d.Param)
						case d.Value >= 0:
							return appendVarint(b, 1, uint64(d.Value))
						}
						return b // unknown dimension: neither field set
					})
				}
				return b
			})
		})
	})
}
