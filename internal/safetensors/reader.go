package safetensors

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"sync"
)

// ErrNotFound is wrapped by the error for a tensor name a file does not hold.
var ErrNotFound = errors.New("no such tensor")

// ErrClosed is wrapped by the errors of a Reader used after Close.
var ErrClosed = errors.New("reader is closed")

// Reader reads the tensors of one safetensors file without loading it: Open reads and checks the
// header, the data is mapped read-only (on unix; read with ReadAt elsewhere), and each tensor is
// converted only when asked for. Resident memory is the header plus, while a tensor is converted, its
// bytes and its float32 result: the conversions drop the file's pages again when they are done.
//
// The file must not be truncated or rewritten in place while it is open (replacing it by a rename is
// fine: the mapping keeps the old file). If it is, the conversions and Fingerprint return an error,
// but reading a slice from Raw crashes the program (SIGBUS), as with any memory-mapped file.
//
// Unlike ReadFile, a Reader accepts gaps between tensors and bytes after the last one (the format's
// reference reader does not), since neither is a hazard for a reader that goes by the offsets.
//
// The methods may be called from several goroutines at once, but not concurrently with Close.
type Reader struct {
	path string
	src  source
	hdr  *header

	fingerprintOnce sync.Once
	fingerprint     string
	fingerprintErr  error
}

// Open opens a safetensors file and validates its header: the length, the JSON, every tensor's dtype,
// shape and data offsets against the file's size, and that no two tensors overlap. Every error about
// the file's content names the file (as path) and the tensor, and wraps ErrFormat.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrFormat, path)
	}
	src, err := openSource(f, st.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	r, err := newReader(path, src)
	if err != nil {
		src.close()
		return nil, err
	}
	return r, nil
}

// newReader parses the header of src; path names the file in errors.
func newReader(path string, src source) (r *Reader, err error) {
	defer catchFault(path, &err)()
	hdr, err := parseHeader(path, src)
	if err != nil {
		return nil, err
	}
	src.release(0, 8+hdr.length)
	return &Reader{path: path, src: src, hdr: hdr}, nil
}

// Path is the path the file was opened with.
func (r *Reader) Path() string { return r.path }

// Names lists the tensors, sorted.
func (r *Reader) Names() []string { return slices.Clone(r.hdr.names) }

// Info describes the tensor called name.
func (r *Reader) Info(name string) (TensorInfo, bool) {
	t, ok := r.hdr.tensors[name]
	if !ok {
		return TensorInfo{}, false
	}
	info := *t
	info.Shape = slices.Clone(t.Shape)
	return info, true
}

// Metadata is the header's "__metadata__" map (a copy; nil when the file has none).
func (r *Reader) Metadata() map[string]string { return maps.Clone(r.hdr.metadata) }

// Close releases the mapping (or the file). Slices returned by Raw must not be used afterwards.
func (r *Reader) Close() error {
	if r.src == nil {
		return nil
	}
	err := r.src.close()
	r.src = nil
	if err != nil {
		return fmt.Errorf("safetensors: close %s: %w", r.path, err)
	}
	return nil
}

// tensor finds name and checks that the reader is open.
func (r *Reader) tensor(name string) (*TensorInfo, error) {
	if r.src == nil {
		return nil, fmt.Errorf("safetensors: %s: %w", r.path, ErrClosed)
	}
	t, ok := r.hdr.tensors[name]
	if !ok {
		return nil, fmt.Errorf("safetensors: %s: tensor %q: %w", r.path, name, ErrNotFound)
	}
	return t, nil
}

// Raw returns the tensor's little-endian bytes. Where the file is mapped this is a view into the
// mapping, not a copy: it is read-only (writing to it crashes the program) and valid until Close.
// Touching its pages adds them to the process's resident set; Release drops them again.
func (r *Reader) Raw(name string) ([]byte, error) {
	t, err := r.tensor(name)
	if err != nil {
		return nil, err
	}
	b, err := r.src.slice(t.Offset, t.Size)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: tensor %q: %w", r.path, name, err)
	}
	return b, nil
}

// Release tells the reader that the tensor's bytes will not be read for a while: where the file is
// mapped its pages leave the process's resident set (they stay in the page cache, and slices from Raw
// stay valid and are read back on the next access). Float32 and Float32Rows release what they read
// themselves; a converter that streams Raw views calls Release after each tensor to keep its resident
// memory near one tensor rather than the whole file.
func (r *Reader) Release(name string) {
	if t, err := r.tensor(name); err == nil {
		r.src.release(t.Offset, t.Size)
	}
}

// Float32 converts the whole tensor to float32 (see Float32Rows for the conversions).
func (r *Reader) Float32(name string) ([]float32, error) {
	t, err := r.tensor(name)
	if err != nil {
		return nil, err
	}
	return r.convert(t, 0, t.Elements())
}

// Float32Rows converts rows [start, end) of the tensor's first dimension to float32, reading only those
// rows (for example one of q, k, v out of a fused qkv weight). The result holds (end-start) × the
// product of the other dimensions values, in the file's row-major order.
//
// Conversions are exact from F32, F16, BF16, F8_E4M3 (e4m3fn: no infinities, 0x7f and 0xff are NaN),
// F8_E5M2 and the integers up to 24 bits; F64 and wider integers are rounded to the nearest float32
// (ties to even); BOOL gives 0 or 1.
func (r *Reader) Float32Rows(name string, start, end int64) ([]float32, error) {
	t, err := r.tensor(name)
	if err != nil {
		return nil, err
	}
	if len(t.Shape) == 0 {
		return nil, fmt.Errorf("safetensors: %s: tensor %q is a scalar and has no rows", r.path, name)
	}
	rows := t.Shape[0]
	if start < 0 || end < start || end > rows {
		return nil, fmt.Errorf("safetensors: %s: tensor %q: rows [%d,%d) outside its %d rows", r.path, name, start, end, rows)
	}
	if rows == 0 {
		return []float32{}, nil
	}
	perRow := t.Elements() / rows
	return r.convert(t, start*perRow, end*perRow)
}

// convert decodes elements [from, to) of t.
func (r *Reader) convert(t *TensorInfo, from, to int64) (out []float32, err error) {
	size := int64(dtypeSizes[t.DType])
	off, n := t.Offset+from*size, (to-from)*size
	if to-from > math.MaxInt/4 {
		return nil, fmt.Errorf("safetensors: %s: tensor %q: %d elements do not fit in memory on this platform", r.path, t.Name, to-from)
	}
	b, err := r.src.slice(off, n)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: tensor %q: %w", r.path, t.Name, err)
	}
	defer r.src.release(off, n)
	defer catchFault(r.path, &err)()
	out = make([]float32, to-from)
	decodeFloat32(out, b, t.DType)
	return out, nil
}

// Fingerprint identifies the file's content cheaply, for caching what is derived from it: the hex
// SHA-256 of the header, the file size and the first and last MiB of the data (the whole data when it
// is shorter). The header lists every tensor's name, dtype, shape and offsets, so any change of layout
// changes it; the data samples catch a file re-saved with the same layout but other weights (a
// fine-tune, another precision of the same values), without reading gigabytes. It does not catch an
// edit confined to the middle of the data; modification times are not used because copies, downloads
// and extraction change them without changing the content.
func (r *Reader) Fingerprint() (string, error) {
	r.fingerprintOnce.Do(func() { r.fingerprint, r.fingerprintErr = r.computeFingerprint() })
	return r.fingerprint, r.fingerprintErr
}

// sampleBytes is how much of each end of the data Fingerprint hashes.
const sampleBytes = 1 << 20

func (r *Reader) computeFingerprint() (fp string, err error) {
	if r.src == nil {
		return "", fmt.Errorf("safetensors: %s: %w", r.path, ErrClosed)
	}
	defer catchFault(r.path, &err)()
	size := r.src.size()
	dataStart := 8 + r.hdr.length
	dataLen := size - dataStart
	h := sha256.New()
	h.Write([]byte("safetensors fingerprint v1\x00"))
	h.Write(binary.LittleEndian.AppendUint64(nil, uint64(size)))
	ranges := [][2]int64{{0, dataStart}} // the length prefix and the header
	if dataLen <= 2*sampleBytes {
		ranges = append(ranges, [2]int64{dataStart, dataLen})
	} else {
		ranges = append(ranges, [2]int64{dataStart, sampleBytes}, [2]int64{size - sampleBytes, sampleBytes})
	}
	for _, rg := range ranges {
		b, err := r.src.slice(rg[0], rg[1])
		if err != nil {
			return "", fmt.Errorf("safetensors: %s: fingerprint: %w", r.path, err)
		}
		h.Write(b)
		r.src.release(rg[0], rg[1])
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
