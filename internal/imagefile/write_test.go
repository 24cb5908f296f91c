package imagefile

import (
	"bytes"
	"errors"
	"image"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// assertOnlyFiles fails unless dir holds exactly the named entries (no temporary files).
func assertOnlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	slices.Sort(names)
	if !slices.Equal(got, names) {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}

var testParams = Params{Prompt: "a cat", Steps: 4, CFGScale: 3.5, Seed: 1, Width: 7, Height: 5}

func TestWriteRefusesExisting(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.png")
	if err := Write(path, testImage(7, 5), testParams, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	p2 := testParams
	p2.Prompt = "a dog"
	err := Write(path, testImage(7, 5), p2, WriteOptions{})
	if !errors.Is(err, fs.ErrExist) || strings.Contains(err.Error(), "--overwrite") {
		t.Fatalf("err = %v, want fs.ErrExist without command-line advice (the CLI adds it)", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("refused write changed the file")
	}
	if err := Write(path, testImage(7, 5), p2, WriteOptions{Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	texts, err := ReadPNGText(path)
	if err != nil || texts["parameters"] != p2.Text() {
		t.Errorf("after overwrite: %q, %v", texts, err)
	}
	assertOnlyFiles(t, dir, "a.png")
}

func TestWriteCreatesDirectories(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x", "y", "z.jpeg")
	if err := Write(path, smoothImage(8, 8), testParams, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadJPEGUserComment(path); err != nil {
		t.Error(err)
	}
	assertOnlyFiles(t, filepath.Join(dir, "x", "y"), "z.jpeg")
}

func TestWriteNoTempFileOnFailure(t *testing.T) {
	dir := t.TempDir()
	fail := errors.New("injected")
	defer func(r, l func(string, string) error) { renameFile, linkFile = r, l }(renameFile, linkFile)
	renameFile = func(string, string) error { return fail }
	linkFile = func(string, string) error { return fail }

	for _, overwrite := range []bool{true, false} {
		err := Write(filepath.Join(dir, "a.png"), testImage(7, 5), testParams, WriteOptions{Overwrite: overwrite})
		if !errors.Is(err, fail) {
			t.Errorf("overwrite=%v: err = %v, want the injected error", overwrite, err)
		}
		assertOnlyFiles(t, dir)
	}
	// A link that finds the name taken (another writer won the race) refuses, cleanly.
	linkFile = func(string, string) error { return &os.LinkError{Op: "link", Err: syscall.EEXIST} }
	err := Write(filepath.Join(dir, "a.png"), testImage(7, 5), testParams, WriteOptions{})
	if !errors.Is(err, fs.ErrExist) {
		t.Errorf("racing link: err = %v, want fs.ErrExist", err)
	}
	assertOnlyFiles(t, dir)
}

func TestWriteWithoutHardLinks(t *testing.T) {
	dir := t.TempDir()
	defer func(l func(string, string) error) { linkFile = l }(linkFile)
	linkFile = func(string, string) error { return &os.LinkError{Op: "link", Err: syscall.EPERM} }
	path := filepath.Join(dir, "a.png")
	if err := Write(path, testImage(7, 5), testParams, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, testImage(7, 5), testParams, WriteOptions{}); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second write: %v, want fs.ErrExist", err)
	}
	assertOnlyFiles(t, dir, "a.png")
}

func TestWriteUnwritableDirectory(t *testing.T) {
	dir := t.TempDir()
	// A parent that is a file fails even for root.
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(filepath.Join(dir, "file", "a.png"), testImage(7, 5), testParams, WriteOptions{}); err == nil {
		t.Error("parent is a file: no error")
	}
	assertOnlyFiles(t, dir, "file")

	ro := filepath.Join(dir, "ro")
	if err := os.Mkdir(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	if f, err := os.Create(filepath.Join(ro, "probe")); err == nil {
		f.Close()
		t.Skip("directory permissions are not enforced here (running as root?)")
	}
	err := Write(filepath.Join(ro, "a.png"), testImage(7, 5), testParams, WriteOptions{})
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		t.Errorf("err = %v, want a permission error", err)
	}
	assertOnlyFiles(t, ro)
	os.Chmod(ro, 0o755) // let t.TempDir clean up
}

func TestWriteRejects(t *testing.T) {
	dir := t.TempDir()
	img := testImage(7, 5)
	for name, c := range map[string]struct {
		path string
		img  image.Image
		p    Params
		o    WriteOptions
	}{
		"empty path":    {"", img, testParams, WriteOptions{}},
		"unknown ext":   {"a.gif", img, testParams, WriteOptions{}},
		"nil image":     {"a.png", nil, testParams, WriteOptions{}},
		"empty image":   {"a.png", image.NewNRGBA(image.Rect(0, 0, 0, 0)), testParams, WriteOptions{}},
		"bad params":    {"a.png", img, Params{Steps: -1}, WriteOptions{}},
		"bad JSON":      {"a.png", img, testParams, WriteOptions{RflowJSON: []byte("{")}},
		"bad UTF-8":     {"a.png", img, testParams, WriteOptions{RflowJSON: []byte("\"\xff\"")}},
		"bad quality":   {"a.jpg", img, testParams, WriteOptions{JPEGQuality: 101}},
		"bad format":    {"a.png", img, testParams, WriteOptions{Format: Format(9)}},
		"existing dir":  {"sub", img, testParams, WriteOptions{Format: PNG}},
		"dir overwrite": {"sub", img, testParams, WriteOptions{Format: PNG, Overwrite: true}},
	} {
		os.Mkdir(filepath.Join(dir, "sub"), 0o755)
		path := c.path
		if path != "" {
			path = filepath.Join(dir, path)
		}
		err := Write(path, c.img, c.p, c.o)
		if err == nil {
			t.Errorf("%s: no error", name)
		} else if !strings.HasPrefix(err.Error(), "imagefile: ") {
			t.Errorf("%s: error %q lacks the package prefix", name, err)
		}
	}
	assertOnlyFiles(t, dir, "sub")
}

func TestFormats(t *testing.T) {
	for path, want := range map[string]Format{"a.png": PNG, "a.PNG": PNG, "b/c.jpg": JPEG, "d.JPEG": JPEG} {
		if got, err := FormatForPath(path); err != nil || got != want {
			t.Errorf("FormatForPath(%q) = %v, %v", path, got, err)
		}
	}
	for s, want := range map[string]Format{"png": PNG, "JPG": JPEG, "jpeg": JPEG, "auto": FormatAuto} {
		if got, err := ParseFormat(s); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseFormat("webp"); err == nil {
		t.Error("ParseFormat(webp): no error")
	}
	// An explicit format wins over the extension.
	path := filepath.Join(t.TempDir(), "x.png")
	if err := Write(path, smoothImage(8, 8), testParams, WriteOptions{Format: JPEG}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); !bytes.HasPrefix(b, []byte{0xff, 0xd8}) {
		t.Error("Format JPEG did not write JPEG")
	}
}

func TestEncodeAutoIsPNG(t *testing.T) {
	var buf bytes.Buffer
	if err := Encode(&buf, testImage(3, 3), testParams, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	texts, err := readPNGText(&buf)
	if err != nil || texts["parameters"] != testParams.Text() {
		t.Errorf("texts %q, %v", texts, err)
	}
}
