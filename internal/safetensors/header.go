package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// TensorInfo describes one tensor of a file, as its header lists it.
type TensorInfo struct {
	Name   string
	DType  string  // one of the format's dtypes: "F32", "BF16", "F8_E4M3", …
	Shape  []int64 // empty for a scalar
	Offset int64   // position of the tensor's first byte in the file
	Size   int64   // bytes of data: Elements() × the dtype's size
}

// Elements is the number of elements, the product of the shape (1 for a scalar).
func (t TensorInfo) Elements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// header is a parsed and validated header: entries by name, names sorted, the string metadata.
type header struct {
	length   int64 // bytes of JSON after the 8-byte length
	tensors  map[string]*TensorInfo
	names    []string
	metadata map[string]string
}

// rawEntry is one tensor's header entry as JSON spells it.
type rawEntry struct {
	DType   string  `json:"dtype"`
	Shape   []int64 `json:"shape"`
	Offsets []int64 `json:"data_offsets"`
}

// parseHeader reads and validates the header of the file behind src: the length, the JSON, and every
// entry against the size of the data that follows. Nothing is allocated from a size in the file before
// that size is checked against the file's length. path only names the file in errors.
func parseHeader(path string, src source) (*header, error) {
	size := src.size()
	if size < 8 {
		return nil, fmt.Errorf("%w: %s: file is %d bytes, too short for the 8-byte header length (truncated?)", ErrFormat, path, size)
	}
	lenBytes, err := src.slice(0, 8)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	n := binary.LittleEndian.Uint64(lenBytes)
	switch {
	case n == 0:
		return nil, fmt.Errorf("%w: %s: header length is 0", ErrFormat, path)
	case n > MaxHeader:
		return nil, fmt.Errorf("%w: %s: header length %d is over the %d-byte limit (not a safetensors file?)", ErrFormat, path, n, MaxHeader)
	case n > uint64(size-8):
		return nil, fmt.Errorf("%w: %s: header length %d runs past the end of the file (%d bytes; truncated?)", ErrFormat, path, n, size)
	}
	text, err := src.slice(8, int64(n))
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	h := &header{length: int64(n)}
	if err := h.parse(text, size-8-int64(n)); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrFormat, path, err)
	}
	return h, nil
}

// parse decodes the JSON text of a header and checks every entry against dataLen, the bytes after it.
func (h *header) parse(text []byte, dataLen int64) error {
	if !utf8.Valid(text) {
		return errors.New("header is not valid UTF-8")
	}
	if text[0] != '{' {
		return errors.New("header does not start with '{' (not a safetensors file?)")
	}
	type keyed struct {
		name string
		raw  json.RawMessage
	}
	var entries []keyed // in header order, so the first bad entry is the one reported
	seen := map[string]bool{}
	dec := json.NewDecoder(bytes.NewReader(text))
	if _, err := dec.Token(); err != nil {
		return jsonError(err, dec)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return jsonError(err, dec)
		}
		name := tok.(string) // object keys are always strings
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return jsonError(err, dec)
		}
		if seen[name] {
			return fmt.Errorf("tensor %q is listed twice", name)
		}
		seen[name] = true
		entries = append(entries, keyed{name, raw})
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return jsonError(err, dec)
	}
	if _, err := dec.Token(); err != io.EOF { // only the padding may follow
		return fmt.Errorf("header JSON: data after the object at byte %d", dec.InputOffset())
	}

	h.tensors = make(map[string]*TensorInfo, len(entries))
	h.names = make([]string, 0, len(entries))
	for _, e := range entries {
		if e.name == MetadataKey {
			if err := json.Unmarshal(e.raw, &h.metadata); err != nil {
				return fmt.Errorf("%s is not an object of strings: %v", MetadataKey, oneLine(err))
			}
			continue
		}
		t, err := checkEntry(e.name, e.raw, dataLen)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", e.name, err)
		}
		t.Offset += 8 + h.length
		h.tensors[e.name] = t
		h.names = append(h.names, e.name)
	}
	sort.Strings(h.names)
	return h.checkOverlaps()
}

// checkEntry decodes and validates one tensor's entry. The returned Offset is relative to the data.
func checkEntry(name string, raw json.RawMessage, dataLen int64) (*TensorInfo, error) {
	var e rawEntry
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("bad entry: %v", oneLine(err))
	}
	size, ok := dtypeSizes[e.DType]
	if !ok {
		return nil, fmt.Errorf("unknown dtype %q", e.DType)
	}
	if e.Shape == nil {
		return nil, errors.New("no shape")
	}
	if len(e.Offsets) != 2 {
		return nil, fmt.Errorf("data_offsets has %d numbers, want 2", len(e.Offsets))
	}
	// Bounding the element count by MaxInt64/size keeps elems*size from overflowing; the offsets check
	// below then bounds the size by the file.
	elems, err := elements64(e.Shape, math.MaxInt64/int64(size))
	if err != nil {
		return nil, err
	}
	begin, end := e.Offsets[0], e.Offsets[1]
	switch {
	case begin < 0 || end < begin:
		return nil, fmt.Errorf("data offsets %s are not an increasing pair of byte positions", offsets(begin, end))
	case end > dataLen:
		return nil, fmt.Errorf("data offsets %s past the end of the data (%d bytes; file truncated?)", offsets(begin, end), dataLen)
	case end-begin != elems*int64(size):
		return nil, fmt.Errorf("%s%s needs %d bytes but data offsets %s hold %d", e.DType, shapeString(e.Shape), elems*int64(size), offsets(begin, end), end-begin)
	}
	return &TensorInfo{Name: name, DType: e.DType, Shape: e.Shape, Offset: begin, Size: end - begin}, nil
}

// elements64 is the product of shape, or an error when a dimension is negative or the product
// exceeds limit (checked before each multiplication, so it cannot overflow).
func elements64(shape []int64, limit int64) (int64, error) {
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %s has a negative dimension", shapeString(shape))
		}
	}
	if slicesContainsZero(shape) {
		return 0, nil
	}
	n := int64(1)
	for _, d := range shape {
		if n > limit/d {
			return 0, fmt.Errorf("shape %s is too large to address in bytes", shapeString(shape))
		}
		n *= d
	}
	return n, nil
}

func slicesContainsZero(shape []int64) bool {
	for _, d := range shape {
		if d == 0 {
			return true
		}
	}
	return false
}

// checkOverlaps reports two non-empty tensors whose bytes overlap (empty ones may sit anywhere).
func (h *header) checkOverlaps() error {
	var spans []*TensorInfo
	for _, name := range h.names {
		if t := h.tensors[name]; t.Size > 0 {
			spans = append(spans, t)
		}
	}
	sort.SliceStable(spans, func(i, j int) bool { return spans[i].Offset < spans[j].Offset })
	for i := 1; i < len(spans); i++ {
		a, b := spans[i-1], spans[i]
		if b.Offset < a.Offset+a.Size {
			base := 8 + h.length
			return fmt.Errorf("tensors %q %s and %q %s overlap", a.Name, offsets(a.Offset-base, a.Offset-base+a.Size),
				b.Name, offsets(b.Offset-base, b.Offset-base+b.Size))
		}
	}
	return nil
}

func offsets(begin, end int64) string {
	return "[" + strconv.FormatInt(begin, 10) + "," + strconv.FormatInt(end, 10) + "]"
}

func shapeString(shape []int64) string {
	s := make([]string, len(shape))
	for i, d := range shape {
		s[i] = strconv.FormatInt(d, 10)
	}
	return "[" + strings.Join(s, ",") + "]"
}

// jsonError describes a JSON syntax or type error with its position in the header.
func jsonError(err error, dec *json.Decoder) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("header JSON at byte %d: %v", dec.InputOffset(), oneLine(err))
}

// oneLine keeps an error message (which may quote input) on one line.
func oneLine(err error) string {
	return strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(err.Error())
}
