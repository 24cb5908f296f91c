package pipeline

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/rflowrt/rflow/assets"
)

// OpenDemo opens an embedded demo model (assets.Names: "demo-sd3", "demo-flux"). See DemoDir for where
// it lives on disk; the model's Name is the demo's name.
func OpenDemo(name string) (*Model, error) {
	dir, err := DemoDir(name)
	if err != nil {
		return nil, err
	}
	m, err := Open(dir)
	if err != nil {
		return nil, fmt.Errorf("demo model %s: %w", name, err)
	}
	m.Name = name
	return m, nil
}

// DemoDir extracts an embedded demo model once and returns its folder:
// os.UserCacheDir()/rflow/<name>-<content hash>, or os.TempDir()/rflow/… when there is no usable cache
// folder. The hash covers every embedded file, so a new rflow version never reuses an older demo. A
// folder already there with every file at its size is used as it is (nothing is rewritten); one that is
// not is replaced. The folder is written under a temporary name and renamed into place, so concurrent
// processes never see a partial one.
func DemoDir(name string) (string, error) {
	fsys, err := assets.FS(name)
	if err != nil {
		return "", err
	}
	hash, err := demoHash(name, fsys)
	if err != nil {
		return "", fmt.Errorf("demo model %s: %w", name, err)
	}
	var errs []error
	for _, root := range demoRoots() {
		dir, err := extractDemo(name, fsys, root, name+"-"+hash)
		if err == nil {
			return dir, nil
		}
		errs = append(errs, err)
	}
	return "", fmt.Errorf("demo model %s: cannot extract it (free some disk space or set TMPDIR to a writable folder): %w", name, errors.Join(errs...))
}

// demoRoots are the folders a demo may be extracted under, in order of preference.
func demoRoots() []string {
	var roots []string
	if c, err := os.UserCacheDir(); err == nil && c != "" {
		roots = append(roots, filepath.Join(c, "rflow"))
	}
	return append(roots, filepath.Join(os.TempDir(), "rflow"))
}

var demoHashes sync.Map // name → func() (string, error)

// demoHash is a hex SHA-256 prefix over the demo's files (path, size, content), computed once per process.
func demoHash(name string, fsys fs.FS) (string, error) {
	f, _ := demoHashes.LoadOrStore(name, sync.OnceValues(func() (string, error) {
		h := sha256.New()
		err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := fs.ReadFile(fsys, p)
			if err != nil {
				return err
			}
			var n [8]byte
			binary.LittleEndian.PutUint64(n[:], uint64(len(p)))
			h.Write(n[:])
			h.Write([]byte(p))
			binary.LittleEndian.PutUint64(n[:], uint64(len(data)))
			h.Write(n[:])
			h.Write(data)
			return nil
		})
		return hex.EncodeToString(h.Sum(nil))[:16], err
	}))
	return f.(func() (string, error))()
}

// extractDemo makes root/base hold the demo's files and returns it.
func extractDemo(name string, fsys fs.FS, root, base string) (string, error) {
	dir := filepath.Join(root, base)
	if demoComplete(fsys, dir) {
		return dir, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(root, base+".tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // a no-op after a successful rename
	if err := assets.Extract(name, tmp); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err == nil {
		return dir, nil
	}
	if demoComplete(fsys, dir) { // another process renamed its copy first
		return dir, nil
	}
	// A damaged folder is in the way: move it aside (atomically, so no reader sees it half-deleted) and retry.
	trash, err := os.MkdirTemp(root, base+".old-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(trash)
	if err := os.Rename(dir, filepath.Join(trash, "x")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("replace the damaged demo folder %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil && !demoComplete(fsys, dir) {
		return "", err
	}
	return dir, nil
}

// demoComplete reports whether dir has every file of the demo at its embedded size.
func demoComplete(fsys fs.FS, dir string) bool {
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		want, err := d.Info()
		if err != nil {
			return err
		}
		got, err := os.Stat(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil {
			return err
		}
		if !got.Mode().IsRegular() || got.Size() != want.Size() {
			return fs.ErrInvalid
		}
		return nil
	})
	return err == nil
}
