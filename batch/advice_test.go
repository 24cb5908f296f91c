package batch

import (
	"errors"
	"strings"
	"testing"
)

// TestErrorsCarryNoCommandLineAdvice: batch's errors say what is wrong, not which flag or command to
// use; the CLI adds that (and a Go program has no flags).
func TestErrorsCarryNoCommandLineAdvice(t *testing.T) {
	_, _, noCount := ShardFromEnv(0, func(k string) string { return map[string]string{"JOB_COMPLETION_INDEX": "2"}[k] })
	_, _, noIndex := ShardFromEnv(4, func(string) string { return "" })
	if !errors.Is(noCount, ErrShardCountMissing) || !errors.Is(noIndex, ErrShardIndexMissing) {
		t.Fatalf("want ErrShardCountMissing and ErrShardIndexMissing, got %v; %v", noCount, noIndex)
	}
	errs := []error{noCount, noIndex, CheckOutDir("s3://b/x"), &LockedError{Path: "results-0-of-2.lock", Holder: "pid 1 on n1"},
		&PinMismatchError{Dir: "out", Changes: []string{"shards 2 → 3"}, ShardsChanged: true},
		&PinMismatchError{Dir: "out", Changes: []string{"default steps 28 → 30"}, Changed: []string{"a"}}}
	for _, err := range errs {
		for _, advice := range []string{"--", "rflow "} {
			if strings.Contains(err.Error(), advice) {
				t.Errorf("library error carries command-line advice %q: %v", advice, err)
			}
		}
	}
}
