package batch

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// ErrNoLocks is wrapped when the output folder's file system cannot lock files (some FUSE mounts,
// Lustre without -o flock): the results logs could not be kept to one writer.
var ErrNoLocks = errors.New("the file system does not support file locks")

// ErrLocked is matched (errors.Is) by a LockedError.
var ErrLocked = errors.New("locked by another process")

// LockedError says that another process holds a shard's results log: the same shard runs twice.
type LockedError struct {
	// Path is the lock file; Holder what its holder wrote there ("pid 123 on node7 since …"; empty if
	// it could not be read).
	Path, Holder string
}

func (e *LockedError) Error() string {
	who := "another process"
	if e.Holder != "" {
		who += " (" + e.Holder + ")"
	}
	return fmt.Sprintf("results log lock %s is held by %s: that shard is running already", e.Path, who)
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// lockPath is the lock file beside a results log: results-0-of-4.jsonl → results-0-of-4.lock.
func lockPath(resultsPath string) string { return strings.TrimSuffix(resultsPath, ".jsonl") + ".lock" }

// holderLine is what a lock's holder writes into the lock file for a second process to report.
func holderLine() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("pid %d on %s since %s", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
}

// readHolder reads the holder line of a lock file.
func readHolder(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}
