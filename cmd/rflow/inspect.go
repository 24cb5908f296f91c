package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/pipeline"
)

func runInspect(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := pflag.NewFlagSet("inspect", pflag.ContinueOnError)
	model := fs.StringP("model", "m", "", "model to inspect: an ONNX export folder (diffusers/Optimum layout) or a checkpoint (.safetensors file or diffusers folder; its files' formats, architecture and sizes)")
	asJSON := fs.Bool("json", false, "print the report as one JSON object (dir, class_name, family, components, tokenizers, problems)")
	var ck checkpointFlags
	ck.register(fs)
	if err := parseFlags(fs, args, out); err != nil {
		return err
	}
	usage := func(format string, a ...any) error { return &usageError{fs: fs, err: fmt.Errorf(format, a...)} }
	if *model == "" {
		return usage("--model DIR is required")
	}
	if pipeline.IsCheckpoint(*model) || ck.anyFile() != "" {
		return inspectCheckpoint(out, ck.source(*model), *asJSON)
	}
	dir, err := modelFolder(*model)
	if err != nil {
		return err
	}
	rep := pipeline.Inspect(dir)
	if *asJSON {
		if err := json.NewEncoder(out).Encode(rep); err != nil {
			return err
		}
	} else {
		printInspectReport(out, rep)
	}
	if n := len(rep.Problems); n > 0 {
		s := "s"
		if n == 1 {
			s = ""
		}
		return fmt.Errorf("%d problem%s found in %s: fix them and run rflow inspect again", n, s, *model)
	}
	return nil
}

// printInspectReport writes the report for people: family, components with their signatures and
// sizes, tokenizers, then every problem on a line of its own.
func printInspectReport(out io.Writer, rep pipeline.Report) {
	fmt.Fprintf(out, "model     %s\n", rep.Dir)
	class, family := inspectOrUnknown(rep.ClassName), inspectOrUnknown(string(rep.Family))
	fmt.Fprintf(out, "pipeline  %s (family %s)\n", class, family)
	if rep.Layout != "" {
		fmt.Fprintf(out, "layout    %s\n", rep.Layout)
	}
	if rep.LayoutNote != "" {
		fmt.Fprintf(out, "          %s\n", rep.LayoutNote)
	}
	fmt.Fprintln(out, "\ncomponents:")
	for _, c := range rep.Components {
		if !c.Present {
			fmt.Fprintf(out, "  %-15s %s  (missing)\n", c.Name, c.Path)
			continue
		}
		size := inspectSize(c.Bytes)
		if len(c.ExternalData) > 0 {
			size += " with external data " + strings.Join(c.ExternalData, ", ")
		}
		fmt.Fprintf(out, "  %-15s %s  %s\n", c.Name, c.Path, size)
		tw := tabwriter.NewWriter(out, 0, 0, 1, ' ', 0)
		printInspectTensors(tw, "in", c.Inputs)
		printInspectTensors(tw, "out", c.Outputs)
		tw.Flush()
	}
	fmt.Fprintln(out, "\ntokenizers:")
	names := make([]string, 0, len(rep.Tokenizers))
	for n := range rep.Tokenizers {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		fmt.Fprintln(out, "  none")
	}
	for _, n := range names {
		fmt.Fprintf(out, "  %-15s %s\n", n, rep.Tokenizers[n])
	}
	if len(rep.Problems) == 0 {
		fmt.Fprintln(out, "\nproblems: none")
		return
	}
	fmt.Fprintf(out, "\nproblems (%d):\n", len(rep.Problems))
	for _, p := range rep.Problems {
		fmt.Fprintf(out, "  %s\n", oneLine(p.String()))
	}
}

// printInspectTensors writes one "in  name  dtype[dims]" line per tensor.
func printInspectTensors(tw io.Writer, kind string, ts []ort.TensorInfo) {
	for _, t := range ts {
		name, sig, _ := strings.Cut(t.String(), " ")
		fmt.Fprintf(tw, "    %s\t%s\t%s\n", kind, name, sig)
	}
}

func inspectOrUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// inspectSize prints a size in the largest binary unit that keeps it ≥ 1, with the exact byte count
// for small files.
func inspectSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
