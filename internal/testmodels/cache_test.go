package testmodels

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rflowrt/rflow/internal/onnx"
)

// cacheEntries lists the names in dir.
func cacheEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestCached(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	o := Options{Kind: KindFluxSchnell, GeneratedVocab: true, Seed: 99}
	dirs, errs := make([]string, 4), make([]error, 4)
	var wg sync.WaitGroup
	for i := range dirs {
		wg.Go(func() { dirs[i], errs[i] = CachedDir(o) })
	}
	wg.Wait()
	for i := range dirs {
		if errs[i] != nil || dirs[i] != dirs[0] {
			t.Fatalf("concurrent CachedDir: %q, %v (first %q)", dirs[i], errs[i], dirs[0])
		}
	}
	if filepath.Dir(dirs[0]) != tmp || !strings.HasPrefix(filepath.Base(dirs[0]), "rflow-testmodels-") {
		t.Errorf("cache folder %s, want %s/rflow-testmodels-<key>", dirs[0], tmp)
	}
	before, err := os.Stat(filepath.Join(dirs[0], "transformer", "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if again := Cached(t, o); again != dirs[0] {
		t.Errorf("second Cached %s, first %s", again, dirs[0])
	}
	if after, _ := os.Stat(filepath.Join(dirs[0], "transformer", "model.onnx")); !after.ModTime().Equal(before.ModTime()) {
		t.Error("the second call rewrote the cached folder")
	}
	fresh := t.TempDir()
	if err := Write(fresh, o); err != nil {
		t.Fatal(err)
	}
	if must(FolderHash(fresh)) != must(FolderHash(dirs[0])) {
		t.Error("the cached folder differs from a fresh Write")
	}
	o2 := o
	o2.Precision = onnx.Float16
	if other := Cached(t, o2); other == dirs[0] {
		t.Error("other options share the cache folder")
	}
	if names := cacheEntries(t, tmp); len(names) != 2 {
		t.Errorf("cache root holds %v, want the two folders and no leftovers", names)
	}
	if _, err := CachedDir(Options{Kind: "nope"}); err == nil {
		t.Error("CachedDir with a bad kind: no error")
	}
}

// TestCachedAcrossProcesses starts three test processes that ask for the same folder at once: all
// get the same complete folder and no temporary folder is left behind.
func TestCachedAcrossProcesses(t *testing.T) {
	if os.Getenv("RFLOW_TESTMODELS_CACHE_CHILD") != "" {
		dir, err := CachedDir(Options{Kind: KindSD3NoT5, GeneratedVocab: true, Seed: 7})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("CACHED %s %s\n", dir, must(FolderHash(dir)))
		return
	}
	tmp := t.TempDir()
	outs := make([][]byte, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range outs {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^TestCachedAcrossProcesses$", "-test.count=1")
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "RFLOW_TESTMODELS_CACHE_CHILD=1")
			outs[i], errs[i] = cmd.CombinedOutput()
		})
	}
	wg.Wait()
	var lines []string
	for i, out := range outs {
		if errs[i] != nil {
			t.Fatalf("child %d: %v\n%s", i, errs[i], out)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "CACHED ") {
				lines = append(lines, l)
			}
		}
	}
	if len(lines) != 3 || lines[0] != lines[1] || lines[1] != lines[2] {
		t.Fatalf("children reported %q, want three equal lines", lines)
	}
	if names := cacheEntries(t, tmp); len(names) != 1 {
		t.Errorf("cache root holds %v, want one folder", names)
	}
}
