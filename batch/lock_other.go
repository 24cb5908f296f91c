//go:build !unix

package batch

import (
	"fmt"
	"os"
)

// acquireLock opens the lock file and writes the holder line; without flock(2) it cannot exclude a
// second process, so on these systems running one shard twice at once stays the user's to avoid.
func acquireLock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
	if err != nil {
		return nil, fmt.Errorf("results log lock: %w", err)
	}
	_, _ = f.WriteString(holderLine() + "\n")
	return f, nil
}
