package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/rflowrt/rflow/internal/rng"
)

func runNoise(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := pflag.NewFlagSet("noise", pflag.ContinueOnError)
	seed := fs.Uint64P("seed", "s", 0, "seed (torch.manual_seed; torch keeps the low 32 bits)")
	shape := fs.String("shape", "", "comma-separated NCHW shape, e.g. 1,16,128,128")
	kinds := make([]string, 0, 2)
	for _, k := range rng.Kinds() {
		kinds = append(kinds, string(k))
	}
	kind := fs.String("rng", string(rng.TorchCPU), "generator: "+strings.Join(kinds, ", ")+"; sd.cpp's cuda = philox, std_default is read as torch-cpu")
	batch := fs.String("batch-mode", "one-generator", "one-generator (one stream over the whole batch: diffusers, ComfyUI) or seed-per-image (seed+i: A1111, sd.cpp)")
	indices := fs.String("indices", "", "comma-separated flat indices to print (default: all values)")
	asJSON := fs.Bool("json", false, `print {"shape":[…],"values":[…]}`)
	if err := parseFlags(fs, args, out); err != nil {
		return err
	}
	usage := func(format string, a ...any) error { return &usageError{fs: fs, err: fmt.Errorf(format, a...)} }
	if *shape == "" {
		return usage("--shape is required, e.g. --shape 1,16,128,128")
	}
	dims, err := parseInts(*shape)
	if err != nil {
		return usage("--shape: %v", err)
	}
	k, err := rngKind(*kind)
	if err != nil {
		return usage("%v", err)
	}
	mode, err := rng.ParseBatchMode(*batch)
	if err != nil {
		return usage("--batch-mode: %v", err)
	}
	var idx []int
	if *indices != "" {
		if idx, err = parseInts(*indices); err != nil {
			return usage("--indices: %v", err)
		}
	}
	values, err := rng.Noise(k, *seed, dims, mode)
	if err != nil {
		return usage("%v", err)
	}
	picked := make([]float64, 0, len(values))
	if idx == nil {
		for _, v := range values {
			picked = append(picked, float64(v))
		}
	}
	for _, i := range idx {
		if i < 0 || i >= len(values) {
			return usage("--indices: %d is outside [0, %d)", i, len(values))
		}
		picked = append(picked, float64(values[i]))
	}
	if *asJSON {
		return json.NewEncoder(out).Encode(struct {
			Shape  []int     `json:"shape"`
			Values []float64 `json:"values"`
		}{dims, picked})
	}
	for i, v := range picked {
		at := i
		if idx != nil {
			at = idx[i]
		}
		fmt.Fprintf(out, "%d\t%v\n", at, v)
	}
	return nil
}

func parseInts(s string) ([]int, error) {
	parts := strings.Split(s, ",")
	out := make([]int, 0, len(parts))
	for _, p := range parts {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", p)
		}
		out = append(out, v)
	}
	return out, nil
}
