package pipeline

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rflowrt/rflow/assets"
)

// isolateDemoCache points os.UserCacheDir (and os.TempDir) at fresh folders.
func isolateDemoCache(t *testing.T) (cache string) {
	cache = t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	t.Setenv("HOME", t.TempDir())
	t.Setenv("TMPDIR", t.TempDir())
	return cache
}

func TestOpenDemoExtractsOnce(t *testing.T) {
	cache := isolateDemoCache(t)
	m1, err := OpenDemo(assets.Default)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(m1.Dir) != filepath.Join(cache, "rflow") || !strings.HasPrefix(filepath.Base(m1.Dir), assets.Default+"-") {
		t.Fatalf("demo extracted to %s, want under %s", m1.Dir, filepath.Join(cache, "rflow"))
	}
	model := filepath.Join(m1.Dir, "transformer", "model.onnx")
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(model, old, old); err != nil {
		t.Fatal(err)
	}
	m2, err := OpenDemo(assets.Default)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(model)
	if err != nil {
		t.Fatal(err)
	}
	if m2.Dir != m1.Dir || !st.ModTime().Equal(old) {
		t.Fatalf("second OpenDemo: dir %s (first %s), model.onnx mtime %v (want %v: not rewritten)", m2.Dir, m1.Dir, st.ModTime(), old)
	}
	if entries, _ := os.ReadDir(filepath.Join(cache, "rflow")); len(entries) != 1 {
		t.Errorf("cache holds %d entries, want the one demo folder", len(entries))
	}
	other, err := DemoDir("demo-flux")
	if err != nil || other == m1.Dir {
		t.Fatalf("demo-flux at %s: %v", other, err)
	}
}

func TestOpenDemoRepairsDamagedFolder(t *testing.T) {
	isolateDemoCache(t)
	dir, err := DemoDir("demo-flux")
	if err != nil {
		t.Fatal(err)
	}
	mustRemove(t, filepath.Join(dir, "transformer", "model.onnx"))
	mustWrite(t, filepath.Join(dir, "tokenizer_2", "tokenizer.json"), "{")
	m, err := OpenDemo("demo-flux")
	if err != nil {
		t.Fatalf("a damaged demo folder was not replaced: %v", err)
	}
	if m.Dir != dir || !m.GuidanceEmbeds {
		t.Fatalf("repaired demo at %s (was %s)", m.Dir, dir)
	}
	if entries, _ := os.ReadDir(filepath.Dir(dir)); len(entries) != 1 {
		t.Errorf("left %d entries in the cache, want 1", len(entries))
	}
}

func TestOpenDemoWithoutCacheDir(t *testing.T) {
	isolateDemoCache(t)
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "")
	if _, err := os.UserCacheDir(); err == nil {
		t.Skip("this platform has a cache folder without HOME")
	}
	m, err := OpenDemo("demo-sd3")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(os.TempDir(), "rflow"); filepath.Dir(m.Dir) != want {
		t.Fatalf("demo at %s, want under %s", m.Dir, want)
	}
}

func TestDemoDirConcurrent(t *testing.T) {
	isolateDemoCache(t)
	const n = 8
	dirs, errs := make([]string, n), make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { dirs[i], errs[i] = DemoDir("demo-sd3") })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || dirs[i] != dirs[0] {
			t.Fatalf("call %d: %s, %v (call 0: %s)", i, dirs[i], errs[i], dirs[0])
		}
	}
	if entries, _ := os.ReadDir(filepath.Dir(dirs[0])); len(entries) != 1 {
		t.Errorf("%d entries in the cache, want 1 (no temporary folders left)", len(entries))
	}
	if _, err := Open(dirs[0]); err != nil {
		t.Fatal(err)
	}
}
