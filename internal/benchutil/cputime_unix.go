//go:build unix

package benchutil

import (
	"syscall"
	"time"
)

// CPUTime is the process's user + system CPU time so far (all threads); 0 where unknown.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
