package imagefile

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"unicode/utf8"
)

// Format is an output image format.
type Format int

const (
	// FormatAuto picks the format from the file extension in [Write] (".png", ".jpg", ".jpeg")
	// and means PNG in [Encode].
	FormatAuto Format = iota
	PNG
	JPEG
)

// String returns "auto", "png" or "jpeg".
func (f Format) String() string {
	switch f {
	case FormatAuto:
		return "auto"
	case PNG:
		return "png"
	case JPEG:
		return "jpeg"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// ParseFormat parses a format name: "png", "jpeg" or "jpg" (any case), or "auto".
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(s) {
	case "auto", "":
		return FormatAuto, nil
	case "png":
		return PNG, nil
	case "jpeg", "jpg":
		return JPEG, nil
	}
	return 0, fmt.Errorf("imagefile: unknown image format %q (want png or jpeg)", s)
}

// FormatForPath returns the format a file extension names: PNG for ".png", JPEG for ".jpg" and
// ".jpeg", in any case.
func FormatForPath(path string) (Format, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".png":
		return PNG, nil
	case ".jpg", ".jpeg":
		return JPEG, nil
	}
	return 0, fmt.Errorf("imagefile: cannot tell the image format of %q from its extension "+
		"(use .png, .jpg or .jpeg, or name the format)", path)
}

// DefaultJPEGQuality is the JPEG quality used when WriteOptions.JPEGQuality is 0.
const DefaultJPEGQuality = 95

// Keywords of the PNG text chunks Write adds.
const (
	KeywordParameters = "parameters"
	KeywordRflow      = "rflow"
)

// WriteOptions control Write and Encode.
type WriteOptions struct {
	Format      Format // FormatAuto: from the file extension
	JPEGQuality int    // 1–100; 0 means DefaultJPEGQuality
	Overwrite   bool   // replace an existing file instead of refusing it

	// RflowJSON, if not empty, is rflow's own record of every setting needed to reproduce the
	// image; it must be valid JSON. PNG stores it in a text chunk with keyword "rflow" (tEXt or
	// iTXt by the same rule as "parameters"), JPEG in a COM segment.
	RflowJSON []byte

	// NoMetadata writes the pixels alone: no parameters text and no rflow record (Params and
	// RflowJSON are ignored). For pictures that are not a generation's result, such as previews.
	NoMetadata bool
}

// Encode writes img in format o.Format (PNG for FormatAuto) with p's parameters text and
// o.RflowJSON embedded, as Write does, to w. o.Overwrite is ignored.
func Encode(w io.Writer, img image.Image, p Params, o WriteOptions) error {
	if img == nil {
		return errors.New("imagefile: no image to encode")
	}
	if o.NoMetadata {
		return encodePlain(w, img, o)
	}
	if err := p.Validate(); err != nil {
		return err
	}
	if len(o.RflowJSON) > 0 && (!utf8.Valid(o.RflowJSON) || !json.Valid(o.RflowJSON)) {
		return errors.New("imagefile: RflowJSON is not valid UTF-8 JSON")
	}
	switch o.Format {
	case FormatAuto, PNG:
		texts := []textEntry{{KeywordParameters, p.Text()}}
		if len(o.RflowJSON) > 0 {
			texts = append(texts, textEntry{KeywordRflow, string(o.RflowJSON)})
		}
		return encodePNG(w, img, texts)
	case JPEG:
		q := o.JPEGQuality
		if q == 0 {
			q = DefaultJPEGQuality
		}
		if q < 1 || q > 100 {
			return fmt.Errorf("imagefile: JPEG quality %d is outside 1–100", q)
		}
		return encodeJPEG(w, img, q, p.Text(), o.RflowJSON)
	}
	return fmt.Errorf("imagefile: unknown format %v", o.Format)
}

// encodePlain encodes img without any metadata.
func encodePlain(w io.Writer, img image.Image, o WriteOptions) error {
	switch o.Format {
	case FormatAuto, PNG:
		if err := png.Encode(w, img); err != nil {
			return fmt.Errorf("imagefile: encode PNG: %w", err)
		}
		return nil
	case JPEG:
		q := cmp.Or(o.JPEGQuality, DefaultJPEGQuality)
		if q < 1 || q > 100 {
			return fmt.Errorf("imagefile: JPEG quality %d is outside 1–100", q)
		}
		if err := jpeg.Encode(w, img, &jpeg.Options{Quality: q}); err != nil {
			return fmt.Errorf("imagefile: encode JPEG: %w", err)
		}
		return nil
	}
	return fmt.Errorf("imagefile: unknown format %v", o.Format)
}

// Write writes img to path with the generation parameters p embedded (see the package
// documentation for where), creating path's directory if it is missing.
//
// The write is atomic: the image goes to a temporary file in the same directory, which is
// fsynced and then renamed to path, so path never holds a partial image and a failure leaves
// no file behind. Unless o.Overwrite is set, an existing path is refused with an error wrapping
// fs.ErrExist; the final step then hard-links the temporary file to path, which fails if path
// has appeared meanwhile, so concurrent writers never clobber each other (on file systems
// without hard links it falls back to check-then-rename).
func Write(path string, img image.Image, p Params, o WriteOptions) error {
	if path == "" {
		return errors.New("imagefile: empty output path")
	}
	if o.Format == FormatAuto {
		f, err := FormatForPath(path)
		if err != nil {
			return err
		}
		o.Format = f
	}
	if !o.Overwrite {
		if err := refuseExisting(path); err != nil {
			return err
		}
	}
	var buf bytes.Buffer
	if err := Encode(&buf, img, p, o); err != nil {
		return err
	}
	return writeFileAtomic(path, buf.Bytes(), o.Overwrite)
}

// CheckOutput reports, before any work is done, what would make Write(path, …, o) fail for reasons
// of the path alone: an extension that names no format (when o.Format is FormatAuto), an existing
// file (unless o.Overwrite; the error wraps fs.ErrExist), an existing directory at path, an ancestor
// that is a file, or a directory that cannot be created or written. It creates nothing; to learn
// whether the nearest existing directory is writable it creates and removes a temporary file there.
// Writing can still fail later (a full disk, a file that appears meanwhile).
func CheckOutput(path string, o WriteOptions) error {
	if path == "" {
		return errors.New("imagefile: empty output path")
	}
	if o.Format == FormatAuto {
		if _, err := FormatForPath(path); err != nil {
			return err
		}
	}
	switch st, err := os.Stat(path); {
	case err == nil && st.IsDir():
		return fmt.Errorf("imagefile: %s is a directory", path)
	case err == nil && !o.Overwrite:
		return existsError(path)
	case err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("imagefile: %w", err)
	}
	return CheckDirWritable(filepath.Dir(path))
}

// CheckDirWritable reports whether files can be created in dir, creating nothing: dir, or the
// nearest ancestor that exists when dir is missing (Write creates the rest), must be a directory in
// which a temporary file can be created (and it is removed at once).
func CheckDirWritable(dir string) error {
	d := dir
	for {
		st, err := os.Stat(d)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("imagefile: cannot create %s: %s is not a directory", dir, d)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) { // ENOTDIR: an ancestor is a file, found above
			return fmt.Errorf("imagefile: %w", err)
		}
		parent := filepath.Dir(d)
		if parent == d {
			return fmt.Errorf("imagefile: %w", err)
		}
		d = parent
	}
	f, err := os.CreateTemp(d, ".rflow-probe-*")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the probe's random name says nothing
		}
		return fmt.Errorf("imagefile: cannot write in %s: %w", d, err)
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// Hooks for tests to make the final step fail.
var (
	renameFile = os.Rename
	linkFile   = os.Link
)

func existsError(path string) error {
	return fmt.Errorf("imagefile: %s: %w", path, fs.ErrExist)
}

// refuseExisting returns an error wrapping fs.ErrExist if path exists.
func refuseExisting(path string) error {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return existsError(path)
	case errors.Is(err, fs.ErrNotExist):
		return nil
	}
	return fmt.Errorf("imagefile: %w", err)
}

// writeFileAtomic writes data to path through a fsynced temporary file in path's directory.
func writeFileAtomic(path string, data []byte, overwrite bool) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return fmt.Errorf("imagefile: create output directory: %w", err)
	}
	f, err := createTemp(dir, filepath.Base(path))
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close() // may already be closed; the error is not interesting then
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err == nil {
		if err = f.Sync(); err == nil {
			err = f.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("imagefile: write %s: %w", tmp, err)
	}
	if overwrite {
		if err = renameFile(tmp, path); err != nil {
			err = fmt.Errorf("imagefile: %w", err)
		}
	} else {
		err = publishNew(tmp, path)
	}
	if err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// publishNew moves the temporary file tmp to path, failing if path exists.
func publishNew(tmp, path string) error {
	err := linkFile(tmp, path)
	switch {
	case err == nil:
		os.Remove(tmp) // path is complete; a leftover link name is harmless if this fails
		return nil
	case errors.Is(err, fs.ErrExist):
		return existsError(path)
	}
	// No hard links here (e.g. FAT, some network file systems): check, then rename.
	if err := refuseExisting(path); err != nil {
		return err
	}
	if err := renameFile(tmp, path); err != nil {
		return fmt.Errorf("imagefile: %w", err)
	}
	return nil
}

// createTemp creates a new hidden file ".<base>.<random>.tmp" in dir with mode 0666 less the
// umask (os.CreateTemp would make it 0600, and the image keeps the temporary file's mode).
// A long base is shortened so that the temporary name stays within NAME_MAX.
func createTemp(dir, base string) (*os.File, error) {
	if len(base) > 64 {
		base = strings.ToValidUTF8(base[:64], "")
	}
	var rnd [6]byte
	for range 100 {
		rand.Read(rnd[:])
		name := filepath.Join(dir, "."+base+"."+hex.EncodeToString(rnd[:])+".tmp")
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("imagefile: create temporary file: %w", err)
		}
	}
	return nil, fmt.Errorf("imagefile: create temporary file in %s: too many name collisions", dir)
}

// syncDir flushes a directory entry change to disk where the platform allows it; failures are
// ignored (some file systems refuse to sync directories, and the data itself is synced).
func syncDir(dir string) {
	if runtime.GOOS == "windows" {
		return
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
