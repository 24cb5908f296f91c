package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/ort/orttest"
)

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestVersion(t *testing.T) {
	lib := orttest.Library()
	if lib == "" {
		t.Skip("no ONNX Runtime library: run make setup")
	}
	code, out, errOut := runCLI("version", "--ort-lib", lib)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"rflow ", "go1.", "onnxruntime 1.24.3 " + lib, "execution providers: cpu", "embedded demo models: demo-sd3 ("} {
		if !strings.Contains(out, want) {
			t.Errorf("version output lacks %q:\n%s", want, out)
		}
	}
}

func TestVersionMissingLibrary(t *testing.T) {
	code, _, errOut := runCLI("version", "--ort-lib", "/nonexistent")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if lines := strings.Count(strings.TrimRight(errOut, "\n"), "\n"); lines != 0 || !strings.Contains(errOut, "/nonexistent") {
		t.Fatalf("want one line naming /nonexistent, got %q", errOut)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"no-such-command"}, {"version", "--no-such-flag"}, {"version", "extra"}} {
		code, _, errOut := runCLI(args...)
		if code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
		if !strings.Contains(errOut, "Usage: rflow") {
			t.Errorf("%q: stderr lacks the usage: %q", args, errOut)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"help", "version"}, {"version", "--help"}} {
		code, out, _ := runCLI(args...)
		if code != 0 || !strings.Contains(out, "Usage: rflow") {
			t.Errorf("%q: exit %d, stdout %q", args, code, out)
		}
	}
	_, out, _ := runCLI("help")
	if !strings.Contains(out, "version") {
		t.Errorf("help does not list the version command: %s", out)
	}
}
