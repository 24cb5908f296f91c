package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/pflag"

	"github.com/rflowrt/rflow/pipeline"
)

func runConvert(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := pflag.NewFlagSet("convert", pflag.ContinueOnError)
	model := fs.StringP("model", "m", "", "checkpoint to convert: a .safetensors file (BFL FLUX, SAI SD3/SD3.5, ComfyUI) or a diffusers folder")
	outDir := fs.String("out", "", "output `DIR` (must not exist): a diffusers/Optimum ONNX folder any ONNX Runtime user can load")
	quiet := fs.BoolP("quiet", "q", false, "print nothing but errors")
	var ck checkpointFlags
	ck.register(fs)
	if err := parseFlags(fs, args, out); err != nil {
		return err
	}
	usage := func(format string, a ...any) error { return &usageError{fs: fs, err: fmt.Errorf(format, a...)} }
	switch {
	case fs.NArg() > 0:
		return usage("unexpected argument %q", fs.Arg(0))
	case *model == "":
		return usage("-m CHECKPOINT is required")
	case *outDir == "":
		return usage("--out DIR is required")
	}
	if !pipeline.IsCheckpoint(*model) {
		return usage("%s is not a checkpoint (a .safetensors file or a diffusers folder of safetensors)", *model)
	}
	o := pipeline.CompileOptions{Weights: string(ck.weights), TextWeights: string(ck.teWeights)}
	if !*quiet {
		o.OnComponent = func(comp string) { fmt.Fprintf(errOut, "rflow: compiling %s\n", comp) }
	}
	start := time.Now()
	if err := pipeline.ConvertCheckpoint(ctx, ck.source(*model), *outDir, o); err != nil {
		return withFlagAdvice(err)
	}
	if !*quiet {
		fmt.Fprintf(out, "wrote %s in %.1f s\n", *outDir, time.Since(start).Seconds())
	}
	return nil
}
