package batch

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/pipeline"
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

// recordingGenerator keeps every request and draws one 8×8 image per item (or per request without
// Items).
type recordingGenerator struct{ reqs []pipeline.Request }

func (g *recordingGenerator) Generate(_ context.Context, r pipeline.Request, _ func(pipeline.Event)) (pipeline.Result, error) {
	g.reqs = append(g.reqs, r)
	n := max(len(r.Items), 1)
	var res pipeline.Result
	for range n {
		res.Images = append(res.Images, image.NewNRGBA(image.Rect(0, 0, 8, 8)))
		res.Noise, res.Latents = append(res.Noise, 0), append(res.Latents, 0)
	}
	res.Settings = pipeline.Resolved{Width: 8, Height: 8}
	return res, nil
}

// TestRunEditItems: edit items run alone with their pictures read (strength 0.75 by default), plain
// items still share a batch, and an item whose picture is not an image fails alone.
func TestRunEditItems(t *testing.T) {
	dir := t.TempDir()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, 4, 4))); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"a.png": buf.Bytes(), "bad.png": []byte("not a picture")} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src := `{"prompt": "plain 1", "id": "p1"}
{"prompt": "refs", "id": "refs", "ref_images": ["a.png", "a.png"]}
{"prompt": "plain 2", "id": "p2"}
{"prompt": "img2img", "id": "i2i", "init_image": "a.png"}
{"prompt": "bad", "id": "bad", "init_image": "bad.png", "strength": 0.3}`
	items, err := ParseManifest(strings.NewReader(src), Item{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ResolveInputs(items, dir); err != nil {
		t.Fatal(err)
	}
	g := &recordingGenerator{}
	sum, err := runOnce(t, t.TempDir(), g, items, Options{BatchSize: 4})
	if err != nil || sum.Succeeded != 4 || sum.Failed != 1 {
		t.Fatalf("summary %+v, %v", sum, err)
	}
	byPrompt := map[string]pipeline.Request{}
	for _, r := range g.reqs {
		if len(r.Items) > 0 {
			byPrompt[r.Items[0].Prompt] = r
		} else {
			byPrompt[r.Prompt] = r
		}
	}
	if len(g.reqs) != 3 || len(byPrompt["plain 1"].Items) != 2 {
		t.Fatalf("%d requests; want the two plain items together and each readable edit item alone", len(g.reqs))
	}
	if r := byPrompt["refs"]; len(r.RefImages) != 2 || r.InitImage != nil || r.Seed != 1 || len(r.Items) != 0 {
		t.Errorf("refs request: %d references, init %v, seed %d", len(r.RefImages), r.InitImage != nil, r.Seed)
	}
	if r := byPrompt["img2img"]; r.InitImage == nil || r.Strength != 0.75 || r.Mask != nil {
		t.Errorf("img2img request: init %v, strength %v", r.InitImage != nil, r.Strength)
	}
}
