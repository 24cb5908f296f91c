package onnx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
)

// ErrNotONNX is wrapped by reader errors for input that does not parse as an
// ONNX ModelProto (empty, truncated, random or text data, no graph).
var ErrNotONNX = errors.New("not an ONNX model")

// Info is a model's signature and a summary of its weights.
type Info struct {
	IRVersion    int64
	ProducerName string
	Opsets       []OpsetImport
	// Inputs are the graph inputs a caller must feed: names that are also
	// initializers (IR < 4 style) are excluded, as ONNX Runtime treats them
	// as optional overrides.
	Inputs, Outputs []ValueInfo
	// Initializers counts dense and sparse initializers of the main graph.
	Initializers int
	// ExternalData reports whether any initializer keeps its bytes in an
	// external file; ExternalFiles lists those files' distinct locations.
	ExternalData  bool
	ExternalFiles []string
	// Metadata holds metadata_props; nil when the model has none.
	Metadata map[string]string
}

// readWindow is how much is read at a time. Skipped payloads cost at most one
// window of read-ahead each, never their full size.
const readWindow = 4096

// maxString bounds a single string read, so a corrupt length cannot make the
// reader allocate gigabytes.
const maxString = 16 << 20

// ReadInfo reads the signature of the model file at path. It reads only the
// model's structure and skips tensor payloads by offset, so it is cheap even
// for multi-gigabyte models.
func ReadInfo(path string) (*Info, error) {
	f, size, err := openModel(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readInfo(f, size, path)
}

// openModel opens the model file at path and returns its size; a folder is an error.
func openModel(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("onnx: read %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("onnx: read %s: %w", path, err)
	}
	if st.IsDir() {
		f.Close()
		return nil, 0, fmt.Errorf("onnx: read %s: is a directory", path)
	}
	return f, st.Size(), nil
}

// ReadInfoFrom reads a model's signature from the first size bytes of r.
func ReadInfoFrom(r io.ReaderAt, size int64) (*Info, error) {
	return readInfo(r, size, "model")
}

// ReadInfoBytes reads a model's signature from an in-memory model.
func ReadInfoBytes(data []byte) (*Info, error) {
	return readInfo(bytes.NewReader(data), int64(len(data)), "model")
}

// ioError marks failures of the underlying reader, which are reported as
// they are rather than as ErrNotONNX.
type ioError struct{ err error }

func (e *ioError) Error() string { return e.err.Error() }

func readInfo(r io.ReaderAt, size int64, name string) (*Info, error) {
	var info *Info
	var err error
	if size <= 0 {
		err = errors.New("empty")
	} else {
		s := &src{r: r, size: size}
		info, err = s.model()
	}
	if err != nil {
		return nil, readError(name, err)
	}
	return info, nil
}

// readError names what failed reading the model name: the underlying reader's error or a model
// that cannot be read (dataError) as they are, anything else as ErrNotONNX with the parse error.
func readError(name string, err error) error {
	var ioe *ioError
	var de *dataError
	switch {
	case errors.As(err, &ioe):
		return fmt.Errorf("onnx: read %s: %w", name, ioe.err)
	case errors.As(err, &de):
		return fmt.Errorf("onnx: read %s: %w", name, err)
	}
	return fmt.Errorf("onnx: read %s: %w (%v)", name, ErrNotONNX, err)
}

// src reads protobuf fields at offsets through a small cached window.
type src struct {
	r      io.ReaderAt
	size   int64
	win    []byte
	winOff int64
}

// at returns n bytes at pos (fewer if end comes first). The slice is only
// valid until the next call.
func (s *src) at(pos, end int64, n int) ([]byte, error) {
	if int64(n) > end-pos {
		n = int(end - pos)
	}
	if pos >= s.winOff && pos+int64(n) <= s.winOff+int64(len(s.win)) {
		return s.win[pos-s.winOff : pos-s.winOff+int64(n)], nil
	}
	if n > readWindow {
		buf := make([]byte, n)
		if err := s.readAt(buf, pos); err != nil {
			return nil, err
		}
		return buf, nil
	}
	m := int64(readWindow)
	if m > s.size-pos {
		m = s.size - pos
	}
	if cap(s.win) < readWindow {
		s.win = make([]byte, readWindow)
	}
	s.win = s.win[:m]
	s.winOff = pos
	if err := s.readAt(s.win, pos); err != nil {
		s.win = s.win[:0]
		return nil, err
	}
	return s.win[:n], nil
}

func (s *src) readAt(buf []byte, pos int64) error {
	got, err := s.r.ReadAt(buf, pos)
	if got == len(buf) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("unexpected end of data at offset %d", pos+int64(got))
	}
	return &ioError{err}
}

// field is one decoded field: v holds varint and fixed values, [start,end)
// the payload of length-delimited ones (not read).
type field struct {
	num        protowire.Number
	typ        protowire.Type
	v          uint64
	start, end int64
	// tagAt and next bound the whole field, tag included (to copy it unchanged)
	tagAt, next int64
}

func (s *src) varint(pos, end int64) (uint64, int64, error) {
	b, err := s.at(pos, end, maxVarintLen)
	if err != nil {
		return 0, 0, err
	}
	v, n := protowire.ConsumeVarint(b)
	if n < 0 {
		return 0, 0, fmt.Errorf("bad varint at offset %d: %v", pos, protowire.ParseError(n))
	}
	return v, int64(n), nil
}

const maxVarintLen = 10

// each calls fn for every field of the message in [start,end), skipping
// payloads by offset.
func (s *src) each(start, end int64, fn func(f field) error) error {
	pos := start
	for pos < end {
		tag, n, err := s.varint(pos, end)
		if err != nil {
			return err
		}
		num, typ := protowire.DecodeTag(tag)
		if !num.IsValid() {
			return fmt.Errorf("invalid field number %d at offset %d", num, pos)
		}
		f := field{num: num, typ: typ, tagAt: pos}
		pos += n
		switch typ {
		case protowire.VarintType:
			f.v, n, err = s.varint(pos, end)
			if err != nil {
				return err
			}
			pos += n
		case protowire.Fixed32Type, protowire.Fixed64Type:
			w := int64(4)
			if typ == protowire.Fixed64Type {
				w = 8
			}
			if w > end-pos {
				return fmt.Errorf("field %d at offset %d runs past its message", num, pos)
			}
			pos += w
		case protowire.BytesType:
			l, n, err := s.varint(pos, end)
			if err != nil {
				return err
			}
			pos += n
			if l > uint64(end-pos) {
				return fmt.Errorf("field %d at offset %d: length %d runs past its message (%d bytes left)", num, pos, l, end-pos)
			}
			f.start, f.end = pos, pos+int64(l)
			pos = f.end
		default:
			return fmt.Errorf("field %d at offset %d: unsupported wire type %d", num, pos, typ)
		}
		f.next = pos
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

func (s *src) str(f field) (string, error) {
	if f.typ != protowire.BytesType {
		return "", fmt.Errorf("field %d has wire type %d, want bytes", f.num, f.typ)
	}
	if f.end-f.start > maxString {
		return "", fmt.Errorf("field %d: string of %d bytes is too long", f.num, f.end-f.start)
	}
	b, err := s.at(f.start, f.end, int(f.end-f.start))
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// wantType rejects known fields with the wrong wire type, which is how most
// non-ONNX input is caught.
func wantType(f field, typ protowire.Type, what string) error {
	if f.typ != typ {
		return fmt.Errorf("%s (field %d) has wire type %d, want %d", what, f.num, f.typ, typ)
	}
	return nil
}

func (s *src) model() (*Info, error) {
	info := &Info{}
	hasGraph := false
	initNames := map[string]bool{}
	err := s.each(0, s.size, func(f field) error {
		switch f.num {
		case 1:
			if err := wantType(f, protowire.VarintType, "ir_version"); err != nil {
				return err
			}
			info.IRVersion = int64(f.v)
		case 2:
			v, err := s.str(f)
			if err != nil {
				return fmt.Errorf("producer_name: %w", err)
			}
			info.ProducerName = v
		case 7:
			if err := wantType(f, protowire.BytesType, "graph"); err != nil {
				return err
			}
			hasGraph = true
			if err := s.graph(f, info, initNames); err != nil {
				return fmt.Errorf("graph: %w", err)
			}
		case 8:
			if err := wantType(f, protowire.BytesType, "opset_import"); err != nil {
				return err
			}
			var o OpsetImport
			err := s.each(f.start, f.end, func(f field) error {
				var err error
				switch f.num {
				case 1:
					o.Domain, err = s.str(f)
				case 2:
					err = wantType(f, protowire.VarintType, "version")
					o.Version = int64(f.v)
				}
				return err
			})
			if err != nil {
				return fmt.Errorf("opset_import: %w", err)
			}
			info.Opsets = append(info.Opsets, o)
		case 14:
			k, v, err := s.entry(f)
			if err != nil {
				return fmt.Errorf("metadata_props: %w", err)
			}
			if info.Metadata == nil {
				info.Metadata = map[string]string{}
			}
			info.Metadata[k] = v
		}
		return nil
	})
	switch {
	case err != nil:
		return nil, err
	case !hasGraph:
		return nil, errors.New("no graph")
	case info.IRVersion <= 0:
		return nil, fmt.Errorf("ir_version %d", info.IRVersion)
	case info.IRVersion >= 3 && len(info.Opsets) == 0:
		return nil, errors.New("no opset_import")
	}
	inputs := info.Inputs[:0]
	for _, in := range info.Inputs {
		if !initNames[in.Name] {
			inputs = append(inputs, in)
		}
	}
	info.Inputs = inputs
	return info, nil
}

// entry reads a StringStringEntryProto.
func (s *src) entry(f field) (k, v string, err error) {
	if err := wantType(f, protowire.BytesType, "entry"); err != nil {
		return "", "", err
	}
	err = s.each(f.start, f.end, func(f field) error {
		var err error
		switch f.num {
		case 1:
			k, err = s.str(f)
		case 2:
			v, err = s.str(f)
		}
		return err
	})
	return k, v, err
}

// graph reads the main graph's signature; nodes and value_info are skipped
// without reading them.
func (s *src) graph(g field, info *Info, initNames map[string]bool) error {
	return s.each(g.start, g.end, func(f field) error {
		switch f.num {
		case 5, 15:
			if err := wantType(f, protowire.BytesType, "initializer"); err != nil {
				return err
			}
			if f.num == 15 { // SparseTensorProto: the name is on its values tensor
				var vals field
				err := s.each(f.start, f.end, func(sf field) error {
					if sf.num == 1 {
						vals = sf
						return wantType(sf, protowire.BytesType, "sparse_initializer values")
					}
					return nil
				})
				if err != nil {
					return fmt.Errorf("sparse_initializer %d: %w", info.Initializers, err)
				}
				f = vals
			}
			if err := s.tensor(f, info, initNames); err != nil {
				return fmt.Errorf("initializer %d: %w", info.Initializers, err)
			}
			info.Initializers++
		case 11, 12:
			kind := "input"
			if f.num == 12 {
				kind = "output"
			}
			if err := wantType(f, protowire.BytesType, kind); err != nil {
				return err
			}
			vi, err := s.valueInfo(f)
			if err != nil {
				return fmt.Errorf("%s %q: %w", kind, vi.Name, err)
			}
			if f.num == 11 {
				info.Inputs = append(info.Inputs, vi)
			} else {
				info.Outputs = append(info.Outputs, vi)
			}
		}
		return nil
	})
}

// tensor reads an initializer's name and external-data location; raw_data
// and typed data fields are skipped by offset.
func (s *src) tensor(t field, info *Info, initNames map[string]bool) error {
	var name, location string
	external := false
	err := s.each(t.start, t.end, func(f field) error {
		var err error
		switch f.num {
		case 8:
			name, err = s.str(f)
		case 13:
			var k, v string
			k, v, err = s.entry(f)
			external = true
			if k == "location" {
				location = v
			}
		case 14:
			err = wantType(f, protowire.VarintType, "data_location")
			external = external || f.v == 1
		}
		return err
	})
	if err != nil {
		return err
	}
	initNames[name] = true
	if external {
		info.ExternalData = true
		if location != "" && !slices.Contains(info.ExternalFiles, location) {
			info.ExternalFiles = append(info.ExternalFiles, location)
		}
	}
	return nil
}

func (s *src) valueInfo(vf field) (ValueInfo, error) {
	var vi ValueInfo
	err := s.each(vf.start, vf.end, func(f field) error {
		switch f.num {
		case 1:
			name, err := s.str(f)
			vi.Name = name
			return err
		case 2:
			if err := wantType(f, protowire.BytesType, "type"); err != nil {
				return err
			}
			return s.each(f.start, f.end, func(f field) error {
				if f.num != 1 { // sequence, map, optional...: not a tensor, Type stays 0
					return nil
				}
				if err := wantType(f, protowire.BytesType, "tensor_type"); err != nil {
					return err
				}
				return s.tensorType(f, &vi)
			})
		}
		return nil
	})
	return vi, err
}

func (s *src) tensorType(tf field, vi *ValueInfo) error {
	return s.each(tf.start, tf.end, func(f field) error {
		switch f.num {
		case 1:
			if err := wantType(f, protowire.VarintType, "elem_type"); err != nil {
				return err
			}
			vi.Type = DataType(int32(f.v))
		case 2:
			if err := wantType(f, protowire.BytesType, "shape"); err != nil {
				return err
			}
			vi.Dims = []Dim{}
			return s.each(f.start, f.end, func(f field) error {
				if f.num != 1 {
					return nil
				}
				if err := wantType(f, protowire.BytesType, "dim"); err != nil {
					return err
				}
				d := Dim{Value: -1}
				err := s.each(f.start, f.end, func(f field) error {
					switch f.num {
					case 1:
						if err := wantType(f, protowire.VarintType, "dim_value"); err != nil {
							return err
						}
						d = Dim{Value: int64(f.v)}
					case 2:
						p, err := s.str(f)
						if err != nil {
							return err
						}
						d = Dim{Param: p}
						if p == "" {
							d = Dim{Value: -1}
						}
					}
					return nil
				})
				vi.Dims = append(vi.Dims, d)
				return err
			})
		}
		return nil
	})
}
