package main

import (
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeGreyPNG writes a size×size grey PNG with value v(x, y).
func writeGreyPNG(t *testing.T, path string, size int, v func(x, y int) uint8) {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, size, size))
	for y := range size {
		for x := range size {
			img.SetGray(x, y, color.Gray{Y: v(x, y)})
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

// TestTxt2imgEditErrors checks the one-line errors of the inpainting and Kontext flags: usage errors
// (exit 2) for flag combinations, failures (exit 1) for what only the model or the mask can tell.
func TestTxt2imgEditErrors(t *testing.T) {
	lib := needORT(t)
	dir := t.TempDir()
	init, mask, black, bad := filepath.Join(dir, "init.png"), filepath.Join(dir, "mask.png"), filepath.Join(dir, "black.png"),
		filepath.Join(dir, "bad.png")
	writeGreyPNG(t, init, 64, func(x, y int) uint8 { return uint8(4 * (x + y)) })
	writeGreyPNG(t, mask, 64, func(x, _ int) uint8 { return uint8(255 * (x / 32)) })
	writeGreyPNG(t, black, 64, func(int, int) uint8 { return 0 })
	if err := os.WriteFile(bad, []byte("not a picture"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--mask", mask}, 2, "--mask needs --init-image"},
		{[]string{"--mask-blur", "4"}, 2, "--mask-blur needs --mask"},
		{[]string{"-i", init, "--mask", bad}, 2, "not a PNG or JPEG"},
		{[]string{"--ref-image", bad}, 2, "--ref-image"},
		{[]string{"--ref-resize", "none"}, 2, "--ref-resize needs --ref-image"},
		{[]string{"--ref-image", init, "--ref-resize", "huge"}, 2, "kontext or none"},
		{[]string{"-i", init, "--mask", black}, 1, "all black"},
		{[]string{"--ref-image", init}, 1, "FLUX Kontext model"},
	} {
		args := append([]string{"txt2img", "--ort-lib", lib, "-p", "x", "-W", "64", "-H", "64", "--steps", "2",
			"-o", filepath.Join(t.TempDir(), "x.png")}, c.args...)
		code, _, errOut := runCLI(args...)
		if code != c.code || !strings.Contains(errOut, c.want) || strings.Count(strings.TrimSpace(errOut), "\n") > 1 {
			t.Errorf("%v: exit %d (want %d), stderr %q (want one line with %q)", c.args, code, c.code, errOut, c.want)
		}
	}
	out := filepath.Join(dir, "inpainted.png")
	code, _, errOut := runCLI("txt2img", "--ort-lib", lib, "-p", "x", "-W", "64", "-H", "64", "--steps", "2", "-q",
		"-i", init, "--mask", mask, "--mask-blur", "2", "-o", out)
	if code != 0 {
		t.Fatalf("inpaint: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
}
