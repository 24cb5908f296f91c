//go:build unix

package benchutil

import (
	"os"
	"runtime"
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

// processPeakMiB is a finished process's peak resident size in MiB (ru_maxrss: KiB on Linux, bytes on
// macOS).
func processPeakMiB(ps *os.ProcessState) float64 {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0
	}
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		return float64(ru.Maxrss) / (1 << 20)
	}
	return float64(ru.Maxrss) / 1024
}
