package ort

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/ortopts"
)

// The optimized-graph cache. On a miss, ORT optimizes the model as usual and also writes the result
// (graph + weights as external data) into a fresh directory, which is renamed into place only once the
// session loaded, so a crash never leaves half an entry. On a hit, the saved graph is loaded with
// optimizations off. An ORT_ENABLE_ALL graph may hold CPU-specific kernels (NCHWc layouts), so the key
// covers the CPU as well as the model, the ORT version, the provider and the level.

const cachedModelName = "model.onnx"

// DefaultCacheMaxBytes is the optimized-graph cache's bound when SessionOptions.CacheMaxBytes is 0.
const DefaultCacheMaxBytes = ortopts.DefaultCacheMaxBytes

// NoCacheEnv names the environment variable that turns the optimized-graph cache off when set to
// anything but "", "0" or "false" (the CLI reads it; the library reads no environment).
const NoCacheEnv = "RFLOW_NO_CACHE"

// cacheable: TensorRT keeps its own engine cache (set up in appendProvider); CoreML and DirectML
// compile or fuse nodes in ways ORT cannot save as ONNX.
func cacheable(o SessionOptions) bool {
	return o.CacheDir != "" && (o.Provider == "" || o.Provider == CPU || o.Provider == CUDA)
}

// worthCaching says whether a model of modelBytes (file plus external data) goes into the cache. An
// entry holds the optimized graph and a copy of every initializer, so it is a second copy of the
// weights: a model that keeps its weights in external data files (the big ones) is never cached, nor
// one larger than half the bound (it would push out everything else). Loading from the cache only
// skips graph optimization, which is small next to reading the weights (a 2.3 GB FLUX transformer
// loaded no faster from its entry; a 100 MB model saves ~0.1 s).
func worthCaching(info *onnx.Info, modelBytes int64, o SessionOptions) bool {
	if info.ExternalData {
		return false
	}
	limit := cacheLimit(o)
	return limit < 0 || modelBytes <= limit/2
}

func cacheLimit(o SessionOptions) int64 {
	if o.CacheMaxBytes == 0 {
		return DefaultCacheMaxBytes
	}
	return o.CacheMaxBytes
}

// fileCacheKey hashes the model file; external data files, which can be many gigabytes, enter the key
// by name, size and modification time.
func fileCacheKey(path string, info *onnx.Info, o SessionOptions) (string, error) {
	h := sha256.New()
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	for _, ext := range info.ExternalFiles {
		fi, err := os.Stat(filepath.Join(dir, ext))
		if err != nil {
			return "", fmt.Errorf("external data of %s: %w", path, err)
		}
		fmt.Fprintf(h, "\x00%s\x00%d\x00%d", ext, fi.Size(), fi.ModTime().UnixNano())
	}
	return finishKey(h.Sum(nil), o), nil
}

func bytesCacheKey(data []byte, externalDir string, info *onnx.Info, o SessionOptions) string {
	h := sha256.New()
	h.Write(data)
	for _, ext := range info.ExternalFiles {
		if fi, err := os.Stat(filepath.Join(externalDir, ext)); err == nil {
			fmt.Fprintf(h, "\x00%s\x00%d\x00%d", ext, fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return finishKey(h.Sum(nil), o)
}

func finishKey(modelHash []byte, o SessionOptions) string {
	p := o.Provider
	if p == "" {
		p = CPU
	}
	h := sha256.New()
	fmt.Fprintf(h, "%x|%s|%s|%d|%s/%s|%s", modelHash, ortgo.GetVersion(), p, o.OptLevel, runtime.GOOS, runtime.GOARCH, cpuFeatures())
	return fmt.Sprintf("%s-ort%s-%s", hex.EncodeToString(h.Sum(nil))[:32], ortgo.GetVersion(), p)
}

// cpuFeatures is the CPU model and flag list on Linux (what decides which kernels ORT picks), else "".
func cpuFeatures() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	var model, flags string
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "model name":
			model = strings.TrimSpace(v)
		case "flags", "Features":
			flags = strings.TrimSpace(v)
		}
		if model != "" && flags != "" {
			break
		}
	}
	return model + "|" + flags
}

// loadCached loads from the cache entry for key, creating the entry on a miss.
func loadCached(cacheDir, key string, limit int64, level OptLevel, so *ortgo.SessionOptions, in, out []string, load loadFunc) (*ortgo.DynamicAdvancedSession, bool, error) {
	entry := filepath.Join(cacheDir, key)
	cachedModel := filepath.Join(entry, cachedModelName)
	if _, err := os.Stat(cachedModel); err == nil {
		if err := so.SetGraphOptimizationLevel(ortgo.GraphOptimizationLevelDisableAll); err != nil {
			return nil, false, err
		}
		if s, err := load(so, in, out, cachedModel); err == nil {
			touch(entry) // least recently used goes first
			return s, true, nil
		}
		// A damaged entry must not stop the user: drop it and rebuild it from the original model.
		_ = os.RemoveAll(entry)
		if err := so.SetGraphOptimizationLevel(ortLevel(level)); err != nil {
			return nil, false, err
		}
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, false, fmt.Errorf("optimized-graph cache: %w", err)
	}
	tmp, err := os.MkdirTemp(cacheDir, ".tmp-"+key+"-")
	if err != nil {
		return nil, false, fmt.Errorf("optimized-graph cache: %w", err)
	}
	defer os.RemoveAll(tmp) // no-op after a successful rename
	for k, v := range map[string]string{
		"session.optimized_model_external_initializers_file_name":         cachedModelName + ".data",
		"session.optimized_model_external_initializers_min_size_in_bytes": "1024",
	} {
		if err := so.AddSessionConfigEntry(k, v); err != nil {
			return nil, false, err
		}
	}
	if err := so.SetOptimizedModelFilePath(filepath.Join(tmp, cachedModelName)); err != nil {
		return nil, false, err
	}
	s, err := load(so, in, out, "")
	if err != nil {
		return nil, false, err
	}
	if err := os.Rename(tmp, entry); err != nil && !os.IsExist(err) {
		// Another process may have won the race; its entry is as good as ours.
		if _, statErr := os.Stat(cachedModel); statErr != nil {
			s.Destroy()
			return nil, false, fmt.Errorf("optimized-graph cache: %w", err)
		}
	}
	touch(entry)
	// Eviction failing (a file in use on some systems) must not fail the load; the next one retries.
	_ = evict(cacheDir, limit, entry, time.Now())
	return s, false, nil
}

// touch marks an entry as just used: eviction removes the entries with the oldest times first.
func touch(entry string) {
	now := time.Now()
	_ = os.Chtimes(entry, now, now)
}

// staleTemp is how old a .tmp- folder must be before eviction treats it as left by a killed process.
const staleTemp = 6 * time.Hour

// evict removes least recently used entries (folder modification time, which touch sets on every use)
// until the cache holds at most limit bytes, never removing keep, the entry just written. Temporary
// folders older than staleTemp are removed as well; younger ones may belong to a running load.
// A negative limit removes nothing but stale temporaries.
func evict(cacheDir string, limit int64, keep string, now time.Time) error {
	des, err := os.ReadDir(cacheDir)
	if err != nil {
		return err
	}
	type entry struct {
		path string
		size int64
		used time.Time
	}
	var entries []entry
	var total int64
	var errs []error
	for _, de := range des {
		if !de.IsDir() {
			continue
		}
		p := filepath.Join(cacheDir, de.Name())
		fi, err := de.Info()
		if err != nil {
			continue // removed meanwhile
		}
		if strings.HasPrefix(de.Name(), ".tmp-") {
			if now.Sub(fi.ModTime()) > staleTemp {
				errs = append(errs, os.RemoveAll(p))
			}
			continue
		}
		size := dirSize(p)
		total += size
		entries = append(entries, entry{p, size, fi.ModTime()})
	}
	if limit < 0 {
		return errors.Join(errs...)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].used.Before(entries[j].used) })
	for _, e := range entries {
		if total <= limit {
			break
		}
		if e.path == keep {
			continue
		}
		if err := os.RemoveAll(e.path); err != nil {
			errs = append(errs, err)
			continue
		}
		total -= e.size
	}
	return errors.Join(errs...)
}

// dirSize is the total size of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
