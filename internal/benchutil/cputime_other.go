//go:build !unix

package benchutil

import "time"

// CPUTime is the process's user + system CPU time so far; not measured on this system (0).
func CPUTime() time.Duration { return 0 }
