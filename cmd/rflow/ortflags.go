package main

import (
	"github.com/spf13/pflag"

	"github.com/rflowrt/rflow/internal/ort"
)

// ortFlags are the flags of every subcommand that loads ONNX Runtime.
type ortFlags struct {
	lib     string
	verbose bool
}

func addORTFlags(fs *pflag.FlagSet) *ortFlags {
	f := &ortFlags{}
	fs.StringVar(&f.lib, "ort-lib", "", "ONNX Runtime shared library to load (default: $"+ort.LibraryEnv+", .ort/ beside the binary or in its parent, pip's onnxruntime, system paths; never the working directory)")
	fs.BoolVarP(&f.verbose, "verbose", "v", false, "let ONNX Runtime log warnings, not only errors")
	return f
}

func (f *ortFlags) init() error {
	return ort.Init(ort.Config{LibraryPath: f.lib, Verbose: f.verbose})
}
