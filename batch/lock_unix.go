//go:build unix

package batch

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// acquireLock takes an exclusive flock(2) on the lock file at path (creating it) without waiting, and
// writes the holder line into it. The lock lasts until the returned file is closed or the process
// ends, so a killed run leaves no stale lock. On NFS, Linux maps flock to a POSIX lock the server
// arbitrates, so it holds across nodes; file systems without locks (some FUSE mounts) report an error.
func acquireLock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, fmt.Errorf("results log lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &LockedError{Path: path, Holder: readHolder(path)}
		}
		if errors.Is(err, syscall.ENOLCK) || errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) ||
			errors.Is(err, syscall.EINVAL) {
			return nil, fmt.Errorf("results log lock %s: %w (%w)", path, ErrNoLocks, err)
		}
		return nil, fmt.Errorf("results log lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(holderLine()+"\n"), 0) // informational only
	}
	return f, nil
}
