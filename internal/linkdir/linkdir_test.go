package linkdir

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// sameFile reports whether a and b are one file on disk (a hard link).
func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	return os.SameFile(sa, sb)
}

func lmode(t *testing.T, p string) os.FileMode {
	t.Helper()
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode()
}

// A snapshot-like source: real files, a linked file and a linked folder that live elsewhere.
func source(t *testing.T) (dir, src string) {
	dir = t.TempDir()
	src = filepath.Join(dir, "src")
	write(t, filepath.Join(src, "model_index.json"), "index")
	write(t, filepath.Join(src, "transformer", "model.onnx"), "graph")
	write(t, filepath.Join(src, "transformer", "config.json"), "config")
	write(t, filepath.Join(dir, "blobs", "vae.onnx"), "vae")
	write(t, filepath.Join(dir, "blobs", "scheduler", "scheduler_config.json"), "sched")
	os.MkdirAll(filepath.Join(src, "vae"), 0o755)
	symlink(t, filepath.Join("..", "..", "blobs", "vae.onnx"), filepath.Join(src, "vae", "model.onnx"))
	symlink(t, filepath.Join(dir, "blobs", "scheduler"), filepath.Join(src, "scheduler"))
	return dir, src
}

func TestMirrorLinksFiles(t *testing.T) {
	dir, src := source(t)
	dst := filepath.Join(dir, "dst")
	if err := Mirror(src, dst, Options{}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"model_index.json", "transformer/model.onnx", "transformer/config.json"} {
		if !sameFile(t, filepath.Join(src, f), filepath.Join(dst, f)) {
			t.Errorf("%s is not a hard link of the source's file", f)
		}
	}
	// A linked file becomes a link to the file it points to; a linked folder a real folder.
	if m := lmode(t, filepath.Join(dst, "vae", "model.onnx")); !m.IsRegular() {
		t.Errorf("vae/model.onnx: mode %v, want a regular file", m)
	}
	if !sameFile(t, filepath.Join(dir, "blobs", "vae.onnx"), filepath.Join(dst, "vae", "model.onnx")) {
		t.Error("vae/model.onnx is not a hard link of the linked blob")
	}
	if m := lmode(t, filepath.Join(dst, "scheduler")); !m.IsDir() {
		t.Errorf("scheduler: mode %v, want a folder", m)
	}
	if !sameFile(t, filepath.Join(dir, "blobs", "scheduler", "scheduler_config.json"), filepath.Join(dst, "scheduler", "scheduler_config.json")) {
		t.Error("scheduler/scheduler_config.json is not a hard link of the linked folder's file")
	}
}

func TestMirrorSkipsAndKeeps(t *testing.T) {
	dir, src := source(t)
	dst := filepath.Join(dir, "dst")
	write(t, filepath.Join(dst, "transformer", "config.json"), "rewritten")
	var asked []string
	skip := func(rel string) bool {
		asked = append(asked, rel)
		return rel == filepath.Join("transformer", "model.onnx")
	}
	if err := Mirror(src, dst, Options{Skip: skip, LinkFolders: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dst, "transformer", "model.onnx")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a skipped file was written (%v)", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "transformer", "config.json")); string(b) != "rewritten" {
		t.Errorf("a file dst had was replaced: %q", b)
	}
	link, err := os.Readlink(filepath.Join(dst, "scheduler"))
	if want := filepath.Join(dir, "blobs", "scheduler"); err != nil || link != want {
		t.Errorf("scheduler links to %q (%v), want %q", link, err, want)
	}
	for _, rel := range asked {
		if rel == "transformer" || rel == "." {
			t.Errorf("Skip was asked about the folder %q", rel)
		}
	}
}

func TestMirrorThroughLinkedRoot(t *testing.T) {
	dir, src := source(t)
	link := filepath.Join(dir, "link")
	symlink(t, src, link)
	dst := filepath.Join(dir, "dst")
	if err := Mirror(link, dst, Options{}); err != nil {
		t.Fatal(err)
	}
	if !sameFile(t, filepath.Join(src, "transformer", "model.onnx"), filepath.Join(dst, "transformer", "model.onnx")) {
		t.Error("a linked source folder was not mirrored through its link")
	}
}

func TestMirrorRefusesLinkLoop(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	write(t, filepath.Join(src, "a", "f"), "f")
	symlink(t, "..", filepath.Join(src, "a", "up"))
	if err := Mirror(src, filepath.Join(dir, "dst"), Options{}); !errors.Is(err, ErrLinkLoop) {
		t.Errorf("a link to its own parent: %v, want ErrLinkLoop", err)
	}
	// Two folders linking to each other loop too, one level further down.
	src2 := filepath.Join(dir, "src2")
	write(t, filepath.Join(src2, "a", "f"), "f")
	write(t, filepath.Join(dir, "b", "g"), "g")
	symlink(t, filepath.Join(dir, "b"), filepath.Join(src2, "a", "b"))
	symlink(t, filepath.Join(src2, "a"), filepath.Join(dir, "b", "a"))
	if err := Mirror(src2, filepath.Join(dir, "dst2"), Options{}); !errors.Is(err, ErrLinkLoop) {
		t.Errorf("two folders linking to each other: %v, want ErrLinkLoop", err)
	}
}

func TestCopyFile(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	write(t, a, "payload")
	if err := CopyFile(a, b); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(b); string(got) != "payload" || sameFile(t, a, b) {
		t.Errorf("copy holds %q, same file as the source: %v", got, sameFile(t, a, b))
	}
	if err := CopyFile(a, b); !errors.Is(err, os.ErrExist) {
		t.Errorf("copy over an existing file: %v, want ErrExist", err)
	}
}
