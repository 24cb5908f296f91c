package pipeline

import (
	"strings"
	"testing"
)

// TestErrorsCarryNoCommandLineAdvice: library errors say what is wrong, not which flag or command to
// use; the CLI adds that (and a Go program has no flags).
func TestErrorsCarryNoCommandLineAdvice(t *testing.T) {
	folderErr := &FolderError{Dir: "/m", Problems: []Problem{{"transformer", "transformer/model.onnx", "missing"}}}
	for _, err := range []error{folderErr} {
		for _, advice := range []string{"--", "rflow inspect"} {
			if strings.Contains(err.Error(), advice) {
				t.Errorf("library error carries command-line advice %q: %v", advice, err)
			}
		}
	}
}
