package main

import (
	"bytes"
	"image"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readPixels decodes a PNG into NRGBA pixels.
func readPixels(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	out := image.NewNRGBA(img.Bounds())
	draw.Draw(out, out.Bounds(), img, img.Bounds().Min, draw.Src)
	return out.Pix
}

// TestBatchEditItems: manifest items with init_image, mask and mask_blur (paths relative to the
// manifest) draw the image rflow txt2img draws with the same flags, run alone beside a plain item;
// a rerun skips them; a mask whose content changed makes the item changed (refused, then redrawn with
// --redo-changed) although the manifest is the same.
func TestBatchEditItems(t *testing.T) {
	lib := needORT(t)
	dir := t.TempDir()
	init, mask := filepath.Join(dir, "init.png"), filepath.Join(dir, "masks", "m.png")
	if err := os.Mkdir(filepath.Join(dir, "masks"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeGreyPNG(t, init, 64, func(x, y int) uint8 { return uint8(4 * (x + y) / 2) })
	writeGreyPNG(t, mask, 64, func(x, _ int) uint8 { return uint8(255 * (x / 32)) })
	manifest := filepath.Join(dir, "manifest.jsonl")
	if err := os.WriteFile(manifest, []byte(`{"prompt": "a red circle", "id": "plain"}
{"prompt": "a red circle", "id": "inpaint", "seed": 7, "init_image": "init.png", "mask": "masks/m.png", "mask_blur": 2}
{"prompt": "a blue star", "id": "img2img", "seed": 8, "init_image": "`+init+`", "strength": 0.5}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	args := []string{"batch", "--ort-lib", lib, "--manifest", manifest, "--out", out, "-W", "64", "-H", "64", "--steps", "3",
		"--batch-size", "3", "-q"}
	if code, _, errOut := runCLI(args...); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, c := range []struct {
		id   string
		args []string
	}{
		{"inpaint", []string{"-p", "a red circle", "--seed", "7", "-i", init, "--mask", mask, "--mask-blur", "2"}},
		{"img2img", []string{"-p", "a blue star", "--seed", "8", "-i", init, "--strength", "0.5"}},
	} {
		single := filepath.Join(t.TempDir(), c.id+".png")
		code, _, errOut := runCLI(append([]string{"txt2img", "--ort-lib", lib, "-W", "64", "-H", "64", "--steps", "3", "-q",
			"-o", single}, c.args...)...)
		if code != 0 {
			t.Fatalf("txt2img %s: exit %d: %s", c.id, code, errOut)
		}
		if !bytes.Equal(readPixels(t, single), readPixels(t, filepath.Join(out, c.id+".png"))) {
			t.Errorf("%s: the batch image differs from rflow txt2img's", c.id)
		}
	}
	recs := readLog(t, filepath.Join(out, "results-0-of-1.jsonl"))
	for _, r := range recs {
		if r.ID == "inpaint" && (r.Settings == nil || r.Settings.Task != "inpaint" || r.Settings.Strength != 0.75) {
			t.Errorf("inpaint record settings %+v", r.Settings)
		}
		if r.Timings == nil || (r.ID != "plain" && r.Timings.BatchSize != 1) {
			t.Errorf("%s ran in a batch: %+v", r.ID, r.Timings)
		}
	}
	if code, stdout, errOut := runCLI("batch", "status", "--manifest", manifest, "--out", out); code != 0 {
		t.Fatalf("status: exit %d: %s %s", code, stdout, errOut)
	}
	before := snapshot(t, out)
	if code, _, errOut := runCLI(args...); code != 0 || len(readLog(t, filepath.Join(out, "results-0-of-1.jsonl"))) != 3 {
		t.Fatalf("rerun: exit %d: %s", code, errOut)
	}
	if after := snapshot(t, out); len(after) != len(before) {
		t.Fatalf("rerun changed the folder")
	}
	// The same manifest, another mask: that item is changed.
	writeGreyPNG(t, mask, 64, func(_, y int) uint8 { return uint8(255 * (y / 32)) })
	code, _, errOut := runCLI(args...)
	if code != 2 || !strings.Contains(errOut, "inpaint") || strings.Contains(errOut, "img2img") {
		t.Fatalf("changed mask: exit %d, stderr %q; want 2 naming the inpaint item only", code, errOut)
	}
	if code, stdout, _ := runCLI("batch", "status", "--manifest", manifest, "--out", out); code == 0 || !strings.Contains(stdout, "inpaint") {
		t.Errorf("status after the mask changed: exit %d, %q; want the inpaint item named stale", code, stdout)
	}
	if code, _, errOut := runCLI(append(args, "--redo-changed")...); code != 0 {
		t.Fatalf("--redo-changed: exit %d: %s", code, errOut)
	}
	recs = readLog(t, filepath.Join(out, "results-0-of-1.jsonl"))
	if len(recs) != 4 || recs[3].ID != "inpaint" {
		t.Fatalf("after the mask changed: %+v", recs)
	}
	// A missing picture: one clear usage error.
	os.Remove(init)
	code, _, errOut = runCLI(args...)
	if code != 2 || !strings.Contains(errOut, "item inpaint: init_image") {
		t.Errorf("missing init image: exit %d, stderr %q", code, errOut)
	}
}
