// Package linkdir mirrors a folder tree without copying its data: files become hard links, and
// copies only where a link is impossible (another file system).
package linkdir

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Options change what Mirror writes.
type Options struct {
	// Skip, when set, is asked about every file (not folder) by its path relative to the source;
	// true leaves it out.
	Skip func(rel string) bool
	// LinkFolders makes a symbolic link to a folder a symbolic link to that folder's absolute path
	// in the mirror. Without it the linked folder is mirrored like any other: a real folder whose
	// files are links, so a file of the mirror can be replaced without touching the source.
	LinkFolders bool
}

// ErrLinkLoop is wrapped when a symbolic link leads back to a folder being mirrored.
var ErrLinkLoop = errors.New("symbolic link loop")

// Mirror recreates src's tree under dst (created where missing). Each regular file is hard-linked,
// or copied where a link fails; a file dst already has is kept. Symbolic links (a Hugging Face
// cache snapshot is made of them) are followed, src itself included: a linked file is linked or
// copied as the file it points to, a linked folder is treated as Options.LinkFolders says. Other
// kinds of files (devices, sockets) are left out.
func Mirror(src, dst string, o Options) error {
	root, err := realPath(src)
	if err != nil {
		return err
	}
	return mirror(root, dst, "", o, nil)
}

// mirror walks dir, a real folder (absolute, no links on its path), into dst/rel. open holds the
// real folders whose links led here, so a link back up the tree is an error, not an endless walk.
func mirror(dir, dst, rel string, o Options, open []string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		sub, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel := filepath.Join(rel, sub)
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case o.Skip != nil && o.Skip(rel):
			return nil
		}
		if _, err := os.Lstat(target); err == nil {
			return nil
		}
		real, err := realPath(p)
		if err != nil {
			return err
		}
		st, err := os.Stat(real)
		switch {
		case err != nil:
			return err
		case st.IsDir() && o.LinkFolders:
			return os.Symlink(real, target)
		case st.IsDir():
			open := append(open[:len(open):len(open)], filepath.Dir(p))
			for _, f := range open {
				if within(f, real) {
					return fmt.Errorf("%s: %w", p, ErrLinkLoop)
				}
			}
			return mirror(real, dst, rel, o, open)
		case !st.Mode().IsRegular():
			return nil
		}
		return LinkOrCopy(real, target)
	})
}

// realPath is p absolute with every symbolic link on the way resolved.
func realPath(p string) (string, error) {
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", err
	}
	return filepath.Abs(real)
}

// within reports whether path is folder or lies below it.
func within(path, folder string) bool {
	rel, err := filepath.Rel(folder, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// LinkOrCopy makes dst (which must not exist) a hard link to the file src, or a copy of it where a
// link is impossible.
func LinkOrCopy(src, dst string) error {
	if os.Link(src, dst) == nil {
		return nil
	}
	return CopyFile(src, dst)
}

// CopyFile copies the file src to dst, which must not exist.
func CopyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
