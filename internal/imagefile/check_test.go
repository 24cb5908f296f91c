package imagefile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// CheckOutput finds, before any work, every path problem that Write would only meet at the end, and
// leaves nothing behind.
func TestCheckOutput(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "old.png")
	file := filepath.Join(dir, "file")
	for _, p := range []string{existing, file} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ok := []struct {
		path string
		o    WriteOptions
	}{
		{filepath.Join(dir, "new.png"), WriteOptions{}},
		{filepath.Join(dir, "a", "b", "new.jpg"), WriteOptions{}}, // missing folders are created by Write
		{existing, WriteOptions{Overwrite: true}},
		{filepath.Join(dir, "raw.out"), WriteOptions{Format: PNG}},
	}
	for _, c := range ok {
		if err := CheckOutput(c.path, c.o); err != nil {
			t.Errorf("%s %+v: %v", c.path, c.o, err)
		}
	}
	bad := []struct {
		path string
		want string
	}{
		{existing, "exists"},
		{filepath.Join(dir, "x.webp"), "extension"},
		{filepath.Join(dir, "noext"), "extension"},
		{dir + "/", "extension"},
		{filepath.Join(file, "x.png"), "not a directory"},
		{filepath.Join(file, "sub", "x.png"), "not a directory"},
		{"", "empty"},
	}
	if runtime.GOOS == "linux" {
		bad = append(bad, struct{ path, want string }{"/proc/rflow-check/x.png", "cannot write in /proc"})
	}
	for _, c := range bad {
		err := CheckOutput(c.path, WriteOptions{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error with %q", c.path, err, c.want)
		}
	}
	if err := CheckOutput(existing, WriteOptions{}); !errors.Is(err, fs.ErrExist) {
		t.Errorf("existing file: %v, want fs.ErrExist", err)
	}
	if err := CheckOutput(filepath.Join(dir, "sub.png"), WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "d.png"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := CheckOutput(filepath.Join(dir, "d.png"), WriteOptions{Overwrite: true}); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory at the path: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("CheckOutput left files behind: %v", entries)
	}
}

func TestTemplateFields(t *testing.T) {
	names, err := TemplateFields("out/{model}/{prompt}-{seed}{{x}}.png", false)
	if err != nil || strings.Join(names, ",") != "model,prompt,seed" {
		t.Errorf("fields %v, %v", names, err)
	}
	if _, err := TemplateFields("p-{step}.png", false); err == nil || strings.Contains(err.Error(), "{model}, {step}") {
		t.Errorf("{step} outside previews: %v, want an unknown-placeholder error", err)
	}
	if names, err := TemplateFields("p-{step}.png", true); err != nil || len(names) != 1 {
		t.Errorf("preview {step}: %v, %v", names, err)
	}
	for _, tmpl := range []string{"", "a{seed", "{nope}.png"} {
		if _, err := TemplateFields(tmpl, false); err == nil {
			t.Errorf("%q accepted", tmpl)
		}
	}
	got, err := ExpandTemplate("preview-{step}-{seed}.png", TemplateVars{Seed: 4, Step: 12})
	if err != nil || got != "preview-12-4.png" {
		t.Errorf("{step}: %q, %v", got, err)
	}
}

// NoMetadata writes the pixels only: no parameters text (which would be invented) and no rflow chunk.
func TestWriteNoMetadata(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"p.png", "p.jpg"} {
		path := filepath.Join(dir, name)
		if err := Write(path, testImage(8, 4), Params{}, WriteOptions{NoMetadata: true, RflowJSON: []byte(`{"x":1}`)}); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"parameters", "Steps", "rflow", "Exif"} {
			if strings.Contains(string(data), s) {
				t.Errorf("%s holds %q", name, s)
			}
		}
	}
}
