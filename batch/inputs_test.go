package batch

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestResolveInputs: relative picture paths join the manifest's folder, absolute ones stay; the
// fingerprint follows the files' content, not their paths.
func TestResolveInputs(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	write := func(path, content string) {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "a.png"), "picture a")
	write(filepath.Join(other, "m.png"), "mask")
	src := `{"prompt": "x", "id": "e", "init_image": "a.png", "mask": "` + filepath.Join(other, "m.png") + `", "ref_images": ["a.png"], "count": 2}
{"prompt": "x", "id": "plain"}`
	items, err := ParseManifest(strings.NewReader(src), Item{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ResolveInputs(items, dir); err != nil {
		t.Fatal(err)
	}
	e := items[0]
	if e.InitImage != filepath.Join(dir, "a.png") || e.Mask != filepath.Join(other, "m.png") ||
		e.RefImages[0] != filepath.Join(dir, "a.png") || len(e.InputSHA256) != 3 ||
		e.InputSHA256["init_image"] != e.InputSHA256["ref_images[0]"] || e.InputSHA256["mask"] == e.InputSHA256["init_image"] {
		t.Fatalf("resolved %+v", e)
	}
	if items[2].InputSHA256 != nil || items[2].Edits() {
		t.Fatalf("plain item %+v", items[2])
	}
	s := Settings{Model: "m"}
	// Another folder holding the same content: the same fingerprint; other content: another.
	moved := t.TempDir()
	write(filepath.Join(moved, "a.png"), "picture a")
	again, _ := ParseManifest(strings.NewReader(src), Item{})
	if err := ResolveInputs(again, moved); err != nil {
		t.Fatal(err)
	}
	if again[0].Fingerprint(s) != e.Fingerprint(s) {
		t.Error("moving the pictures changed the fingerprint")
	}
	write(filepath.Join(moved, "a.png"), "picture b")
	again, _ = ParseManifest(strings.NewReader(src), Item{})
	if err := ResolveInputs(again, moved); err != nil {
		t.Fatal(err)
	}
	if again[0].Fingerprint(s) == e.Fingerprint(s) {
		t.Error("a picture's new content kept the fingerprint")
	}
	again, _ = ParseManifest(strings.NewReader(src), Item{})
	err = ResolveInputs(again, t.TempDir())
	if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "item e-0: init_image") {
		t.Errorf("missing file: %v", err)
	}
}

func TestParseManifestEditErrors(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{`{"prompt": "a", "mask": "m.png"}`, "mask needs init_image"},
		{`{"prompt": "a", "strength": 0.5}`, "strength needs init_image"},
		{`{"prompt": "a", "init_image": "i.png", "strength": 1.5}`, "strength 1.5: want a value in (0, 1]"},
		{`{"prompt": "a", "init_image": "i.png", "strength": 0}`, "strength 0"},
		{`{"prompt": "a", "init_image": "i.png", "mask_blur": 2}`, "mask_blur needs mask"},
		{`{"prompt": "a", "init_image": ""}`, "init_image is empty"},
		{`{"prompt": "a", "ref_images": [""]}`, "ref_images[0] is empty"},
		{`{"prompt": "a", "masks": "m.png"}`, "unknown field"},
	} {
		_, err := ParseManifest(strings.NewReader(c.src), Item{})
		if !errors.Is(err, ErrManifest) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.src, err, c.want)
		}
	}
}
