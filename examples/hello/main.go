// Command hello draws one image with the embedded demo model through rflow's public Go API: a program
// in its own module, as yours would be. It starts no ONNX Runtime itself (the first Generate does; set
// RFLOW_ORT_LIB when the library is not found), reports progress and stops cleanly on Ctrl-C.
//
//	go run . -prompt "a red circle" -seed 7 -out hello.png
package main

import (
	"context"
	"flag"
	"fmt"
	"image/png"
	"os"
	"os/signal"

	"github.com/rflowrt/rflow/pipeline"
)

func main() {
	prompt := flag.String("prompt", "a red circle on a blue sky", "what to draw")
	seed := flag.Uint64("seed", 42, "noise seed")
	steps := flag.Int("steps", 8, "denoising steps")
	out := flag.String("out", "hello.png", "PNG file to write")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *prompt, *seed, *steps, *out); err != nil {
		fmt.Fprintln(os.Stderr, "hello:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, prompt string, seed uint64, steps int, out string) error {
	m, err := pipeline.OpenDemo("demo-sd3")
	if err != nil {
		return err
	}
	p := pipeline.New(m, pipeline.Options{Session: pipeline.SessionOptions{IntraOpThreads: 1}})
	defer p.Close()
	req := pipeline.Request{Prompt: prompt, Seed: seed, Steps: steps, Width: 128, Height: 128, RNG: pipeline.NoiseTorchCPU}
	res, err := p.Generate(ctx, req, func(e pipeline.Event) {
		if e.Stage == pipeline.StageDenoise {
			fmt.Fprintf(os.Stderr, "\rstep %d/%d", e.Step, e.Total)
		}
	})
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := png.Encode(f, res.Images[0]); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Printf("wrote %s: %dx%d, seed %d, sampler %s, ONNX Runtime %s\n", out, res.Settings.Width, res.Settings.Height,
		res.Settings.Seed, res.Settings.Sampler, pipeline.RuntimeVersion())
	return nil
}
