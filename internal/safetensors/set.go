package safetensors

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
)

// Set reads the tensors of several safetensors files as one checkpoint: the shards of a sharded
// checkpoint (OpenIndex) or any list of files (OpenSet). Every tensor name lives in exactly one file.
// Like Reader, its methods may be called concurrently, but not with Close.
type Set struct {
	readers []*Reader
	owner   map[string]*Reader
	names   []string
}

// maxIndex bounds the size of an index file read into memory (real ones are well under 1 MB).
const maxIndex = MaxHeader

// OpenSet opens the files at paths as one Set.
func OpenSet(paths ...string) (*Set, error) {
	readers := make([]*Reader, 0, len(paths))
	for _, p := range paths {
		r, err := Open(p)
		if err != nil {
			closeAll(readers)
			return nil, err
		}
		readers = append(readers, r)
	}
	return NewSet(readers...)
}

// NewSet joins open readers into a Set, which then owns them (Set.Close closes them, also when NewSet
// fails). A tensor name held by two of them is an error naming both files.
func NewSet(readers ...*Reader) (*Set, error) {
	s := &Set{readers: readers, owner: map[string]*Reader{}}
	for _, r := range readers {
		for _, name := range r.hdr.names {
			if other, dup := s.owner[name]; dup {
				closeAll(readers)
				return nil, fmt.Errorf("%w: tensor %q is in both %s and %s", ErrFormat, name, other.path, r.path)
			}
			s.owner[name] = r
			s.names = append(s.names, name)
		}
	}
	sort.Strings(s.names)
	return s, nil
}

// index is a *.safetensors.index.json file as diffusers and transformers write it.
type index struct {
	Metadata  map[string]any    `json:"metadata"`
	WeightMap map[string]string `json:"weight_map"`
}

// OpenIndex opens a sharded checkpoint through its index (a diffusers or transformers
// *.safetensors.index.json: {"metadata": {...}, "weight_map": {tensor: file}}). Each file the weight
// map names is opened once, relative to the index's folder; every tensor the map lists must be in the
// file it names. The Set holds every tensor of those files.
func OpenIndex(indexPath string) (*Set, error) {
	f, err := os.Open(indexPath)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	text, err := io.ReadAll(io.LimitReader(f, maxIndex+1))
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", indexPath, err)
	}
	if len(text) > maxIndex {
		return nil, fmt.Errorf("%w: %s: index larger than %d bytes", ErrFormat, indexPath, maxIndex)
	}
	var idx index
	dec := json.NewDecoder(bytes.NewReader(text))
	if err := dec.Decode(&idx); err != nil {
		return nil, fmt.Errorf("%w: %s: index JSON: %v", ErrFormat, indexPath, oneLine(err))
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("%w: %s: index has no weight_map", ErrFormat, indexPath)
	}
	dir := filepath.Dir(indexPath)
	var files []string
	for name, file := range idx.WeightMap {
		if !filepath.IsLocal(filepath.FromSlash(file)) {
			return nil, fmt.Errorf("%w: %s: tensor %q: file %q is not a path inside the index's folder", ErrFormat, indexPath, name, file)
		}
		files = append(files, file)
	}
	slices.Sort(files)
	files = slices.Compact(files)
	paths := make([]string, len(files))
	for i, file := range files {
		paths[i] = filepath.Join(dir, filepath.FromSlash(file))
	}
	s, err := OpenSet(paths...) // its errors name the shard
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(idx.WeightMap))
	for name := range idx.WeightMap {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		want := filepath.Join(dir, filepath.FromSlash(idx.WeightMap[name]))
		if got := s.Source(name); got != want {
			s.Close()
			where := "no file of the index has it"
			if got != "" {
				where = "it is in " + got
			}
			return nil, fmt.Errorf("%w: %s: weight_map puts tensor %q in %s, which lacks it (%s)", ErrFormat, indexPath, name, want, where)
		}
	}
	return s, nil
}

func closeAll(readers []*Reader) {
	for _, r := range readers {
		r.Close()
	}
}

// Close closes every file; it returns the first error.
func (s *Set) Close() error {
	var errs []error
	for _, r := range s.readers {
		errs = append(errs, r.Close())
	}
	return errors.Join(errs...)
}

// Names lists the tensors of all files, sorted.
func (s *Set) Names() []string { return slices.Clone(s.names) }

// Files lists the paths of the files, in the order they were opened.
func (s *Set) Files() []string {
	paths := make([]string, len(s.readers))
	for i, r := range s.readers {
		paths[i] = r.path
	}
	return paths
}

// Source is the path of the file holding name, or "" when no file does.
func (s *Set) Source(name string) string {
	if r, ok := s.owner[name]; ok {
		return r.path
	}
	return ""
}

// Info describes the tensor called name (its Offset is within the file Source names).
func (s *Set) Info(name string) (TensorInfo, bool) {
	if r, ok := s.owner[name]; ok {
		return r.Info(name)
	}
	return TensorInfo{}, false
}

// Metadata merges the files' "__metadata__" maps; where two files disagree on a key, the file opened
// first wins.
func (s *Set) Metadata() map[string]string {
	var m map[string]string
	for _, r := range s.readers {
		for k, v := range r.hdr.metadata {
			if m == nil {
				m = map[string]string{}
			}
			if _, ok := m[k]; !ok {
				m[k] = v
			}
		}
	}
	return m
}

// reader finds the file of name.
func (s *Set) reader(name string) (*Reader, error) {
	r, ok := s.owner[name]
	if !ok {
		return nil, fmt.Errorf("safetensors: tensor %q: %w in %d files", name, ErrNotFound, len(s.readers))
	}
	return r, nil
}

// Raw is Reader.Raw on the file holding name.
func (s *Set) Raw(name string) ([]byte, error) {
	r, err := s.reader(name)
	if err != nil {
		return nil, err
	}
	return r.Raw(name)
}

// Release is Reader.Release on the file holding name.
func (s *Set) Release(name string) {
	if r, err := s.reader(name); err == nil {
		r.Release(name)
	}
}

// Float32 is Reader.Float32 on the file holding name.
func (s *Set) Float32(name string) ([]float32, error) {
	r, err := s.reader(name)
	if err != nil {
		return nil, err
	}
	return r.Float32(name)
}

// Float32Rows is Reader.Float32Rows on the file holding name.
func (s *Set) Float32Rows(name string, start, end int64) ([]float32, error) {
	r, err := s.reader(name)
	if err != nil {
		return nil, err
	}
	return r.Float32Rows(name, start, end)
}

// Fingerprint identifies the content of all files (see Reader.Fingerprint): the SHA-256 of their
// fingerprints, sorted, so it does not depend on the order or the names of the files.
func (s *Set) Fingerprint() (string, error) {
	fps := make([]string, len(s.readers))
	for i, r := range s.readers {
		fp, err := r.Fingerprint()
		if err != nil {
			return "", err
		}
		fps[i] = fp
	}
	slices.Sort(fps)
	h := sha256.New()
	h.Write([]byte("safetensors set fingerprint v1\x00"))
	for _, fp := range fps {
		h.Write([]byte(fp))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
