//go:build ignore

// fill_encode runs rflow's VAE encoder as FLUX Fill runs it on the masked image, for scripts/parity_edit.py:
// raw little-endian float32 pixels [1, 3, H, W] and ε [1, C, H/S, W/S] in, the model-space sample
// ((mean + exp(0.5·logvar)·ε − shift)·scale, vae.Encoder.EncodeSamples) out, as raw float32.
//
//	go build -o fill-encode scripts/fill_encode.go
//	fill-encode VAE_ENCODER_DIR WIDTH HEIGHT PIXELS.f32 EPS.f32 OUT.f32 [ORT_LIBRARY]
package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/ortopts"
	"github.com/rflowrt/rflow/vae"
)

func main() {
	if len(os.Args) < 7 {
		fmt.Fprintln(os.Stderr, "usage: fill-encode VAE_ENCODER_DIR WIDTH HEIGHT PIXELS.f32 EPS.f32 OUT.f32 [ORT_LIBRARY]")
		os.Exit(2)
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "fill-encode:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	dir := args[0]
	width, err := strconv.Atoi(args[1])
	if err != nil {
		return fmt.Errorf("width: %w", err)
	}
	height, err := strconv.Atoi(args[2])
	if err != nil {
		return fmt.Errorf("height: %w", err)
	}
	lib := ""
	if len(args) > 6 {
		lib = args[6]
	}
	if err := ort.Init(ort.Config{LibraryPath: lib}); err != nil {
		return err
	}
	pix, err := readF32(args[3])
	if err != nil {
		return err
	}
	eps, err := readF32(args[4])
	if err != nil {
		return err
	}
	cfg, err := vae.ReadConfig(dir)
	if err != nil {
		return err
	}
	ctx := context.Background()
	enc, err := vae.LoadEncoder(ctx, filepath.Join(dir, "model.onnx"), ortopts.SessionOptions{}, cfg)
	if err != nil {
		return err
	}
	defer enc.Close()
	noise := func(dst []float32) { copy(dst, eps) }
	lat, err := enc.EncodeSamples(ctx, pix, height, width, []func([]float32){noise})
	if err != nil {
		return err
	}
	if len(lat) != len(eps) {
		return fmt.Errorf("%d ε values for %d latents", len(eps), len(lat))
	}
	f, err := os.Create(args[5])
	if err != nil {
		return err
	}
	if err := binary.Write(f, binary.LittleEndian, lat); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func readF32(path string) ([]float32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("%s: %d bytes, not float32 values", path, len(b))
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, nil
}
