// Package safetensors writes and reads the safetensors format (huggingface/safetensors): an 8-byte
// little-endian header length N, N bytes of JSON header, then the tensor data. The header maps each
// tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (byte offsets into the data, which
// follows the header), plus an optional "__metadata__" map of strings to strings. The writer puts
// "__metadata__" first and the tensors in name order, lays the data out in that order and pads the
// header with spaces to a multiple of 8 bytes, as the reference implementation does; Unmarshal
// enforces the format's rules (offsets contiguous from 0 and covering the data exactly, sizes equal to
// dtype size × shape, no duplicate names, a bounded header).
//
// Marshal, WriteFile, Unmarshal and ReadFile hold whole files in memory and suit small ones (latents).
// Checkpoints of many gigabytes are read with Open (one file), OpenIndex (a sharded checkpoint's
// *.safetensors.index.json) or OpenSet (a list of files): the header is validated up front, the data
// is memory-mapped, and tensors are converted to float32 one at a time, whole or by rows.
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// MaxHeader is the largest header Read accepts (the reference implementation's limit).
const MaxHeader = 100_000_000

// MetadataKey is the header key of the string metadata.
const MetadataKey = "__metadata__"

// dtypeSizes are the element sizes of the format's dtypes.
var dtypeSizes = map[string]int{"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2,
	"F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}

// ErrFormat is wrapped by every error about malformed input.
var ErrFormat = errors.New("safetensors")

// Tensor is one named tensor: dtype (e.g. "F32"), shape and little-endian data.
type Tensor struct {
	Name  string
	DType string
	Shape []int
	Data  []byte
}

// F32 makes a float32 tensor.
func F32(name string, shape []int, v []float32) Tensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return Tensor{Name: name, DType: "F32", Shape: slices.Clone(shape), Data: b}
}

// Float32s decodes an F32 tensor's data.
func (t Tensor) Float32s() ([]float32, error) {
	if t.DType != "F32" {
		return nil, fmt.Errorf("%w: tensor %s is %s, not F32", ErrFormat, t.Name, t.DType)
	}
	v := make([]float32, len(t.Data)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
	}
	return v, nil
}

// elements is the product of the shape (1 for a scalar), or an error for negative or overflowing dims.
func elements(shape []int) (int, error) {
	n := 1
	for _, d := range shape {
		if d < 0 || (d > 0 && n > math.MaxInt32/d) {
			return 0, fmt.Errorf("%w: shape %v", ErrFormat, shape)
		}
		n *= d
	}
	return n, nil
}

// check validates a tensor's dtype, name and data length.
func (t Tensor) check() error {
	size, ok := dtypeSizes[t.DType]
	if !ok {
		return fmt.Errorf("%w: tensor %s: unknown dtype %q", ErrFormat, t.Name, t.DType)
	}
	if t.Name == "" || t.Name == MetadataKey {
		return fmt.Errorf("%w: tensor name %q", ErrFormat, t.Name)
	}
	n, err := elements(t.Shape)
	if err != nil {
		return fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	if n*size != len(t.Data) {
		return fmt.Errorf("%w: tensor %s: %d bytes for %s%v (want %d)", ErrFormat, t.Name, len(t.Data), t.DType, t.Shape, n*size)
	}
	return nil
}

// Marshal encodes tensors and metadata as a safetensors file.
func Marshal(tensors []Tensor, metadata map[string]string) ([]byte, error) {
	ts := slices.Clone(tensors)
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	var hdr bytes.Buffer
	hdr.WriteByte('{')
	if len(metadata) > 0 {
		m, err := json.Marshal(metadata) // keys sorted
		if err != nil {
			return nil, fmt.Errorf("safetensors: metadata: %w", err)
		}
		hdr.WriteString(`"` + MetadataKey + `":`)
		hdr.Write(m)
	}
	var off int
	for i, t := range ts {
		if err := t.check(); err != nil {
			return nil, err
		}
		if i > 0 && ts[i-1].Name == t.Name {
			return nil, fmt.Errorf("%w: duplicate tensor %s", ErrFormat, t.Name)
		}
		if hdr.Len() > 1 {
			hdr.WriteByte(',')
		}
		name, _ := json.Marshal(t.Name)
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		entry, _ := json.Marshal(struct {
			DType   string `json:"dtype"`
			Shape   []int  `json:"shape"`
			Offsets [2]int `json:"data_offsets"`
		}{t.DType, shape, [2]int{off, off + len(t.Data)}})
		hdr.Write(name)
		hdr.WriteByte(':')
		hdr.Write(entry)
		off += len(t.Data)
	}
	hdr.WriteByte('}')
	for hdr.Len()%8 != 0 {
		hdr.WriteByte(' ')
	}
	out := make([]byte, 8, 8+hdr.Len()+off)
	binary.LittleEndian.PutUint64(out, uint64(hdr.Len()))
	out = append(out, hdr.Bytes()...)
	for _, t := range ts {
		out = append(out, t.Data...)
	}
	return out, nil
}

// File is a decoded safetensors file.
type File struct {
	Tensors  []Tensor // in data order
	Metadata map[string]string
}

// Tensor returns the tensor called name.
func (f File) Tensor(name string) (Tensor, bool) {
	for _, t := range f.Tensors {
		if t.Name == name {
			return t, true
		}
	}
	return Tensor{}, false
}

type headerEntry struct {
	DType   string `json:"dtype"`
	Shape   []int  `json:"shape"`
	Offsets []int  `json:"data_offsets"`
}

// Unmarshal decodes a safetensors file, checking it against the format's rules.
func Unmarshal(b []byte) (File, error) {
	if len(b) < 8 {
		return File{}, fmt.Errorf("%w: %d bytes, shorter than the header length", ErrFormat, len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > MaxHeader || n > uint64(len(b)-8) || n < 2 {
		return File{}, fmt.Errorf("%w: header length %d (file %d bytes)", ErrFormat, n, len(b))
	}
	hdr, data := b[8:8+n], b[8+n:]
	if hdr[0] != '{' {
		return File{}, fmt.Errorf("%w: header does not start with '{'", ErrFormat)
	}
	raw := map[string]json.RawMessage{}
	dec := json.NewDecoder(bytes.NewReader(bytes.TrimRight(hdr, " ")))
	if err := dec.Decode(&raw); err != nil || dec.More() {
		return File{}, fmt.Errorf("%w: header JSON: %v", ErrFormat, err)
	}
	var f File
	if m, ok := raw[MetadataKey]; ok {
		if err := json.Unmarshal(m, &f.Metadata); err != nil {
			return File{}, fmt.Errorf("%w: %s is not a map of strings: %v", ErrFormat, MetadataKey, err)
		}
		delete(raw, MetadataKey)
	}
	entries := make([]headerEntry, 0, len(raw))
	names := make([]string, 0, len(raw))
	for name, msg := range raw {
		var e headerEntry
		d := json.NewDecoder(bytes.NewReader(msg))
		d.DisallowUnknownFields()
		if err := d.Decode(&e); err != nil || len(e.Offsets) != 2 {
			return File{}, fmt.Errorf("%w: tensor %s: bad entry %s", ErrFormat, name, strings.TrimSpace(string(msg)))
		}
		entries, names = append(entries, e), append(names, name)
	}
	return f, f.collect(entries, names, data)
}

// collect checks the entries' offsets (contiguous from 0, covering data) and slices the tensors.
func (f *File) collect(entries []headerEntry, names []string, data []byte) error {
	idx := make([]int, len(entries))
	for i := range idx {
		idx[i] = i
	}
	// By (begin, end): an empty tensor shares its begin with the next one and must come first.
	sort.Slice(idx, func(a, b int) bool {
		ea, eb := entries[idx[a]].Offsets, entries[idx[b]].Offsets
		return ea[0] < eb[0] || (ea[0] == eb[0] && ea[1] < eb[1])
	})
	pos := 0
	for _, i := range idx {
		e := entries[i]
		if e.Offsets[0] != pos || e.Offsets[1] < e.Offsets[0] || e.Offsets[1] > len(data) {
			return fmt.Errorf("%w: tensor %s: data_offsets %v are not contiguous at %d (data %d bytes)", ErrFormat, names[i], e.Offsets, pos, len(data))
		}
		t := Tensor{Name: names[i], DType: e.DType, Shape: e.Shape, Data: data[e.Offsets[0]:e.Offsets[1]]}
		if t.Shape == nil {
			return fmt.Errorf("%w: tensor %s has no shape", ErrFormat, t.Name)
		}
		if err := t.check(); err != nil {
			return err
		}
		f.Tensors = append(f.Tensors, t)
		pos = e.Offsets[1]
	}
	if pos != len(data) {
		return fmt.Errorf("%w: %d bytes of data after the last tensor", ErrFormat, len(data)-pos)
	}
	return nil
}
