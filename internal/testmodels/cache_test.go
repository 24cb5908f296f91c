package testmodels

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

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
	t.Setenv(CacheEnv, "")
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
	root := filepath.Join(tmp, "rflow-testmodels")
	if filepath.Dir(filepath.Dir(dirs[0])) != root || filepath.Base(dirs[0]) != string(KindFluxSchnell) {
		t.Errorf("cache folder %s, want %s/<key>/%s", dirs[0], root, KindFluxSchnell)
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
	if names := cacheEntries(t, root); len(names) != 2 {
		t.Errorf("cache root holds %v, want the two entries and no leftovers", names)
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
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp, CacheEnv+"=", "RFLOW_TESTMODELS_CACHE_CHILD=1")
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
	if names := cacheEntries(t, filepath.Join(tmp, "rflow-testmodels")); len(names) != 1 {
		t.Errorf("cache root holds %v, want one entry", names)
	}
}

// forgetVerified makes the next CachedDir check content hashes again, as a new process would.
func forgetVerified() {
	cacheMu.Lock()
	defer cacheMu.Unlock()
	clear(cacheValid)
	clear(cachePruned)
}

// TestCachedRewritesDamagedFolder: a hit is decided by the folder's content hash, not by one file's
// existence: a folder with a damaged or missing file is rewritten.
func TestCachedRewritesDamagedFolder(t *testing.T) {
	t.Setenv(CacheEnv, t.TempDir())
	o := Options{Kind: KindSD3NoT5, GeneratedVocab: true, Seed: 5}
	dir := Cached(t, o)
	want := must(FolderHash(dir))
	for _, damage := range []func(){
		func() { _ = os.WriteFile(filepath.Join(dir, "tokenizer", "vocab.json"), []byte("{"), 0o644) },
		func() { _ = os.Remove(filepath.Join(dir, "transformer", "model.onnx")) },
		func() { _ = os.Remove(filepath.Join(filepath.Dir(dir), cacheHashFile)) },
	} {
		damage()
		forgetVerified()
		again := Cached(t, o)
		if again != dir || must(FolderHash(again)) != want {
			t.Fatalf("damaged cache folder was used: %s", again)
		}
	}
}

// TestCachePrunes: entries unused for cacheMaxAge, abandoned temporary folders and the flat folders of
// earlier versions go; a recently used entry stays.
func TestCachePrunes(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Setenv(CacheEnv, "")
	root := cacheRoot()
	now := time.Now()
	mk := func(path string, age time.Duration, files ...string) string {
		t.Helper()
		if err := os.MkdirAll(path, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range append(files, "") {
			p := filepath.Join(path, f)
			if f != "" {
				if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chtimes(p, now.Add(-age), now.Add(-age)); err != nil {
				t.Fatal(err)
			}
		}
		return path
	}
	unused := mk(filepath.Join(root, "aaa"), cacheMaxAge+time.Hour, cacheHashFile)
	used := mk(filepath.Join(root, "bbb"), time.Minute, cacheHashFile)
	staleTmp := mk(filepath.Join(root, "ccc.tmp-1"), 2*cacheStaleTemp)
	freshTmp := mk(filepath.Join(root, "ddd.tmp-1"), time.Minute) // another process is writing it
	legacy := mk(filepath.Join(tmp, "rflow-testmodels-0123456789abcdef01234567"), 2*cacheStaleTemp, "model_index.json")
	pruneCache(root, now)
	for path, keep := range map[string]bool{unused: false, used: true, staleTmp: false, freshTmp: true, legacy: false} {
		if _, err := os.Stat(path); (err == nil) != keep {
			t.Errorf("%s: kept %t, want %t", path, err == nil, keep)
		}
	}
}
