package ort

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rflowrt/rflow/internal/onnx"
)

// writeEntry makes a cache entry of size bytes last used at used.
func writeEntry(t *testing.T, dir, name string, size int, used time.Time) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, cachedModelName+".data"), make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, used, used); err != nil {
		t.Fatal(err)
	}
	return p
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func TestEvictLeastRecentlyUsed(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	oldest := writeEntry(t, dir, "a", 1000, now.Add(-3*time.Hour))
	middle := writeEntry(t, dir, "b", 1000, now.Add(-2*time.Hour))
	newest := writeEntry(t, dir, "c", 1000, now.Add(-1*time.Hour))
	kept := writeEntry(t, dir, "d", 1000, now.Add(-4*time.Hour)) // just written, whatever its time
	freshTmp := writeEntry(t, dir, ".tmp-x-1", 5000, now.Add(-time.Minute))
	staleTmp := writeEntry(t, dir, ".tmp-y-2", 5000, now.Add(-7*time.Hour))
	if err := evict(dir, 2500, kept, now); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{oldest: false, middle: false, newest: true, kept: true, freshTmp: true, staleTmp: false} {
		if exists(p) != want {
			t.Errorf("%s: exists = %v, want %v", filepath.Base(p), !want, want)
		}
	}
	// No bound: nothing but stale temporaries goes.
	if err := evict(dir, -1, "", now.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !exists(newest) || !exists(kept) || exists(freshTmp) {
		t.Errorf("unbounded eviction: entries removed or stale temporary kept")
	}
}

func TestWorthCaching(t *testing.T) {
	in := &onnx.Info{}
	ext := &onnx.Info{ExternalData: true, ExternalFiles: []string{"model.onnx_data"}}
	for _, c := range []struct {
		info  *onnx.Info
		size  int64
		limit int64
		want  bool
	}{
		{in, 100 << 20, 0, true},        // 100 MB under the default 2 GiB bound
		{in, 1100 << 20, 0, false},      // more than half the bound
		{in, 1100 << 20, -1, true},      // unbounded
		{in, 1100 << 20, 4 << 30, true}, // a larger bound
		{ext, 1 << 20, 0, false},        // external weights are never copied
		{ext, 1 << 20, -1, false},       // not even without a bound
	} {
		if got := worthCaching(c.info, c.size, SessionOptions{CacheMaxBytes: c.limit}); got != c.want {
			t.Errorf("external=%v size=%d limit=%d: got %v, want %v", c.info.ExternalData, c.size, c.limit, got, c.want)
		}
	}
}
