package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/ort/orttest"
)

// TestMain runs the CLI tests with a temporary user cache folder: txt2img keeps ONNX Runtime's
// optimized graphs and the demo folders there, and tests must not write into the user's.
func TestMain(m *testing.M) { os.Exit(orttest.RunIsolated(m)) }

func TestUserCacheIsolated(t *testing.T) {
	dir, err := os.UserCacheDir()
	if err != nil || !strings.Contains(dir, filepath.Join(os.TempDir(), "rflow-test-cache-")) {
		t.Fatalf("os.UserCacheDir() = %q, %v: want the temporary folder TestMain sets", dir, err)
	}
}
