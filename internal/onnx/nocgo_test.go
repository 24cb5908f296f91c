package onnx

import (
	"os"
	"os/exec"
	"testing"
)

// TestBuildsWithoutCgo keeps the writer usable where no C compiler exists (generators, fixtures).
func TestBuildsWithoutCgo(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns the go tool")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not on PATH")
	}
	cmd := exec.Command(gobin, "build", "-o", os.DevNull, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build ./internal/onnx: %v\n%s", err, out)
	}
}
