package compiler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/rflowrt/rflow/internal/benchutil"
	"github.com/rflowrt/rflow/internal/compiler"
	"github.com/rflowrt/rflow/internal/compiler/checkpoint"
	"github.com/rflowrt/rflow/internal/half"
	"github.com/rflowrt/rflow/internal/safetensors"
	"github.com/rflowrt/rflow/internal/testmodels"
)

// childEnv makes the test binary a helper process (TestMain runs it before ONNX Runtime starts, so
// the helper's peak RSS is the compiler's alone): "convert SRC DST" compiles the checkpoint folder SRC
// into DST and prints a childReport.
const childEnv = "RFLOW_COMPILER_TEST_CHILD"

type childReport struct {
	Seconds float64 `json:"seconds"`
	// OpenKB is the resident size after Open (headers read, files mapped), before any weight is read;
	// PeakKB the peak resident size (VmHWM). The child reads both itself: the rusage of a child that Go
	// started includes the parent's peak (Go forks with CLONE_VM, and Linux carries the old mm's
	// high-water mark across exec), so it would report the test's memory, not the compiler's.
	OpenKB int64 `json:"open_kb"`
	PeakKB int64 `json:"peak_kb"`
}

func runChild(cmd string, args []string) int {
	if cmd != "convert" {
		fmt.Fprintf(os.Stderr, "unknown child command %q\n", cmd)
		return 2
	}
	start := time.Now()
	c, err := compiler.Open(compiler.Source{Model: args[0]})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	var rep childReport
	rep.OpenKB, _ = benchutil.StatusKB("VmRSS")
	if err := compiler.Write(context.Background(), c, args[1], compiler.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	rep.Seconds = time.Since(start).Seconds()
	rep.PeakKB, _ = benchutil.StatusKB("VmHWM")
	json.NewEncoder(os.Stdout).Encode(rep)
	return 0
}

// convertInChild compiles src into dst in a child process and returns its report.
func convertInChild(t testing.TB, src, dst string) childReport {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", src, dst)
	cmd.Env = append(os.Environ(), childEnv+"=convert")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("convert child: %v", err)
	}
	var rep childReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("convert child printed %q: %v", out, err)
	}
	return rep
}

// largestTensor is the largest tensor of a checkpoint folder's weight files as float32 bytes (what
// the compiler holds of it when it converts it) and the weights' total as float32 bytes.
func largestTensor(t testing.TB, dir string) (largest, total int64) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*", "*.safetensors"))
	for _, f := range files {
		r, err := safetensors.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range r.Names() {
			info, _ := r.Info(n)
			largest = max(largest, 4*info.Elements())
			total += 4 * info.Elements()
		}
		r.Close()
	}
	return largest, total
}

// replaceTransformer gives a checkpoint folder's transformer the config keys in set and new BF16
// random weights of the shapes checkpoint.Expected says for the result (a model deeper or wider than
// the fixture sizes, for memory tests).
func replaceTransformer(t testing.TB, dir string, set map[string]any) {
	t.Helper()
	p := filepath.Join(dir, "transformer", "config.json")
	var cfg map[string]any
	b, err := os.ReadFile(p)
	if err == nil {
		err = json.Unmarshal(b, &cfg)
	}
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range set {
		cfg[k] = v
	}
	b, _ = json.MarshalIndent(cfg, "", "  ")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	shapes, err := checkpoint.Expected(cfg["_class_name"].(string), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var entries []safetensors.Entry
	for n, s := range shapes {
		entries = append(entries, safetensors.Entry{Name: n, DType: "BF16", Shape: s})
	}
	w := testmodels.RandomWeights{Seed: 99, BF16: true}
	err = safetensors.WriteStream(filepath.Join(dir, "transformer", "diffusion_pytorch_model.safetensors"), entries, nil,
		func(e safetensors.Entry) ([]byte, error) {
			v, err := w.Float32(e.Name, e.Shape)
			if err != nil {
				return nil, err
			}
			out := make([]byte, 2*len(v))
			for i, x := range v {
				h := half.BFloat16FromFloat32(x)
				out[2*i], out[2*i+1] = byte(h), byte(h>>8)
			}
			return out, nil
		})
	if err != nil {
		t.Fatal(err)
	}
}
