package pipeline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/ort/orttest"
)

func TestMain(m *testing.M) { orttest.Main(m) }

// TestUserCacheIsolated: the package's tests (demo folders, optimized-graph caches) write into a
// temporary cache folder, never the user's.
func TestUserCacheIsolated(t *testing.T) {
	dir, err := os.UserCacheDir()
	if err != nil || !strings.Contains(dir, filepath.Join(os.TempDir(), "rflow-test-cache-")) {
		t.Fatalf("os.UserCacheDir() = %q, %v: want the temporary folder orttest.Main sets", dir, err)
	}
}
