// Package ort is rflow's only cgo package: it finds and loads the ONNX Runtime library, owns the one
// process-wide ORT environment, and wraps sessions and typed tensors so that callers work with Go
// slices and the dtypes the model declares.
package ort

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	ortgo "github.com/yalue/onnxruntime_go"
)

// MinVersion is the oldest ONNX Runtime whose C API the onnxruntime_go wrapper (built against
// ORT_API_VERSION 24) can use.
const MinVersion = "1.24.0"

// apiVersion is ORT_API_VERSION of the wrapper; ORT 1.N serves API versions up to N.
const apiVersion = 24

// Config says which library to load and how loud ORT may be.
type Config struct {
	// LibraryPath is an explicit library (--ort-lib). Empty: FindLibrary's search order.
	LibraryPath string
	// Verbose lets ORT log warnings as well as errors (to stderr; ORT writes there itself).
	Verbose bool
}

// env is the process-wide ONNX Runtime environment: ORT allows one per process.
var env struct {
	mu          sync.Mutex
	path        string
	version     string
	sharedArena bool // the CPU arena of SessionOptions.SharedArena is registered
}

// registerSharedArena registers the environment's CPU arena that sessions with SharedArena use, once.
// It grows by what is asked (not to powers of two), since the sessions sharing it hold few, similar
// buffers.
func registerSharedArena() error {
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.sharedArena {
		return nil
	}
	mi, err := ortgo.GetMemoryInfo()
	if err != nil {
		return err
	}
	const sameAsRequested = 1
	cfg, err := ortgo.NewArenaCfg(0, sameAsRequested, -1, -1)
	if err != nil {
		return err
	}
	defer cfg.Destroy()
	if err := ortgo.CreateAndRegisterAllocator(mi, cfg); err != nil {
		return err
	}
	env.sharedArena = true
	return nil
}

// Init loads the ONNX Runtime library and creates the process-wide environment. Calling it again is a
// no-op when the same library is already loaded, and an error when a different one is asked for
// (a process cannot load two).
func Init(cfg Config) error {
	env.mu.Lock()
	defer env.mu.Unlock()
	path, err := FindLibrary(cfg.LibraryPath)
	if err != nil {
		return err
	}
	if env.path != "" {
		if env.path != path {
			return fmt.Errorf("ONNX Runtime already loaded from %s; cannot also load %s in one process", env.path, path)
		}
		return nil
	}
	version, hasAPI, err := probeLibrary(path)
	if err != nil {
		return fmt.Errorf("ONNX Runtime library: %w", err)
	}
	if version != "" && (!hasAPI || compareVersions(version, MinVersion) < 0) {
		return &VersionError{Version: version, Path: path}
	}
	ortgo.SetSharedLibraryPath(path)
	level := ortgo.WithLogLevelError()
	if cfg.Verbose {
		level = ortgo.WithLogLevelWarning()
	}
	if err := ortgo.InitializeEnvironment(level); err != nil {
		return fmt.Errorf("initialize ONNX Runtime from %s: %w", path, err)
	}
	_ = ortgo.DisableTelemetry() // telemetry is a no-op on Linux builds; failure here is harmless
	env.path, env.version = path, ortgo.GetVersion()
	return nil
}

// Initialized reports whether Init has succeeded.
func Initialized() bool {
	env.mu.Lock()
	defer env.mu.Unlock()
	return env.path != ""
}

// Version is the loaded library's version ("1.24.3"), or "" before Init.
func Version() string {
	env.mu.Lock()
	defer env.mu.Unlock()
	return env.version
}

// LibraryPath is the absolute path of the loaded library, or "" before Init.
func LibraryPath() string {
	env.mu.Lock()
	defer env.mu.Unlock()
	return env.path
}

// Shutdown destroys the environment. Sessions and tensors must be closed first.
func Shutdown() error {
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.path == "" {
		return nil
	}
	env.path, env.version, env.sharedArena = "", "", false
	return ortgo.DestroyEnvironment()
}

// VersionError says that the library found is older than MinVersion.
type VersionError struct {
	Version, Path string
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("ONNX Runtime %s at %s is too old: rflow needs %s or newer (C API %d)", e.Version, e.Path, MinVersion, apiVersion)
}

var errNotInitialized = errors.New("ONNX Runtime is not initialized (call ort.Init first)")

func checkInit() error {
	if !ortgo.IsInitialized() {
		return errNotInitialized
	}
	return nil
}

// compareVersions compares dotted numeric versions ("1.24.3" vs "1.24.0"); a non-numeric suffix in a
// part ("3-dev") is ignored.
func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) || i < len(pb); i++ {
		na, nb := versionPart(pa, i), versionPart(pb, i)
		if na != nb {
			if na < nb {
				return -1
			}
			return 1
		}
	}
	return 0
}

func versionPart(parts []string, i int) int {
	if i >= len(parts) {
		return 0
	}
	s := parts[i]
	end := 0
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	n, _ := strconv.Atoi(s[:end])
	return n
}
