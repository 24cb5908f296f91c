//go:build !unix

package benchutil

import (
	"os"
	"time"
)

// CPUTime is the process's user + system CPU time so far; not measured on this system (0).
func CPUTime() time.Duration { return 0 }

// processPeakMiB is a finished process's peak resident size: not reported on this system (0).
func processPeakMiB(*os.ProcessState) float64 { return 0 }
