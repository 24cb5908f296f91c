package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/pflag"

	"github.com/rflowrt/rflow/assets"
	"github.com/rflowrt/rflow/internal/ort"
)

// rflowVersion is the release; builds from a git checkout add the commit when Go recorded it.
const rflowVersion = "0.1.0-dev"

func runVersion(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := pflag.NewFlagSet("version", pflag.ContinueOnError)
	of := addORTFlags(fs)
	if err := parseFlags(fs, args, out); err != nil {
		return err
	}
	fmt.Fprintf(out, "rflow %s (%s %s/%s)\n", versionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	var demos []string
	for _, n := range assets.Names() {
		demos = append(demos, fmt.Sprintf("%s (%.1f kB)", n, float64(assets.Size(n))/1000))
	}
	fmt.Fprintf(out, "embedded demo models: %s\n", strings.Join(demos, ", "))
	if err := of.init(); err != nil {
		return err
	}
	fmt.Fprintf(out, "onnxruntime %s %s\n", ort.Version(), ort.LibraryPath())
	ps, err := ort.AvailableProviders()
	if err != nil {
		return err
	}
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = string(p)
	}
	fmt.Fprintf(out, "execution providers: %s\n", strings.Join(names, ", "))
	return nil
}

func versionString() string {
	v := rflowVersion
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += "+" + s.Value[:12]
			}
		}
	}
	return v
}
