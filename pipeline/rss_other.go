//go:build !unix

package pipeline

// peakRSS is 0 where the platform offers no getrusage.
func peakRSS() int64 { return 0 }
