package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

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

// cacheMaxEnv sets the optimized-graph cache's bound in GB when --cache-max-gb is not given.
const cacheMaxEnv = "RFLOW_CACHE_MAX_GB"

// sessionFlags are the ONNX Runtime session settings of the subcommands that generate images.
type sessionFlags struct {
	fs                    *pflag.FlagSet
	spin, lowMem, noCache bool
	cacheMaxGB            float64
}

func addSessionFlags(fs *pflag.FlagSet) *sessionFlags {
	f := &sessionFlags{fs: fs}
	fs.BoolVar(&f.spin, "spin", false, "let idle ONNX Runtime threads spin waiting for work (off by default: it burns CPU for no measurable wall-time gain)")
	fs.BoolVar(&f.lowMem, "low-mem", false, "lower peak memory: ONNX Runtime's memory pattern off, and the VAE decoded in 512-pixel tiles above 512² (pixels then differ slightly from an untiled decode; without it rflow tiles only when an untiled decode would not fit in the memory left, and says so)")
	fs.BoolVar(&f.noCache, "no-cache", false, "do not keep ONNX Runtime's optimized graphs on disk (also $"+ort.NoCacheEnv+"=1)")
	fs.Float64Var(&f.cacheMaxGB, "cache-max-gb", 0, "bound of the optimized-graph cache in GB, least recently used entries removed first; negative: no bound (default 2, or $"+cacheMaxEnv+")")
	return f
}

// apply sets so's spinning, memory and cache settings from the flags and the environment (getenv).
func (f *sessionFlags) apply(so *ort.SessionOptions, getenv func(string) string) error {
	so.Spinning = f.spin
	so.LowMem = f.lowMem
	if f.noCache || envTrue(getenv(ort.NoCacheEnv)) {
		so.CacheDir = ""
		return nil
	}
	gb := f.cacheMaxGB
	if !f.fs.Changed("cache-max-gb") {
		if v := strings.TrimSpace(getenv(cacheMaxEnv)); v != "" {
			var err error
			if gb, err = strconv.ParseFloat(v, 64); err != nil {
				return fmt.Errorf("$%s=%q: want a number of gigabytes", cacheMaxEnv, v)
			}
		}
	}
	switch {
	case gb < 0:
		so.CacheMaxBytes = -1
	case gb > 0:
		so.CacheMaxBytes = max(int64(gb*(1<<30)), 1)
	}
	if dir, err := os.UserCacheDir(); err == nil {
		so.CacheDir = filepath.Join(dir, "rflow", "ort-cache")
	}
	return nil
}

// envTrue reads a boolean environment variable: anything but "", "0", "false", "no" and "off" is true.
func envTrue(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "0", "false", "no", "off":
		return false
	}
	return true
}
