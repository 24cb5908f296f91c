package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/rflowrt/rflow/internal/compiler/arch"
	"github.com/rflowrt/rflow/internal/compiler/exportquant"
)

func runQuantize(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := pflag.NewFlagSet("quantize", pflag.ContinueOnError)
	model := fs.StringP("model", "m", "", "the export folder `ONNX_DIR` to rewrite (diffusers/Optimum layout: model_index.json, transformer/model.onnx, …)")
	outDir := fs.String("out", "", "output `DIR` (must not exist): the same folder with the chosen components rewritten")
	weights := fs.String("weights", "", "weight `KIND`: int8 (dynamic int8 MatMul), q8 q4 or q4s (MatMulNBits, the compiler's measured block sizes; q4 keeps the modulation, image-attention and image-MLP-input layers at 8 bits, q4s stores every layer in 4 bits: smallest, least accurate), or fp32 (no quantization: with --fuse-attention only)")
	components := fs.StringSlice("components", []string{"transformer"}, "component folder `NAMES` to rewrite, comma-separated (e.g. transformer,text_encoder_3); the others are linked or copied unchanged")
	fuse := fs.Bool("fuse-attention", false, "also rewrite softmax(q·kᵀ·scale)·v attention into com.microsoft MultiHeadAttention (ONNX Runtime's flash kernel on CPU: no [S, S] score matrices)")
	keep32 := fs.Bool("keep-float32", false, "keep the weights left unquantized (embedders, output projection) in float32; by default they are stored as float16, as rflow convert stores them (either way the graph computes in float32)")
	quiet := fs.BoolP("quiet", "q", false, "print nothing but errors")
	if err := parseFlags(fs, args, out); err != nil {
		return err
	}
	usage := func(format string, a ...any) error { return &usageError{fs: fs, err: fmt.Errorf(format, a...)} }
	switch {
	case *model == "":
		return usage("-m ONNX_DIR is required")
	case *outDir == "":
		return usage("--out DIR is required")
	case *weights == "":
		return usage("--weights is required (int8, q8, q4, q4s, or fp32 with --fuse-attention)")
	}
	kind, err := exportquant.ParseKind(*weights)
	if err != nil {
		return usage("--weights: %v", err)
	}
	if kind == arch.FP32 && !*fuse {
		return usage("--weights fp32 leaves the weights as they are: add --fuse-attention, or choose int8, q8, q4 or q4s")
	}
	var comps []string
	for _, c := range *components {
		if c = strings.TrimSpace(c); c != "" {
			comps = append(comps, c)
		}
	}
	if len(comps) == 0 {
		return usage("--components is empty")
	}
	o := exportquant.FolderOptions{Options: exportquant.Options{Kind: kind, FuseAttention: *fuse, KeepFloat32: *keep32}, Components: comps}
	if !*quiet {
		o.OnComponent = func(c string) { fmt.Fprintf(errOut, "rflow: rewriting %s\n", c) }
	}
	start := time.Now()
	rep, err := exportquant.QuantizeFolder(ctx, *model, *outDir, o)
	if err != nil {
		return quantizeAdvice(err, rep)
	}
	if !*quiet {
		for _, c := range rep.Components {
			fmt.Fprintln(out, componentLine(c, kind))
		}
		fmt.Fprintf(out, "wrote %s in %.1f s\n", *outDir, time.Since(start).Seconds())
	}
	return nil
}

// componentLine reports one component: what was rewritten and the size before and after.
func componentLine(c exportquant.ComponentReport, kind arch.WeightKind) string {
	var parts []string
	if kind.Quantized() {
		parts = append(parts, fmt.Sprintf("%d of %d weight MatMuls quantized to %s (%d left float: outside the repeated blocks or too small)",
			c.Quantized, c.WeightMatMuls, kind, c.Float))
		if c.Float16Weights > 0 {
			parts = append(parts, fmt.Sprintf("%d float weight%s stored as float16", c.Float16Weights, plural(c.Float16Weights)))
		}
	}
	if c.Attentions > 0 || c.AttentionsLeft > 0 {
		parts = append(parts, fmt.Sprintf("%d attention%s fused, %d Softmax left (masked or biased attention stays unfused)", c.Attentions, plural(c.Attentions), c.AttentionsLeft))
	}
	size := fmt.Sprintf("%s → %s", mib(c.BytesBefore), mib(c.BytesAfter))
	if c.BytesBefore > 0 {
		size += fmt.Sprintf(" (%.2f×)", float64(c.BytesAfter)/float64(c.BytesBefore))
	}
	if c.Unchanged {
		size = "unchanged, copied"
	}
	return fmt.Sprintf("%s: %s; %s", c.Name, strings.Join(parts, "; "), size)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// quantizeAdvice says what to do about the errors the rewrite refuses input with.
func quantizeAdvice(err error, rep *exportquant.Report) error {
	switch {
	case errors.Is(err, exportquant.ErrAlreadyQuantized):
		return fmt.Errorf("%w; quantize the original float export instead (nothing was written)", err)
	case errors.Is(err, exportquant.ErrNothingToRewrite):
		return fmt.Errorf("%w; nothing was written (choose other --components, or another --weights kind)", err)
	case errors.Is(err, exportquant.ErrUnsupportedOpset):
		return fmt.Errorf("%w; re-export the model with an opset ONNX Runtime runs (e.g. 17); nothing was written", err)
	case errors.Is(err, exportquant.ErrBadComponent):
		return fmt.Errorf("%w; pass --components with the folder names listed", err)
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w; -m takes an ONNX export folder (model_index.json, transformer/model.onnx, …)", err)
	}
	return err
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
