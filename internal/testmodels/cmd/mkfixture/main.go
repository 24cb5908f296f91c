// Command mkfixture writes a small SD3 or FLUX model folder in the Optimum ONNX layout, with random
// weights, for tests, benchmarks and trying rflow without downloading a model — or, with --checkpoint,
// the same weights as a diffusers checkpoint folder of safetensors (what rflow compiles):
//
//	go run ./internal/testmodels/cmd/mkfixture --kind sd3|sd3-no-t5|flux-dev|flux-schnell [--size tiny|bench|large]
//	    [--ids int32|int64] [--precision fp32|fp16] [--external-data] [--seed N] [--checkpoint] [--bf16]
//	    --out DIR [--force]
//
// It prints the files it wrote with their sizes and how long that took. Bad flags exit with status 2,
// other failures (including an existing non-empty --out without --force) with status 1.
package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/testmodels"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// managed are the top-level entries a model folder written by testmodels.Write can have; --force
// removes these (and only these) before writing.
var managed = []string{"model_index.json", "scheduler", "tokenizer", "tokenizer_2", "tokenizer_3", "text_encoder",
	"text_encoder_2", "text_encoder_3", "transformer", "vae_decoder", "vae_encoder", "vae"}

type usageError struct{ error }

func run(args []string, stdout, stderr io.Writer) int {
	o, out, force, ckpt, err := parseFlags(args, stderr)
	if errors.Is(err, pflag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "mkfixture: %v\n", err)
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(stderr, "run 'mkfixture --help' for usage")
			return 2
		}
		return 1
	}
	if err := prepareOut(out, force); err != nil {
		fmt.Fprintf(stderr, "mkfixture: %v\n", err)
		return 1
	}
	start := time.Now()
	write := testmodels.Write
	if ckpt {
		write = testmodels.WriteCheckpoint
	}
	if err := write(out, o); err != nil {
		fmt.Fprintf(stderr, "mkfixture: %v\n", err)
		return 1
	}
	elapsed := time.Since(start)
	if err := report(stdout, out, o, ckpt, elapsed); err != nil {
		fmt.Fprintf(stderr, "mkfixture: %v\n", err)
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (o testmodels.Options, out string, force, ckpt bool, err error) {
	fl := pflag.NewFlagSet("mkfixture", pflag.ContinueOnError)
	fl.SetOutput(stderr)
	kind := fl.String("kind", "", "model kind: sd3, sd3-no-t5, flux-dev or flux-schnell (required)")
	size := fl.String("size", "tiny", "component sizes: tiny (tests), bench (benchmarks) or large (a ~550M-parameter transformer)")
	ids := fl.String("ids", "int64", "element type of the CLIP encoders' input_ids: int32 or int64 (T5 is always int64)")
	prec := fl.String("precision", "fp32", "element type of every float input and output: fp32 or fp16")
	fl.BoolVar(&o.ExternalData, "external-data", false, "write the transformer and T5 weights to model.onnx_data")
	fl.Uint64Var(&o.Seed, "seed", 0, "weight seed (the same flags always give the same bytes)")
	fl.BoolVar(&ckpt, "checkpoint", false, "write a diffusers checkpoint folder (config.json + safetensors per component, one vae/) instead of the ONNX export")
	fl.BoolVar(&o.BF16Weights, "bf16", false, "round the weights to bfloat16 (a checkpoint stores them as BF16; an export as the same float32 values)")
	fl.StringVar(&out, "out", "", "folder to write (required)")
	fl.BoolVar(&force, "force", false, "write into a non-empty --out, replacing the model folder entries there")
	fl.StringVar(&o.SharedDir, "shared", "", "shared/tokenizers folder to copy the real tokenizers from (default: next to the module root, if there)")
	fl.BoolVar(&o.GeneratedVocab, "generated-vocab", false, "write a small generated vocabulary instead of the real tokenizers")
	fl.Usage = func() {
		fmt.Fprintf(stderr, "usage: mkfixture --kind KIND --out DIR [flags]\n\nWrites a random-weight SD3/FLUX model folder in the Optimum ONNX layout.\n\n%s", fl.FlagUsages())
	}
	if err = fl.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return o, "", false, false, err
		}
		return o, "", false, false, usageError{err}
	}
	if fl.NArg() > 0 {
		return o, "", false, false, usageError{fmt.Errorf("unexpected arguments %q", fl.Args())}
	}
	if o.Kind, err = testmodels.ParseKind(*kind); *kind == "" || err != nil {
		return o, "", false, false, usageError{fmt.Errorf("--kind %q: want one of sd3, sd3-no-t5, flux-dev, flux-schnell", *kind)}
	}
	switch testmodels.Size(*size) {
	case testmodels.SizeTiny, testmodels.SizeBench, testmodels.SizeLarge:
		o.Size = testmodels.Size(*size)
	default:
		return o, "", false, false, usageError{fmt.Errorf("--size %q: want tiny, bench or large", *size)}
	}
	if o.IDs, err = pick("--ids", *ids, map[string]onnx.DataType{"int32": onnx.Int32, "int64": onnx.Int64}); err != nil {
		return o, "", false, false, err
	}
	precs := map[string]onnx.DataType{"fp32": onnx.Float, "float32": onnx.Float, "fp16": onnx.Float16, "float16": onnx.Float16}
	if o.Precision, err = pick("--precision", *prec, precs); err != nil {
		return o, "", false, false, err
	}
	if ckpt {
		for _, f := range []string{"ids", "precision", "external-data"} {
			if fl.Changed(f) {
				return o, "", false, false, usageError{fmt.Errorf("--%s applies to the ONNX export, not to --checkpoint", f)}
			}
		}
	}
	if out == "" {
		return o, "", false, false, usageError{errors.New("--out is required")}
	}
	return o, out, force, ckpt, nil
}

func pick(flag, v string, valid map[string]onnx.DataType) (onnx.DataType, error) {
	if t, ok := valid[v]; ok {
		return t, nil
	}
	var names []string
	for k := range valid {
		names = append(names, k)
	}
	slices.Sort(names)
	return 0, usageError{fmt.Errorf("%s %q: want one of %s", flag, v, strings.Join(names, ", "))}
}

// prepareOut refuses a non-empty out unless force, in which case it removes the entries a model
// folder has (other files stay).
func prepareOut(out string, force bool) error {
	entries, err := os.ReadDir(out)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		return nil
	}
	if !force {
		return fmt.Errorf("--out %s exists and is not empty (%d entries); use --force to replace the model folder there", out, len(entries))
	}
	for _, name := range managed {
		if err := os.RemoveAll(filepath.Join(out, name)); err != nil {
			return err
		}
	}
	return nil
}

// report prints what was written: every file with its size, then the total and the time taken.
func report(w io.Writer, out string, o testmodels.Options, ckpt bool, elapsed time.Duration) error {
	type entry struct {
		rel  string
		size int64
	}
	var files []entry
	var total int64
	err := filepath.WalkDir(out, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		files = append(files, entry{filepath.ToSlash(rel), info.Size()})
		total += info.Size()
		return nil
	})
	if err != nil {
		return err
	}
	size := o.Size
	if size == "" {
		size = testmodels.SizeTiny
	}
	if ckpt {
		dtype := "F32"
		if o.BF16Weights {
			dtype = "BF16"
		}
		fmt.Fprintf(w, "wrote %s checkpoint (%s, %s weights, seed %d) to %s\n", o.Kind, size, dtype, o.Seed, out)
	} else {
		fmt.Fprintf(w, "wrote %s (%s, %v ids, %v I/O, external data %t, seed %d) to %s\n",
			o.Kind, size, o.IDs, o.Precision, o.ExternalData, o.Seed, out)
	}
	for _, f := range files {
		fmt.Fprintf(w, "  %10s  %s\n", humanSize(f.size), f.rel)
	}
	fmt.Fprintf(w, "%d files, %s in %.2fs\n", len(files), humanSize(total), elapsed.Seconds())
	return nil
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
