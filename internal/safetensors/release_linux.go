package safetensors

import "syscall"

// dropPages removes a page-aligned range of a read-only file mapping from the resident set. For a
// mapping that is never written this loses nothing: the next access faults the pages back in from the
// page cache.
func dropPages(b []byte) { _ = syscall.Madvise(b, syscall.MADV_DONTNEED) }
