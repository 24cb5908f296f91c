package pipeline

import (
	"errors"
	"strings"
	"testing"
)

// TestErrorsCarryNoCommandLineAdvice: library errors say what is wrong, not which flag or command to
// use; the CLI adds that (and a Go program has no flags).
func TestErrorsCarryNoCommandLineAdvice(t *testing.T) {
	_, shardErr := ShardFromEnv(0, func(k string) string { return map[string]string{"JOB_COMPLETION_INDEX": "2"}[k] })
	if !errors.Is(shardErr, ErrShard) || !errors.Is(shardErr, ErrShardCountMissing) {
		t.Fatalf("index without count: want ErrShard and ErrShardCountMissing, got %v", shardErr)
	}
	folderErr := &FolderError{Dir: "/m", Problems: []Problem{{"transformer", "transformer/model.onnx", "missing"}}}
	for _, err := range []error{shardErr, folderErr} {
		for _, advice := range []string{"--", "rflow inspect"} {
			if strings.Contains(err.Error(), advice) {
				t.Errorf("library error carries command-line advice %q: %v", advice, err)
			}
		}
	}
}
