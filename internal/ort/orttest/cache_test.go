package orttest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestIsolateCache(t *testing.T) {
	before, beforeErr := os.UserCacheDir()
	goCache, goCacheSet := os.LookupEnv("GOCACHE")
	restore, err := IsolateCache()
	if err != nil {
		t.Fatal(err)
	}
	during, err := os.UserCacheDir()
	if err != nil {
		restore()
		t.Fatal(err)
	}
	if during == before || !strings.HasPrefix(during, filepath.Clean(os.TempDir())+string(filepath.Separator)) {
		t.Errorf("cache folder during the tests %s (before %s): want a fresh one under %s", during, before, os.TempDir())
	}
	if beforeErr == nil && !goCacheSet && os.Getenv("GOCACHE") != filepath.Join(before, "go-build") {
		t.Errorf("GOCACHE %q: want the build cache pinned to %s", os.Getenv("GOCACHE"), filepath.Join(before, "go-build"))
	}
	if err := os.MkdirAll(filepath.Join(during, "rflow", "ort-cache"), 0o755); err != nil {
		t.Fatal(err)
	}
	restore()
	if after, _ := os.UserCacheDir(); after != before {
		t.Errorf("cache folder after restore %s, want %s", after, before)
	}
	if v, set := os.LookupEnv("GOCACHE"); v != goCache || set != goCacheSet {
		t.Errorf("GOCACHE after restore %q (set %t), want %q (set %t)", v, set, goCache, goCacheSet)
	}
	if _, err := os.Stat(during); !os.IsNotExist(err) {
		t.Errorf("the temporary cache %s was not removed: %v", during, err)
	}
}

// TestStaleCachesRemoved: a folder a killed test binary left behind goes; a recent one (another test
// binary's, in use) stays.
func TestStaleCachesRemoved(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	stale, fresh := filepath.Join(tmp, cachePrefix+"1"), filepath.Join(tmp, cachePrefix+"2")
	for _, p := range []string{stale, fresh} {
		if err := os.MkdirAll(filepath.Join(p, "rflow"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleCache)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	restore, err := IsolateCache()
	if err != nil {
		t.Fatal(err)
	}
	restore()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale %s kept: %v", stale, err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("recent %s removed: %v", fresh, err)
	}
}
