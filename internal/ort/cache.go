package ort

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/rflowrt/rflow/internal/onnx"
)

// The optimized-graph cache. On a miss, ORT optimizes the model as usual and also writes the result
// (graph + weights as external data) into a fresh directory, which is renamed into place only once the
// session loaded, so a crash never leaves half an entry. On a hit, the saved graph is loaded with
// optimizations off. An ORT_ENABLE_ALL graph may hold CPU-specific kernels (NCHWc layouts), so the key
// covers the CPU as well as the model, the ORT version, the provider and the level.

const cachedModelName = "model.onnx"

// cacheable: TensorRT keeps its own engine cache (set up in appendProvider); CoreML and DirectML
// compile or fuse nodes in ways ORT cannot save as ONNX.
func cacheable(o SessionOptions) bool {
	return o.CacheDir != "" && (o.Provider == "" || o.Provider == CPU || o.Provider == CUDA)
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
func loadCached(cacheDir, key string, level OptLevel, so *ortgo.SessionOptions, in, out []string, load loadFunc) (*ortgo.DynamicAdvancedSession, bool, error) {
	entry := filepath.Join(cacheDir, key)
	cachedModel := filepath.Join(entry, cachedModelName)
	if _, err := os.Stat(cachedModel); err == nil {
		if err := so.SetGraphOptimizationLevel(ortgo.GraphOptimizationLevelDisableAll); err != nil {
			return nil, false, err
		}
		if s, err := load(so, in, out, cachedModel); err == nil {
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
	return s, false, nil
}
