package main

import (
	"fmt"
	"github.com/rflowrt/rflow/batch"
	"os"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/pipeline"
)

// TestAdvice: the library's typed errors come out of the CLI with the flag or command that helps.
func TestAdvice(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&ort.LibraryNotFoundError{Searched: []string{"/x"}}, "make setup"},
		{fmt.Errorf("wrapped: %w", &ort.LibraryPathError{Path: "/p", Err: os.ErrNotExist}), "--ort-lib"},
		{&ort.LibraryPathError{Path: "/p", FromEnv: true, Err: os.ErrNotExist}, "$" + ort.LibraryEnv},
		{&ort.VersionError{Version: "1.20.0", Path: "/p"}, "make setup"},
		{&ort.ProviderError{Provider: ort.CUDA, Library: "/p", Err: os.ErrNotExist}, "onnxruntime-gpu"},
		{&ort.ProviderError{Provider: ort.CoreML, Library: "/p", Err: os.ErrNotExist}, "--provider cpu"},
		{&pipeline.FolderError{Dir: "/m"}, "rflow inspect --model /m"},
		{fmt.Errorf("%w: %w: x", batch.ErrShard, batch.ErrShardCountMissing), "--shards N"},
	} {
		if got := withAdvice(c.err); !strings.Contains(got, c.want) || !strings.HasPrefix(got, c.err.Error()) {
			t.Errorf("%v: got %q, want the message and advice mentioning %q", c.err, got, c.want)
		}
	}
	if got := withAdvice(os.ErrClosed); got != os.ErrClosed.Error() {
		t.Errorf("an error without advice became %q", got)
	}
}

func TestMissingLibraryAdvice(t *testing.T) {
	code, _, errOut := runCLI("version", "--ort-lib", "/nonexistent/libonnxruntime.so")
	if code != 1 || !strings.Contains(errOut, "/nonexistent/libonnxruntime.so") || !strings.Contains(errOut, "--ort-lib") {
		t.Fatalf("exit %d, stderr %q: want the path and --ort-lib", code, errOut)
	}
}
