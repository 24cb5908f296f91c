// Package orttest sets up ONNX Runtime for tests of packages that run models.
package orttest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/rflowrt/rflow/internal/ort"
)

// Library finds the ONNX Runtime library for tests: $RFLOW_ORT_LIB, else .ort/ in the working
// directory or the nearest parent (go test runs in the package directory; make setup installs into the
// module root).
func Library() string {
	if p := os.Getenv(ort.LibraryEnv); p != "" {
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		for _, name := range []string{"libonnxruntime.so.1", "libonnxruntime.1.24.3.dylib", "onnxruntime.dll"} {
			p := filepath.Join(dir, ".ort", name)
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Main initialises ONNX Runtime, runs the tests with the user's cache folder isolated (IsolateCache:
// sessions with a CacheDir under os.UserCacheDir and the demo folders go to a temporary folder,
// removed afterwards) and shuts ORT down. Without a library the tests are skipped with a message,
// except under CI (CI set), where that is a failure.
func Main(m *testing.M) {
	if err := ort.Init(ort.Config{LibraryPath: Library()}); err != nil {
		if os.Getenv("CI") != "" {
			fmt.Fprintf(os.Stderr, "FAIL: ONNX Runtime is required in CI: %v\n", err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "skipping tests that need ONNX Runtime: %v\n", err)
		os.Exit(0)
	}
	code := RunIsolated(m)
	_ = ort.Shutdown()
	os.Exit(code)
}

// Options are session options for tests: one intra-op thread and no spinning, since go test runs
// packages in parallel on few cores.
func Options() ort.SessionOptions {
	return ort.SessionOptions{IntraOpThreads: 1, NoSpinning: true}
}
