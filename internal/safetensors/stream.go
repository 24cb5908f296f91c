package safetensors

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
)

// Entry names one tensor of a streamed file: its name, dtype and shape (its data comes later).
type Entry struct {
	Name  string
	DType string
	Shape []int64
}

// bytes is the entry's data size, or an error for an unknown dtype or a shape that overflows.
func (e Entry) bytes() (int64, error) {
	size, ok := dtypeSizes[e.DType]
	if !ok {
		return 0, fmt.Errorf("%w: tensor %s: unknown dtype %q", ErrFormat, e.Name, e.DType)
	}
	if e.Name == "" || e.Name == MetadataKey {
		return 0, fmt.Errorf("%w: tensor name %q", ErrFormat, e.Name)
	}
	n := int64(size)
	for _, d := range e.Shape {
		if d < 0 || (d > 0 && n > math.MaxInt64/d) {
			return 0, fmt.Errorf("%w: tensor %s: shape %v", ErrFormat, e.Name, e.Shape)
		}
		n *= d
	}
	return n, nil
}

// StreamWriter writes a safetensors file whose tensors do not fit in memory together: the header is
// written first from the entries' names, dtypes and shapes, then each tensor's bytes, one tensor at a
// time, in name order (the layout Marshal uses, so both writers give the same bytes).
type StreamWriter struct {
	w       *bufio.Writer
	entries []Entry
	sizes   []int64
	next    int
	err     error
}

// NewStreamWriter writes the header of a file holding entries (any order; they are laid out by name)
// and metadata to w. The caller then calls Write once per entry, in Order.
func NewStreamWriter(w io.Writer, entries []Entry, metadata map[string]string) (*StreamWriter, error) {
	es := slices.Clone(entries)
	sort.Slice(es, func(i, j int) bool { return es[i].Name < es[j].Name })
	var hdr bytes.Buffer
	hdr.WriteByte('{')
	if len(metadata) > 0 {
		m, err := json.Marshal(metadata)
		if err != nil {
			return nil, fmt.Errorf("safetensors: metadata: %w", err)
		}
		hdr.WriteString(`"` + MetadataKey + `":`)
		hdr.Write(m)
	}
	sizes := make([]int64, len(es))
	var off int64
	for i, e := range es {
		n, err := e.bytes()
		if err != nil {
			return nil, err
		}
		if i > 0 && es[i-1].Name == e.Name {
			return nil, fmt.Errorf("%w: duplicate tensor %s", ErrFormat, e.Name)
		}
		sizes[i] = n
		if hdr.Len() > 1 {
			hdr.WriteByte(',')
		}
		shape := e.Shape
		if shape == nil {
			shape = []int64{}
		}
		name, _ := json.Marshal(e.Name)
		entry, _ := json.Marshal(struct {
			DType   string   `json:"dtype"`
			Shape   []int64  `json:"shape"`
			Offsets [2]int64 `json:"data_offsets"`
		}{e.DType, shape, [2]int64{off, off + n}})
		hdr.Write(name)
		hdr.WriteByte(':')
		hdr.Write(entry)
		off += n
	}
	hdr.WriteByte('}')
	for hdr.Len()%8 != 0 {
		hdr.WriteByte(' ')
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(hdr.Len()))
	bw.Write(n[:])
	if _, err := bw.Write(hdr.Bytes()); err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	return &StreamWriter{w: bw, entries: es, sizes: sizes}, nil
}

// Order is the entries in the order Write must receive them.
func (s *StreamWriter) Order() []Entry { return slices.Clone(s.entries) }

// Write writes the data of the next tensor in Order, which must be named name and have its size.
func (s *StreamWriter) Write(name string, data []byte) error {
	if s.err != nil {
		return s.err
	}
	switch {
	case s.next >= len(s.entries):
		s.err = fmt.Errorf("%w: tensor %s: every tensor was already written", ErrFormat, name)
	case s.entries[s.next].Name != name:
		s.err = fmt.Errorf("%w: tensor %s written where %s is due", ErrFormat, name, s.entries[s.next].Name)
	case int64(len(data)) != s.sizes[s.next]:
		s.err = fmt.Errorf("%w: tensor %s: %d bytes, want %d", ErrFormat, name, len(data), s.sizes[s.next])
	}
	if s.err != nil {
		return s.err
	}
	if _, err := s.w.Write(data); err != nil {
		s.err = fmt.Errorf("safetensors: %w", err)
		return s.err
	}
	s.next++
	return nil
}

// Close flushes the buffered data; it fails if a tensor was not written.
func (s *StreamWriter) Close() error {
	if s.err != nil {
		return s.err
	}
	if s.next != len(s.entries) {
		return fmt.Errorf("%w: %d of %d tensors written (next: %s)", ErrFormat, s.next, len(s.entries), s.entries[s.next].Name)
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}

// WriteStream writes a safetensors file at path whose tensor data comes from fill, called once per
// entry in name order, so only one tensor need be in memory at a time. The file is written under a
// temporary name in the same folder and renamed into place when complete.
func WriteStream(path string, entries []Entry, metadata map[string]string, fill func(e Entry) ([]byte, error)) (err error) {
	tmp := path + ".partial"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	sw, err := NewStreamWriter(f, entries, metadata)
	if err != nil {
		return err
	}
	for _, e := range sw.Order() {
		data, err := fill(e)
		if err != nil {
			return fmt.Errorf("safetensors: %s: tensor %s: %w", path, e.Name, err)
		}
		if err := sw.Write(e.Name, data); err != nil {
			return err
		}
	}
	if err := sw.Close(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return os.Rename(tmp, path)
}
