//go:build unix && !linux

package safetensors

// dropPages does nothing where the syscall package has no madvise; the kernel reclaims the clean
// pages of the mapping under memory pressure instead.
func dropPages(b []byte) {}
