package testmodels

import (
	"crypto/sha256"
	"embed"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

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
	h.addString("options", fmt.Sprintf("%s|%s|%d|%d|%t|%d|%t|%s|%s|%s", o.Kind, o.Size, o.IDs, o.Precision, o.ExternalData, o.Seed, o.BF16Weights, src, o.Edit, o.Layout))
	return h.sum()[:24], nil
}

// The fixture cache: a folder per key under cacheRoot, holding the model folder and the hash it was
// written with.
const (
	// CacheEnv names the folder that holds the fixture cache instead of os.TempDir()/rflow-testmodels.
	CacheEnv = "RFLOW_TESTMODELS_CACHE"
	// cacheMaxAge is how long an entry is kept after it was last used: nothing stays in /tmp forever.
	cacheMaxAge = 3 * 24 * time.Hour
	// cacheTouchAfter is how stale an entry's last-use time may get before a hit renews it.
	cacheTouchAfter = time.Hour
	// cacheStaleTemp is the age after which a half-written or discarded folder is certainly abandoned.
	cacheStaleTemp = time.Hour
	// cacheHashFile, in an entry, holds FolderHash of the model folder as written; its mtime is the
	// entry's last use.
	cacheHashFile = "sha256"
)

var (
	cacheMu     sync.Mutex
	cacheLocks  = map[string]*sync.Mutex{}
	cacheValid  = map[string]bool{} // entries whose content hash this process has checked
	cachePruned = map[string]bool{} // roots this process has pruned
)

// cacheRoot is the folder of the fixture cache.
func cacheRoot() string {
	if d := os.Getenv(CacheEnv); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "rflow-testmodels")
}

// CachedDir returns a folder Write(o) produced, writing it only when the cache has no intact copy:
// the cache keeps it at <root>/<key>/<kind>, where root is $RFLOW_TESTMODELS_CACHE or
// os.TempDir()/rflow-testmodels and the key hashes the options, the tokenizer source and the
// generator. An entry is used only when the folder's content hash equals the one recorded when it
// was written (checked once per process), so a damaged or half-deleted folder is rewritten, not
// used. An entry is written under a temporary name and renamed into place, so concurrent test
// binaries never see a partial one (two may both write it; one rename wins). Entries unused for
// three days, abandoned temporary folders and the flat rflow-testmodels-<key> folders of earlier
// versions are removed. Callers must not modify the folder.
func CachedDir(o Options) (string, error) {
	key, err := cacheKey(o)
	if err != nil {
		return "", err
	}
	o, _ = o.normalized()
	root := cacheRoot()
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("testmodels: cache: %w", err)
	}
	entry := filepath.Join(root, key)
	dir := filepath.Join(entry, string(o.Kind))
	cacheMu.Lock()
	if !cachePruned[root] {
		cachePruned[root] = true
		pruneCache(root, time.Now())
	}
	mu := cacheLocks[entry]
	if mu == nil {
		mu = &sync.Mutex{}
		cacheLocks[entry] = mu
	}
	cacheMu.Unlock()
	mu.Lock() // one writer per entry in this process
	defer mu.Unlock()
	for attempt := 0; ; attempt++ {
		ok, err := cacheHit(entry, dir)
		if err != nil {
			return "", err
		}
		if ok {
			return dir, nil
		}
		if attempt == 2 {
			return "", fmt.Errorf("testmodels: cache %s: another process keeps replacing it", entry)
		}
		if err := writeCacheEntry(root, key, entry, o); err != nil {
			return "", err
		}
	}
}

// cacheHit reports whether entry holds an intact folder, verifying its content hash once per
// process; a damaged entry is moved aside and removed.
func cacheHit(entry, dir string) (bool, error) {
	cacheMu.Lock()
	valid := cacheValid[entry]
	cacheMu.Unlock()
	hashFile := filepath.Join(entry, cacheHashFile)
	want, err := os.ReadFile(hashFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if _, statErr := os.Stat(entry); errors.Is(statErr, fs.ErrNotExist) {
			return false, nil
		}
		// an entry without a hash is not one this cache wrote completely
	case err != nil:
		return false, fmt.Errorf("testmodels: cache: %w", err)
	case valid:
		touchEntry(hashFile)
		return true, nil
	default:
		if got, hashErr := FolderHash(dir); hashErr == nil && got == strings.TrimSpace(string(want)) {
			cacheMu.Lock()
			cacheValid[entry] = true
			cacheMu.Unlock()
			touchEntry(hashFile)
			return true, nil
		}
	}
	discardEntry(entry)
	return false, nil
}

// writeCacheEntry writes the folder and its hash under a temporary name and renames the whole entry
// into place. Losing the race to another process is not an error: its entry is as good.
func writeCacheEntry(root, key, entry string, o Options) error {
	tmp, err := os.MkdirTemp(root, key+".tmp-")
	if err != nil {
		return fmt.Errorf("testmodels: cache: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op after a successful rename
	dir := filepath.Join(tmp, string(o.Kind))
	if err := Write(dir, o); err != nil {
		return err
	}
	sum, err := FolderHash(dir)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, cacheHashFile), []byte(sum+"\n"), 0o644); err != nil {
		return fmt.Errorf("testmodels: cache: %w", err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, entry); err != nil {
		if _, statErr := os.Stat(filepath.Join(entry, cacheHashFile)); statErr == nil {
			return nil // another process renamed its copy first
		}
		return fmt.Errorf("testmodels: cache %s: %w", entry, err)
	}
	cacheMu.Lock()
	cacheValid[entry] = true
	cacheMu.Unlock()
	return nil
}

// discardEntry moves an entry aside (atomically, so no process sees it half-deleted) and removes it.
func discardEntry(entry string) {
	old := fmt.Sprintf("%s.old-%d-%d", entry, os.Getpid(), time.Now().UnixNano())
	if os.Rename(entry, old) == nil {
		os.RemoveAll(old)
	}
	cacheMu.Lock()
	delete(cacheValid, entry)
	cacheMu.Unlock()
}

// touchEntry renews an entry's last-use time when it is older than cacheTouchAfter.
func touchEntry(hashFile string) {
	if st, err := os.Stat(hashFile); err == nil && time.Since(st.ModTime()) > cacheTouchAfter {
		now := time.Now()
		_ = os.Chtimes(hashFile, now, now)
	}
}

// pruneCache removes entries not used for cacheMaxAge, temporary and discarded folders older than
// cacheStaleTemp, and the flat os.TempDir()/rflow-testmodels-<key> folders earlier versions left.
func pruneCache(root string, now time.Time) {
	old := func(path string, age time.Duration) bool {
		st, err := os.Stat(path)
		return err == nil && now.Sub(st.ModTime()) > age
	}
	if es, err := os.ReadDir(root); err == nil {
		for _, e := range es {
			p := filepath.Join(root, e.Name())
			switch {
			case strings.Contains(e.Name(), ".tmp-") || strings.Contains(e.Name(), ".old-"):
				if old(p, cacheStaleTemp) {
					os.RemoveAll(p)
				}
			case e.IsDir():
				hash := filepath.Join(p, cacheHashFile)
				if _, err := os.Stat(hash); err == nil {
					if old(hash, cacheMaxAge) {
						discardEntry(p)
					}
				} else if old(p, cacheStaleTemp) {
					discardEntry(p) // no hash: not written by this cache, or a crash mid-way
				}
			}
		}
	}
	legacy, _ := filepath.Glob(filepath.Join(os.TempDir(), "rflow-testmodels-*"))
	for _, p := range legacy {
		if old(p, cacheStaleTemp) {
			os.RemoveAll(p)
		}
	}
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
