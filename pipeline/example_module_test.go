package pipeline

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/ort"
)

// TestExampleModule builds and runs examples/hello, a program in its own module that imports rflow
// through a replace directive, the way a user's program does: it must start ONNX Runtime through the
// public API alone and draw the image an in-process Generate draws for the same request, bit for bit.
// Off-line: GOPROXY=off, every dependency comes from the module cache the main module's build filled.
func TestExampleModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a separate module (-short)")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not on PATH")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// A copy, so that go run's go.mod/go.sum updates land in the test's folder, with the replace
	// directive pointing at this checkout.
	dir := filepath.Join(t.TempDir(), "hello")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(root, "examples", "hello"))); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "GOWORK=off", "GOPROXY=off", "GOSUMDB=off", "GOFLAGS=-mod=mod", LibraryEnv+"="+ort.LibraryPath())
	out := filepath.Join(t.TempDir(), "hello.png")
	for _, args := range [][]string{
		{"mod", "edit", "-replace", "github.com/rflowrt/rflow=" + root},
		{"run", ".", "-prompt", "a red circle", "-seed", "7", "-steps", "4", "-out", out},
	} {
		cmd := exec.Command(gobin, args...)
		cmd.Dir, cmd.Env = dir, env
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s in a copy of examples/hello: %v\n%s", strings.Join(args, " "), err, msg)
		}
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	m, err := OpenDemo("demo-sd3")
	if err != nil {
		t.Fatal(err)
	}
	p := New(m, Options{Session: SessionOptions{IntraOpThreads: 1}})
	defer p.Close()
	res, err := p.Generate(context.Background(), Request{Prompt: "a red circle", Seed: 7, Steps: 4, Width: 128, Height: 128}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := res.Images[0]
	if img.Bounds() != want.Bounds() {
		t.Fatalf("example image is %v, want %v", img.Bounds(), want.Bounds())
	}
	b := want.Bounds()
	var got bytes.Buffer
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			got.Write([]byte{byte(r >> 8), byte(g >> 8), byte(bl >> 8), byte(a >> 8)})
		}
	}
	if !bytes.Equal(got.Bytes(), want.Pix) {
		t.Error("the example module's image differs from an in-process Generate of the same request")
	}
}
