package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
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
	code, _, errOut := runCLI()
	if code != 2 || !strings.Contains(errOut, "Usage: rflow") {
		t.Errorf("no arguments: exit %d, stderr %q; want the command list", code, errOut)
	}
	// A mistake gets one line saying what is wrong and one pointing to the help, not every flag.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"no-such-command"}, "'rflow help'"},
		{[]string{"txt"}, `did you mean "txt2img"`},
		{[]string{"version", "--no-such-flag"}, "'rflow version --help'"},
		{[]string{"version", "extra"}, "'rflow version --help'"},
		{[]string{"txt2img", "--steps", "many"}, "'rflow txt2img --help'"},
		{[]string{"txt2img"}, "--prompt is required"},
	} {
		code, _, errOut := runCLI(c.args...)
		lines := strings.Split(strings.TrimRight(errOut, "\n"), "\n")
		if code != 2 || len(lines) != 2 || !strings.Contains(errOut, c.want) || strings.Contains(errOut, "Flags:") {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and two lines with %s", c.args, code, errOut, c.want)
		}
	}
}

func TestVersionFlag(t *testing.T) {
	code, out, errOut := runCLI("--version", "--ort-lib", "/nonexistent")
	if !strings.HasPrefix(out, "rflow "+rflowVersion) || code != 1 || !strings.Contains(errOut, "/nonexistent") {
		t.Errorf("--version: exit %d, stdout %q, stderr %q; want rflow's version first", code, out, errOut)
	}
	if lib := orttest.Library(); lib != "" {
		if code, out, errOut := runCLI("--version", "--ort-lib", lib); code != 0 || !strings.Contains(out, "onnxruntime ") {
			t.Errorf("--version: exit %d, stdout %q, stderr %q", code, out, errOut)
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

// Ctrl-C stops a run between steps, writes nothing half-done and exits 130, as shells expect of a
// process ended by SIGINT.
func TestInterruptExits130(t *testing.T) {
	lib := orttest.Library()
	if lib == "" {
		t.Skip("no ONNX Runtime library: run make setup")
	}
	out := filepath.Join(t.TempDir(), "x.png")
	cmd := rflowCmd("txt2img", "--ort-lib", lib, "-p", "a red circle", "--steps", "10000", "-W", "512", "-H", "512",
		"--threads", "1", "-o", out)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() && !strings.Contains(sc.Text(), "step 2/") { // denoising has begun
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(stderr)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("after SIGINT: %v, want exit status 130; stderr %s", err, rest)
	}
	if !strings.Contains(string(rest), "interrupted") {
		t.Errorf("stderr %q does not say the run was interrupted", rest)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("an image was written after the interrupt")
	}
}

func TestSignalExitCode(t *testing.T) {
	if signalExitCode(os.Interrupt) != 130 || signalExitCode(syscall.SIGTERM) != 143 {
		t.Errorf("SIGINT → %d, SIGTERM → %d; want 130 and 143", signalExitCode(os.Interrupt), signalExitCode(syscall.SIGTERM))
	}
}
