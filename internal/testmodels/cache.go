package testmodels

import (
	"crypto/sha256"
	"embed"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rflowrt/rflow/internal/compiler/arch"
)

// GeneratorVersion is part of every cache key. The package's own sources, the graph builders' sources
// (internal/compiler/arch) and the configs it patches are hashed into the key too, so bump it only when
// something else (internal/onnx's encoding) changes the bytes Write produces.
const GeneratorVersion = "1"

// sources are this package's Go files, hashed into the cache key so that a changed generator never
// reuses a folder written by an older one.
//
//go:embed *.go
var sources embed.FS

// generatorHash is the hash of GeneratorVersion and the package's non-test sources.
var generatorHash = sync.OnceValue(func() string {
	h := newHasher()
	h.addString("version", GeneratorVersion)
	err := fs.WalkDir(sources, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || strings.HasSuffix(p, "_test.go") {
			return err
		}
		data, err := sources.ReadFile(p)
		if err == nil {
			h.addBytes(p, data)
		}
		return err
	})
	if err != nil {
		panic(err) // embedded files are always readable
	}
	return h.sum()
})

// hasher hashes named, length-prefixed entries, so different file sets never collide by concatenation.
type hasher struct{ h hash.Hash }

func newHasher() *hasher { return &hasher{sha256.New()} }

func (h *hasher) header(name string, size int64) {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(name)))
	h.h.Write(n[:])
	io.WriteString(h.h, name)
	binary.LittleEndian.PutUint64(n[:], uint64(size))
	h.h.Write(n[:])
}

func (h *hasher) addString(name, s string) { h.addBytes(name, []byte(s)) }

func (h *hasher) addBytes(name string, data []byte) {
	h.header(name, int64(len(data)))
	h.h.Write(data)
}

func (h *hasher) addFile(name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	h.header(name, st.Size())
	n, err := io.Copy(h.h, f)
	if err == nil && n != st.Size() {
		err = fmt.Errorf("testmodels: %s changed size while being hashed", path)
	}
	return err
}

func (h *hasher) sum() string { return hex.EncodeToString(h.h.Sum(nil)) }

// cacheKey identifies the folder Write(o) produces with this generator.
func cacheKey(o Options) (string, error) {
	o, err := o.normalized()
	if err != nil {
		return "", err
	}
	src, err := o.tokenizerSource()
	if err != nil {
		return "", err
	}
	configs, label, err := o.configSource()
	if err != nil {
		return "", err
	}
	h := newHasher()
	h.addString("generator", generatorHash())
	h.addString("builders", arch.SourcesDigest()) // the graph code lives in internal/compiler/arch
	h.addString("configs", label)
	err = fs.WalkDir(configs, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		data, err := fs.ReadFile(configs, p)
		if err == nil {
			h.addBytes(p, data)
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("testmodels: hash configs: %w", err)
	}
	h.addString("options", fmt.Sprintf("%s|%s|%d|%d|%t|%d|%t|%s", o.Kind, o.Size, o.IDs, o.Precision, o.ExternalData, o.Seed, o.BF16Weights, src))
	return h.sum()[:24], nil
}

var (
	cacheMu    sync.Mutex
	cacheLocks = map[string]*sync.Mutex{}
)

// CachedDir returns a folder Write(o) produced, writing it only when this machine has none yet: it
// lives at os.TempDir()/rflow-testmodels-<key>, where the key hashes the options, the tokenizer
// source and the generator. A folder is written under a temporary name and renamed into place, so
// concurrent test binaries never see a partial one (two may both write it; one rename wins).
// Callers must not modify the folder.
func CachedDir(o Options) (string, error) {
	key, err := cacheKey(o)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(os.TempDir(), "rflow-testmodels-"+key)
	cacheMu.Lock()
	mu := cacheLocks[key]
	if mu == nil {
		mu = &sync.Mutex{}
		cacheLocks[key] = mu
	}
	cacheMu.Unlock()
	mu.Lock() // one writer per key in this process
	defer mu.Unlock()
	if st, err := os.Stat(filepath.Join(dir, "model_index.json")); err == nil && st.Mode().IsRegular() {
		return dir, nil
	}
	tmp, err := os.MkdirTemp(os.TempDir(), "rflow-testmodels-"+key+".tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // a no-op after a successful rename
	if err := Write(tmp, o); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, statErr := os.Stat(filepath.Join(dir, "model_index.json")); statErr == nil {
			return dir, nil // another process renamed its copy first
		}
		return "", fmt.Errorf("testmodels: cache %s: %w", dir, err)
	}
	return dir, nil
}

// Cached is CachedDir for tests and benchmarks: it fails tb on an error.
func Cached(tb testing.TB, o Options) string {
	tb.Helper()
	dir, err := CachedDir(o)
	if err != nil {
		tb.Fatalf("testmodels: cached %s folder: %v", o.Kind, err)
	}
	return dir
}
