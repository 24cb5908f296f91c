package onnx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/rflowrt/rflow/internal/half"
)

// eagerTensor is the payload size up to which ReadModel loads a tensor's bytes; bigger payloads
// stay on disk and are read when the model is written (or Tensor.Bytes is called).
const eagerTensor = 64 << 10

// ReadModel reads the whole model at path — graph, nodes, attributes, subgraphs, value infos and
// every initializer — for editing and writing back. Weights are not loaded: an initializer whose
// payload is larger than a few KiB, inline in the model file or in an external data file, gets a
// Source that reads its bytes from that file when it is written, so read → edit → WriteFile streams
// the weights and never holds them all in memory. External data locations are resolved against the
// model's folder, which must contain them.
//
// Fields this package does not model (doc strings, model-local functions, attribute kinds such as
// tensor lists) are kept as they were read and written back unchanged. Initializers of types
// without a fixed element size (strings) are reported as errors.
func ReadModel(path string) (*Model, error) {
	f, size, err := openModel(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if size <= 0 {
		return nil, fmt.Errorf("onnx: read %s: %w (empty)", path, ErrNotONNX)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("onnx: read %s: %w", path, err)
	}
	r := &modelReader{src: src{r: f, size: size}, path: abs, dir: filepath.Dir(abs), sizes: map[string]int64{}}
	m, err := r.model()
	if err != nil {
		return nil, readError(path, err)
	}
	return m, nil
}

// dataError is a well-formed model that cannot be read: a missing or short external data file, an
// unsupported tensor type. It is reported as it is, not as ErrNotONNX.
type dataError struct{ err error }

func (e *dataError) Error() string { return e.err.Error() }
func (e *dataError) Unwrap() error { return e.err }

func dataErrorf(format string, a ...any) error { return &dataError{fmt.Errorf(format, a...)} }

// modelReader decodes a whole ModelProto from the file at path.
type modelReader struct {
	src
	path, dir string
	sizes     map[string]int64 // external data files' sizes, by location
}

// raw returns the bytes of field f (a copy).
func (r *modelReader) raw(start, end int64) ([]byte, error) {
	b := make([]byte, end-start)
	if len(b) == 0 {
		return b, nil
	}
	if err := r.readAt(b, start); err != nil {
		return nil, err
	}
	return b, nil
}

// keep appends field f, tag and payload, to dst unchanged.
func (r *modelReader) keep(dst []byte, f field) ([]byte, error) {
	b, err := r.raw(f.tagAt, f.next)
	if err != nil {
		return nil, err
	}
	return append(dst, b...), nil
}

func (r *modelReader) model() (*Model, error) {
	m := &Model{}
	hasGraph := false
	err := r.each(0, r.size, func(f field) error {
		var err error
		switch f.num {
		case 1:
			err = wantType(f, protowire.VarintType, "ir_version")
			m.IRVersion = int64(f.v)
		case 2:
			m.ProducerName, err = r.str(f)
		case 3:
			m.ProducerVersion, err = r.str(f)
		case 7:
			if err := wantType(f, protowire.BytesType, "graph"); err != nil {
				return err
			}
			hasGraph = true
			var g *Graph
			g, err = r.graph(f, 0)
			if err != nil {
				return fmt.Errorf("graph: %w", err)
			}
			m.Graph = *g
		case 8:
			if err := wantType(f, protowire.BytesType, "opset_import"); err != nil {
				return err
			}
			var o OpsetImport
			err = r.each(f.start, f.end, func(f field) error {
				var err error
				switch f.num {
				case 1:
					o.Domain, err = r.str(f)
				case 2:
					err = wantType(f, protowire.VarintType, "version")
					o.Version = int64(f.v)
				}
				return err
			})
			m.Opsets = append(m.Opsets, o)
		case 14:
			var k, v string
			k, v, err = r.entry(f)
			if m.Metadata == nil {
				m.Metadata = map[string]string{}
			}
			m.Metadata[k] = v
		default:
			m.unknown, err = r.keep(m.unknown, f)
		}
		return err
	})
	switch {
	case err != nil:
		return nil, err
	case !hasGraph:
		return nil, errors.New("no graph")
	case m.IRVersion <= 0:
		return nil, fmt.Errorf("ir_version %d", m.IRVersion)
	case m.IRVersion >= 3 && len(m.Opsets) == 0:
		return nil, errors.New("no opset_import")
	}
	return m, nil
}

func (r *modelReader) graph(gf field, depth int) (*Graph, error) {
	if depth > maxGraphDepth {
		return nil, fmt.Errorf("subgraphs nested deeper than %d", maxGraphDepth)
	}
	g := &Graph{}
	err := r.each(gf.start, gf.end, func(f field) error {
		var err error
		switch f.num {
		case 1:
			if err := wantType(f, protowire.BytesType, "node"); err != nil {
				return err
			}
			var n Node
			n, err = r.node(f, depth)
			if err != nil {
				return fmt.Errorf("node %d (%s): %w", len(g.Nodes), n.Name, err)
			}
			g.Nodes = append(g.Nodes, n)
		case 2:
			g.Name, err = r.str(f)
		case 5:
			if err := wantType(f, protowire.BytesType, "initializer"); err != nil {
				return err
			}
			var t Tensor
			t, err = r.tensor(f)
			if err != nil {
				return fmt.Errorf("initializer %d %q: %w", len(g.Initializers), t.Name, err)
			}
			g.Initializers = append(g.Initializers, t)
		case 11, 12, 13:
			if err := wantType(f, protowire.BytesType, "value info"); err != nil {
				return err
			}
			var vi ValueInfo
			vi, err = r.valueInfo(f)
			if err != nil {
				return fmt.Errorf("value %q: %w", vi.Name, err)
			}
			if vi.Type.Size() == 0 { // no tensor type, or one this package cannot write: keep it as read
				if vi.encoded, err = r.raw(f.start, f.end); err != nil {
					return err
				}
			}
			switch f.num {
			case 11:
				g.Inputs = append(g.Inputs, vi)
			case 12:
				g.Outputs = append(g.Outputs, vi)
			default:
				g.ValueInfo = append(g.ValueInfo, vi)
			}
		default:
			g.unknown, err = r.keep(g.unknown, f)
		}
		return err
	})
	return g, err
}

func (r *modelReader) node(nf field, depth int) (Node, error) {
	var n Node
	err := r.each(nf.start, nf.end, func(f field) error {
		var err error
		var s string
		switch f.num {
		case 1:
			s, err = r.str(f)
			n.Inputs = append(n.Inputs, s)
		case 2:
			s, err = r.str(f)
			n.Outputs = append(n.Outputs, s)
		case 3:
			n.Name, err = r.str(f)
		case 4:
			n.OpType, err = r.str(f)
		case 7:
			n.Domain, err = r.str(f)
		case 5:
			if err := wantType(f, protowire.BytesType, "attribute"); err != nil {
				return err
			}
			var a Attribute
			a, err = r.attr(f, depth)
			if err != nil {
				return fmt.Errorf("attribute %q: %w", a.Name, err)
			}
			n.Attrs = append(n.Attrs, a)
		default:
			n.unknown, err = r.keep(n.unknown, f)
		}
		return err
	})
	return n, err
}

// attr reads an AttributeProto. Kinds the Attribute type does not model are kept encoded.
func (r *modelReader) attr(af field, depth int) (Attribute, error) {
	var a Attribute
	var t, g *field
	var typ int64 = -1
	other := false
	err := r.each(af.start, af.end, func(f field) error {
		var err error
		switch f.num {
		case 1:
			a.Name, err = r.str(f)
		case 2:
			err = wantType(f, protowire.Fixed32Type, "f")
			if err == nil {
				var b []byte
				if b, err = r.at(f.next-4, f.next, 4); err == nil {
					a.F = math.Float32frombits(binary.LittleEndian.Uint32(b))
				}
			}
		case 3:
			err = wantType(f, protowire.VarintType, "i")
			a.I = int64(f.v)
		case 4:
			a.S, err = r.bytesString(f)
		case 5:
			t = &f
		case 6:
			g = &f
		case 7:
			a.Floats, err = r.floats(f, a.Floats)
		case 8:
			a.Ints, err = r.ints(f, a.Ints)
		case 9:
			var s string
			s, err = r.bytesString(f)
			a.Strings = append(a.Strings, s)
		case 20:
			err = wantType(f, protowire.VarintType, "type")
			typ = int64(f.v)
		case 13: // doc_string: dropped
		default: // tensors, graphs, type protos, sparse tensors, ref_attr_name
			other = true
		}
		return err
	})
	if err != nil {
		return a, err
	}
	if typ < 0 { // IR < 4 writers may leave the type out: it is the field that is set
		switch {
		case t != nil:
			typ = int64(AttrTypeTensor)
		case g != nil:
			typ = int64(AttrTypeGraph)
		case a.Floats != nil:
			typ = int64(AttrTypeFloats)
		case a.Ints != nil:
			typ = int64(AttrTypeInts)
		case a.Strings != nil:
			typ = int64(AttrTypeStrings)
		}
	}
	a.Type = AttrType(typ)
	if other || typ < int64(AttrTypeFloat) || typ > int64(AttrTypeStrings) {
		enc, err := r.raw(af.start, af.end)
		return Attribute{Name: a.Name, Type: a.Type, encoded: enc}, err
	}
	switch a.Type {
	case AttrTypeTensor:
		if t == nil {
			return a, errors.New("tensor attribute without a tensor")
		}
		tt, err := r.tensor(*t)
		if err != nil {
			return a, err
		}
		a.T = &tt
	case AttrTypeGraph:
		if g == nil {
			return a, errors.New("graph attribute without a graph")
		}
		a.G, err = r.graph(*g, depth+1)
	case AttrTypeFloats:
		if a.Floats == nil {
			a.Floats = []float32{}
		}
	case AttrTypeInts:
		if a.Ints == nil {
			a.Ints = []int64{}
		}
	}
	return a, err
}

// bytesString reads a bytes field of any length as a string (attribute values may exceed maxString
// only in corrupt files, which the message bounds catch).
func (r *modelReader) bytesString(f field) (string, error) {
	if f.typ != protowire.BytesType {
		return "", fmt.Errorf("field %d has wire type %d, want bytes", f.num, f.typ)
	}
	b, err := r.raw(f.start, f.end)
	return string(b), err
}

// floats reads a repeated float field, packed or not.
func (r *modelReader) floats(f field, dst []float32) ([]float32, error) {
	switch f.typ {
	case protowire.Fixed32Type:
		b, err := r.at(f.next-4, f.next, 4)
		if err != nil {
			return nil, err
		}
		return append(dst, math.Float32frombits(binary.LittleEndian.Uint32(b))), nil
	case protowire.BytesType:
		b, err := r.raw(f.start, f.end)
		if err != nil {
			return nil, err
		}
		if len(b)%4 != 0 {
			return nil, fmt.Errorf("packed floats of %d bytes", len(b))
		}
		for i := 0; i < len(b); i += 4 {
			dst = append(dst, math.Float32frombits(binary.LittleEndian.Uint32(b[i:])))
		}
		return dst, nil
	}
	return nil, fmt.Errorf("floats field has wire type %d", f.typ)
}

// ints reads a repeated varint field, packed or not.
func (r *modelReader) ints(f field, dst []int64) ([]int64, error) {
	switch f.typ {
	case protowire.VarintType:
		return append(dst, int64(f.v)), nil
	case protowire.BytesType:
		b, err := r.raw(f.start, f.end)
		if err != nil {
			return nil, err
		}
		for len(b) > 0 {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			dst = append(dst, int64(v))
			b = b[n:]
		}
		return dst, nil
	}
	return nil, fmt.Errorf("ints field has wire type %d", f.typ)
}

// tensor reads a TensorProto. Small payloads are loaded; large ones (raw_data in this file or an
// external data file) become a Source reading the file when needed.
func (r *modelReader) tensor(tf field) (Tensor, error) {
	var t Tensor
	var raw *field
	var typed []field // float_data, int32_data, int64_data, double_data, uint64_data
	ext := map[string]string{}
	external := false
	err := r.each(tf.start, tf.end, func(f field) error {
		var err error
		switch f.num {
		case 1:
			t.Dims, err = r.ints(f, t.Dims)
		case 2:
			err = wantType(f, protowire.VarintType, "data_type")
			t.Type = DataType(int32(f.v))
		case 3:
			err = dataErrorf("segmented tensors are not supported")
		case 6:
			err = dataErrorf("string tensors are not supported")
		case 8:
			t.Name, err = r.str(f)
		case 9:
			err = wantType(f, protowire.BytesType, "raw_data")
			raw = &f
		case 4, 5, 7, 10, 11:
			typed = append(typed, f)
		case 13:
			var k, v string
			k, v, err = r.entry(f)
			ext[k] = v
		case 14:
			err = wantType(f, protowire.VarintType, "data_location")
			external = f.v == 1
		}
		return err
	})
	if err != nil {
		return t, err
	}
	size := t.Type.Size()
	if size == 0 {
		return t, dataErrorf("element type %v is not supported", t.Type)
	}
	n := int64(1)
	for _, d := range t.Dims {
		if d < 0 || (d > 0 && n > math.MaxInt64/d) {
			return t, fmt.Errorf("bad dims %v", t.Dims)
		}
		n *= d
	}
	if n > math.MaxInt64/int64(size) {
		return t, fmt.Errorf("dims %v overflow", t.Dims)
	}
	want := n * int64(size)
	switch {
	case external:
		err = r.externalTensor(&t, ext, want)
	case raw != nil:
		if raw.end-raw.start != want {
			return t, fmt.Errorf("raw_data is %d bytes, want %d (dims %v of %v)", raw.end-raw.start, want, t.Dims, t.Type)
		}
		if want <= eagerTensor {
			t.Raw, err = r.raw(raw.start, raw.end)
		} else {
			t.Source = fileRange{path: r.path, off: raw.start, n: want}
		}
	default:
		t.Raw, err = r.typedData(t.Type, typed, n)
	}
	return t, err
}

// externalTensor points t at its bytes in an external data file.
func (r *modelReader) externalTensor(t *Tensor, ext map[string]string, want int64) error {
	loc := ext["location"]
	clean := filepath.Clean(filepath.FromSlash(loc))
	if loc == "" || filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return dataErrorf("external data location %q is not a file inside the model's folder", loc)
	}
	var off, length int64 = 0, want
	var err error
	if s, ok := ext["offset"]; ok {
		if off, err = strconv.ParseInt(s, 10, 64); err != nil || off < 0 {
			return dataErrorf("external data offset %q", s)
		}
	}
	if s, ok := ext["length"]; ok {
		if length, err = strconv.ParseInt(s, 10, 64); err != nil || length != want {
			return dataErrorf("external data length %q, want %d (dims %v of %v)", s, want, t.Dims, t.Type)
		}
	}
	path := filepath.Join(r.dir, clean)
	size, ok := r.sizes[path]
	if !ok {
		st, err := os.Stat(path)
		if err != nil {
			return &dataError{fmt.Errorf("external data: %w", err)}
		}
		size = st.Size()
		r.sizes[path] = size
	}
	if off+length > size {
		return dataErrorf("external data %s holds %d bytes, the tensor needs [%d, %d)", loc, size, off, off+length)
	}
	t.Source = fileRange{path: path, off: off, n: length}
	return nil
}

// typedData converts the typed value fields of a TensorProto to raw little-endian bytes.
func (r *modelReader) typedData(typ DataType, fields []field, n int64) ([]byte, error) {
	size := typ.Size()
	if n*int64(size) > maxProtoSize {
		return nil, fmt.Errorf("typed tensor data of %d elements", n)
	}
	out := make([]byte, 0, n*int64(size))
	for _, f := range fields {
		switch f.num {
		case 4, 10: // float_data (float32, complex64), double_data
			var vals []float32
			if f.num == 4 {
				var err error
				if vals, err = r.floats(f, nil); err != nil {
					return nil, err
				}
				for _, v := range vals {
					out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
				}
				continue
			}
			b, err := r.raw(f.start, f.end)
			if f.typ == protowire.Fixed64Type {
				b, err = r.raw(f.next-8, f.next)
			}
			if err != nil {
				return nil, err
			}
			out = append(out, b...)
		default: // int32_data (every type narrower than 32 bits, int32), int64_data, uint64_data
			vals, err := r.ints(f, nil)
			if err != nil {
				return nil, err
			}
			for _, v := range vals {
				switch size {
				case 1:
					out = append(out, byte(v))
				case 2:
					out = binary.LittleEndian.AppendUint16(out, uint16(v))
				case 4:
					out = binary.LittleEndian.AppendUint32(out, uint32(v))
				default:
					out = binary.LittleEndian.AppendUint64(out, uint64(v))
				}
			}
		}
	}
	if int64(len(out)) != n*int64(size) {
		return nil, fmt.Errorf("typed data holds %d bytes, want %d", len(out), n*int64(size))
	}
	return out, nil
}

// fileRange is a tensor's bytes in a file, read when the tensor is written.
type fileRange struct {
	path   string
	off, n int64
}

func (f fileRange) WriteRaw(w io.Writer) error {
	file, err := os.Open(f.path)
	if err != nil {
		return err
	}
	defer file.Close()
	got, err := io.Copy(w, io.NewSectionReader(file, f.off, f.n))
	if err == nil && got != f.n {
		err = fmt.Errorf("%s: read %d bytes at offset %d, want %d", f.path, got, f.off, f.n)
	}
	return err
}

// Bytes returns the tensor's raw little-endian bytes: Raw, or what its Source writes.
func (t *Tensor) Bytes() ([]byte, error) {
	if t.Raw != nil || t.Source == nil {
		return t.Raw, nil
	}
	w := sliceWriter{b: make([]byte, 0, t.RawSize())}
	if err := t.Source.WriteRaw(&w); err != nil {
		return nil, fmt.Errorf("onnx: tensor %q: %w", t.Name, err)
	}
	if int64(len(w.b)) != t.RawSize() {
		return nil, fmt.Errorf("onnx: tensor %q: source wrote %d bytes, want %d", t.Name, len(w.b), t.RawSize())
	}
	return w.b, nil
}

// Float32s returns a float32, float16 or bfloat16 tensor's values as float32.
func (t *Tensor) Float32s() ([]float32, error) {
	if t.Type != Float && t.Type != Float16 && t.Type != BFloat16 {
		return nil, fmt.Errorf("onnx: tensor %q is %v, not a float type", t.Name, t.Type)
	}
	b, err := t.Bytes()
	if err != nil {
		return nil, err
	}
	if t.Type == Float {
		v := make([]float32, len(b)/4)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return v, nil
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	v := make([]float32, len(u))
	if t.Type == Float16 {
		err = half.DecodeFloat16(v, u)
	} else {
		err = half.DecodeBFloat16(v, u)
	}
	return v, err
}

// Int64s returns an int64 tensor's values.
func (t *Tensor) Int64s() ([]int64, error) {
	if t.Type != Int64 {
		return nil, fmt.Errorf("onnx: tensor %q is %v, not int64", t.Name, t.Type)
	}
	b, err := t.Bytes()
	if err != nil {
		return nil, err
	}
	v := make([]int64, len(b)/8)
	for i := range v {
		v[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return v, nil
}

// Opset returns the model's opset version for domain ("" or "ai.onnx" for the default domain), 0
// when it imports none.
func (m *Model) Opset(domain string) int64 {
	if domain == "ai.onnx" {
		domain = ""
	}
	for _, o := range m.Opsets {
		d := o.Domain
		if d == "ai.onnx" {
			d = ""
		}
		if d == domain {
			return o.Version
		}
	}
	return 0
}

// UseDomain adds an opset import for domain at version when the model has none.
func (m *Model) UseDomain(domain string, version int64) {
	if m.Opset(domain) == 0 {
		m.Opsets = append(m.Opsets, OpsetImport{Domain: domain, Version: version})
	}
}
