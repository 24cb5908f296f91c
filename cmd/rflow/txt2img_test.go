package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/assets"
	"github.com/rflowrt/rflow/internal/imagefile"
	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/ort/orttest"
	"github.com/rflowrt/rflow/internal/testmodels"
)

func needORT(t *testing.T) string {
	t.Helper()
	lib := orttest.Library()
	if lib == "" {
		t.Skip("no ONNX Runtime library: run make setup")
	}
	return lib
}

// classifyPNG decodes a written image and classifies it against the demo's components.
func classifyPNG(t *testing.T, path string) assets.Component {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	img, err := png.Decode(fh)
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	rgb := make([]float32, 3*w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			for c, v := range []uint32{r, g, bl} {
				rgb[c*w*h+y*w+x] = float32(v>>8)/127.5 - 1
			}
		}
	}
	comp, _ := assets.Classify(rgb, h, w)
	return comp
}

func TestTxt2imgDemo(t *testing.T) {
	lib := needORT(t)
	dir := t.TempDir()
	for _, c := range []struct{ model, prompt, want string }{
		{"", "a green star on a black background", "green star on black"},
		{"demo-flux", "a white ring on a purple background", "white ring on purple"},
	} {
		out := filepath.Join(dir, "img-"+c.model+".png")
		code, _, errOut := runCLI("txt2img", "--ort-lib", lib, "-m", c.model, "-p", c.prompt, "-s", "11", "-o", out, "-q")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", c.model, code, errOut)
		}
		if got := classifyPNG(t, out).String(); got != c.want {
			t.Errorf("%s: drew %q, want %q", c.model, got, c.want)
		}
		text, err := imagefile.ReadPNGText(out)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(text["parameters"], c.prompt+"\nSteps: 28, Sampler: Euler") || !strings.Contains(text["parameters"], "Seed: 11, Size: 256x256") {
			t.Errorf("%s: parameters %q", c.model, text["parameters"])
		}
		var rf map[string]any
		if err := json.Unmarshal([]byte(text["rflow"]), &rf); err != nil || rf["settings"] == nil {
			t.Errorf("%s: rflow chunk %q: %v", c.model, text["rflow"], err)
		}
	}
}

func TestTxt2imgOutputsAndTimings(t *testing.T) {
	lib := needORT(t)
	dir := t.TempDir()
	timings := filepath.Join(dir, "t.json")
	out := filepath.Join(dir, "red.png")
	code, _, errOut := runCLI("txt2img", "--ort-lib", lib, "-p", "a red circle", "-s", "5", "-b", "2", "--steps", "8",
		"-o", out, "--timings", timings, "-q")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, name := range []string{"red-0.png", "red-1.png"} {
		if c := classifyPNG(t, filepath.Join(dir, name)); c.Shape != "circle" || c.Color != "red" {
			t.Errorf("%s: drew %v", name, c)
		}
	}
	var tm map[string]float64
	data, _ := os.ReadFile(timings)
	if err := json.Unmarshal(data, &tm); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"steps", "tokenize_ms", "encode_ms", "denoise_ms", "transformer_ms", "scheduler_ms", "decode_ms", "write_ms", "total_ms", "peak_rss_bytes"} {
		if _, ok := tm[k]; !ok {
			t.Errorf("timings lack %s: %s", k, data)
		}
	}
	if tm["steps"] != 16 || tm["peak_rss_bytes"] <= 0 {
		t.Errorf("timings %s", data)
	}
	// A second run refuses to overwrite and says how to.
	code, _, errOut = runCLI("txt2img", "--ort-lib", lib, "-p", "a red circle", "-s", "5", "-o", filepath.Join(dir, "red-0.png"), "-q")
	if code != 1 || !strings.Contains(errOut, "--overwrite") {
		t.Errorf("existing file: exit %d, %q", code, errOut)
	}
}

func TestTxt2imgFixtureModel(t *testing.T) {
	lib := needORT(t)
	for _, c := range []struct {
		kind testmodels.Kind
		args []string
	}{
		{testmodels.KindSD3, []string{"-n", "blurry", "--cfg-scale", "4", "--sampler", "heun"}},
		{testmodels.KindFluxDev, []string{"--guidance", "4", "-n", "blurry", "--true-cfg-scale", "2", "--scheduler", "karras"}},
	} {
		dir := testmodels.Cached(t, testmodels.Options{Kind: c.kind, Size: testmodels.SizeTiny, IDs: onnx.Int64, Precision: onnx.Float})
		out := filepath.Join(t.TempDir(), "fixture.png")
		args := append([]string{"txt2img", "--ort-lib", lib, "-m", dir, "-p", "a cat", "-W", "64", "-H", "64", "--steps", "2", "-o", out, "-q"}, c.args...)
		code, _, errOut := runCLI(args...)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", c.kind, code, errOut)
		}
		fh, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		cfg, _, err := image.DecodeConfig(fh)
		fh.Close()
		if err != nil || cfg.Width != 64 || cfg.Height != 64 {
			t.Fatalf("%s: image %+v, %v", c.kind, cfg, err)
		}
	}
}

func TestTxt2imgErrors(t *testing.T) {
	lib := needORT(t)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{}, 2, "--prompt is required"},
		{[]string{"-p", "x", "-W", "500"}, 2, "not a multiple of 16"},
		{[]string{"-p", "x", "--sampler", "nope"}, 2, "euler"},
		{[]string{"-p", "x", "--provider", "vulkan"}, 2, "cpu, cuda"},
		{[]string{"-p", "x", "-m", t.TempDir()}, 1, "model_index.json"},
		{[]string{"-p", "x", "--strength", "0.5"}, 2, "--init-image"},
	} {
		code, _, errOut := runCLI(append([]string{"txt2img", "--ort-lib", lib, "-o", filepath.Join(t.TempDir(), "x.png")}, c.args...)...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d (want %d), stderr %q (want %q)", c.args, code, c.code, errOut, c.want)
		}
	}
}

func TestTxt2imgPreviewAndJPEG(t *testing.T) {
	lib := needORT(t)
	dir := t.TempDir()
	preview, out := filepath.Join(dir, "preview.png"), filepath.Join(dir, "{prompt}-{seed}.jpg")
	code, _, errOut := runCLI("txt2img", "--ort-lib", lib, "-p", "a blue square", "-s", "3", "--steps", "6",
		"--preview-every", "2", "--preview-path", preview, "-o", out, "-q")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	fh, err := os.Open(preview)
	if err != nil {
		t.Fatalf("no preview written: %v", err)
	}
	cfg, _, err := image.DecodeConfig(fh)
	fh.Close()
	if err != nil || cfg.Width != 256 || cfg.Height != 256 {
		t.Fatalf("preview %+v, %v: want the image's size, 256×256", cfg, err)
	}
	jpg := filepath.Join(dir, "a-blue-square-3.jpg")
	text, err := imagefile.ReadJPEGUserComment(jpg)
	if err != nil || !strings.HasPrefix(text, "a blue square\nSteps: 6") {
		t.Fatalf("JPEG %s: comment %q, %v", jpg, text, err)
	}
}

// Output problems are found before ONNX Runtime or any model loads: with a library and a model that
// do not exist, the error is still the output's.
func TestTxt2imgOutputCheckedFirst(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "old.png")
	file := filepath.Join(dir, "file")
	for _, p := range []string{existing, file} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-o", existing}, 1, "--overwrite"},
		{[]string{"-o", filepath.Join(dir, "x.webp")}, 2, "extension"},
		{[]string{"-o", filepath.Join(dir, "{nope}.png")}, 2, "unknown placeholder {nope}"},
		{[]string{"-o", filepath.Join(dir, "{seed.png")}, 2, "unclosed"},
		{[]string{"-o", filepath.Join(file, "x.png")}, 1, "not a directory"},
		{[]string{"-o", filepath.Join(dir, "{prompt}.png"), "-b", "2"}, 2, "add {index} or {seed}"},
		{[]string{"-o", filepath.Join(dir, "{seed}.png"), "--batch-size", "2", "--batch-mode", "one-generator"}, 2, "add {index} or {seed}"},
		{[]string{"-o", filepath.Join(dir, "x.png"), "--timings", filepath.Join(file, "t.json")}, 1, "not a directory"},
		{[]string{"-o", filepath.Join(dir, "x.png"), "--timings", dir}, 2, "is a directory"},
	}
	if runtime.GOOS == "linux" {
		cases = append(cases, struct {
			args []string
			code int
			want string
		}{[]string{"-o", "/proc/rflow-test/x.png"}, 1, "cannot write in /proc"})
	}
	for _, c := range cases {
		args := append([]string{"txt2img", "--ort-lib", "/nonexistent/libonnxruntime.so", "-m", "/nonexistent-model", "-p", "a cat", "-s", "1"}, c.args...)
		code, _, errOut := runCLI(args...)
		if code != c.code || !strings.Contains(errOut, c.want) || strings.Contains(errOut, "nonexistent") {
			t.Errorf("%q: exit %d, stderr %q; want exit %d with %q, before the library or model is looked at", c.args, code, errOut, c.code, c.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("the checks left files behind: %v", entries)
	}
}

// A missing output folder is created; when writing still fails at the end (here the folder only
// known after the run is a file), the image is kept under a fallback name and the error says where.
func TestTxt2imgOutputFallback(t *testing.T) {
	lib := needORT(t)
	dir, tmp := t.TempDir(), t.TempDir()
	t.Setenv("TMPDIR", tmp)
	out := filepath.Join(dir, "new", "sub", "x.png")
	if code, _, errOut := runCLI("txt2img", "--ort-lib", lib, "-p", "a red circle", "-s", "2", "--steps", "2", "-W", "64", "-H", "64", "-o", out, "-q"); code != 0 {
		t.Fatalf("missing folder: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "euler"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI("txt2img", "--ort-lib", lib, "-p", "a red circle", "-s", "2", "--steps", "2", "-W", "64", "-H", "64",
		"-o", filepath.Join(dir, "{sampler}", "x.png"), "-q")
	kept, _ := filepath.Glob(filepath.Join(tmp, "rflow-kept-x-*.png"))
	if code != 1 || len(kept) != 1 || !strings.Contains(errOut, kept[0]) {
		t.Fatalf("exit %d, stderr %q, kept %v; want exit 1 naming the one kept image", code, errOut, kept)
	}
	text, err := imagefile.ReadPNGText(kept[0])
	if err != nil || !strings.Contains(text["parameters"], "Seed: 2") {
		t.Errorf("kept image's parameters %q, %v", text["parameters"], err)
	}
}

// pngPixels reads a PNG's pixels as 8-bit RGBA bytes.
func pngPixels(t *testing.T, path string) []byte {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	img, err := png.Decode(fh)
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	rgba := image.NewRGBA(b)
	draw.Draw(rgba, b, img, b.Min, draw.Src)
	return rgba.Pix
}

// Several images default to a seed per image, seed + k, as A1111 and sd.cpp users expect: each image
// records the seed that redraws it alone. --batch-mode one-generator keeps diffusers' one generator per
// run, and each image then records its run's seed and its place in the batch.
func TestTxt2imgSeedPerImageDefault(t *testing.T) {
	lib := needORT(t)
	dir := t.TempDir()
	common := []string{"txt2img", "--ort-lib", lib, "-p", "a star", "--steps", "3", "-W", "64", "-H", "64", "-q"}
	run := func(args ...string) {
		t.Helper()
		if code, _, errOut := runCLI(append(append([]string{}, common...), args...)...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
	}
	run("-s", "5", "-b", "2", "--batch-size", "2", "-o", filepath.Join(dir, "b.png"))
	run("-s", "8", "-o", filepath.Join(dir, "alone.png"))
	for k := range 4 {
		text, err := imagefile.ReadPNGText(filepath.Join(dir, fmt.Sprintf("b-%d.png", k)))
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("Seed: %d,", 5+k); !strings.Contains(text["parameters"], want) || strings.Contains(text["parameters"], "Batch pos") {
			t.Errorf("image %d: parameters %q, want %s and no batch position", k, text["parameters"], want)
		}
	}
	if !bytes.Equal(pngPixels(t, filepath.Join(dir, "b-3.png")), pngPixels(t, filepath.Join(dir, "alone.png"))) {
		t.Error("image 3 of seed 5 differs from seed 8 drawn alone")
	}
	run("-s", "5", "--batch-size", "2", "--batch-mode", "one-generator", "-o", filepath.Join(dir, "g.png"))
	text, err := imagefile.ReadPNGText(filepath.Join(dir, "g-1.png"))
	if err != nil {
		t.Fatal(err)
	}
	if p := text["parameters"]; !strings.Contains(p, "Seed: 5,") || !strings.Contains(p, "Batch size: 2, Batch pos: 1") {
		t.Errorf("one generator: parameters %q, want Seed: 5 with Batch size: 2, Batch pos: 1", p)
	}
	if !strings.Contains(text["rflow"], `"batch_size":2,"batch_pos":1`) {
		t.Errorf("one generator: rflow chunk %s lacks the batch position", text["rflow"])
	}
}

// Previews are the image's size fitted into ComfyUI's 512-pixel preview box, carry no invented
// metadata, and --preview-path expands {step}.
func TestTxt2imgPreviewSizeStepAndMetadata(t *testing.T) {
	lib := needORT(t)
	dir := t.TempDir()
	code, _, errOut := runCLI("txt2img", "--ort-lib", lib, "-p", "a blue square", "-s", "3", "--steps", "4", "-W", "1024", "-H", "512",
		"--preview-every", "2", "--preview-path", filepath.Join(dir, "p-{step}-{seed}.png"), "-o", filepath.Join(dir, "x.png"), "-q")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, step := range []int{2, 4} {
		path := filepath.Join(dir, fmt.Sprintf("p-%d-3.png", step))
		fh, err := os.Open(path)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		cfg, _, err := image.DecodeConfig(fh)
		fh.Close()
		if err != nil || cfg.Width != 512 || cfg.Height != 256 {
			t.Errorf("step %d: preview %+v, %v; want 512×256", step, cfg, err)
		}
		if text, err := imagefile.ReadPNGText(path); err != nil || len(text) != 0 {
			t.Errorf("step %d: preview metadata %q, %v; want none", step, text, err)
		}
	}
	if code, _, errOut := runCLI("txt2img", "--ort-lib", "/nonexistent/lib.so", "-p", "x", "--preview-every", "1",
		"--preview-path", filepath.Join(dir, "p-{stp}.png"), "-o", filepath.Join(dir, "y.png")); code != 2 || !strings.Contains(errOut, "{stp}") {
		t.Errorf("bad --preview-path: exit %d, %q; want a usage error before anything loads", code, errOut)
	}
}

func TestPreviewSize(t *testing.T) {
	for _, c := range [][5]int{{32, 32, 8, 256, 256}, {128, 128, 8, 512, 512}, {128, 64, 8, 512, 256}, {96, 128, 8, 384, 512},
		{8, 4, 8, 64, 32}, {200, 3, 8, 512, 8}} {
		if w, h := previewSize(c[0], c[1], c[2]); w != c[3] || h != c[4] {
			t.Errorf("latent %d×%d ×%d: preview %d×%d, want %d×%d", c[0], c[1], c[2], w, h, c[3], c[4])
		}
	}
}
