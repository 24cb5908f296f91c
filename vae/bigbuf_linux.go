package vae

import (
	"fmt"
	"syscall"
	"unsafe"
)

// bigBuf is a float32 buffer mapped from the kernel rather than Go's heap, so that a streamed
// decode's full-resolution tensors go back to the system the moment they are dropped (release) or
// cut down (shrink), instead of waiting for a garbage collection that a heap twice the live size
// would defer.
type bigBuf struct {
	mem []byte
	f   []float32
}

func newBigBuf(n int) (*bigBuf, error) {
	if n == 0 {
		return &bigBuf{}, nil
	}
	mem, err := syscall.Mmap(-1, 0, 4*n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("allocate %d MiB: %w", 4*n>>20, err)
	}
	// huge pages where the kernel grants them on request: a decode writes every page of its buffers
	// once, and 4 KiB faults cost ~10 % of its CPU time
	_ = syscall.Madvise(mem, syscall.MADV_HUGEPAGE)
	return &bigBuf{mem: mem, f: unsafe.Slice((*float32)(unsafe.Pointer(&mem[0])), n)}, nil
}

// shrink keeps the first n values and gives the pages past them back.
func (b *bigBuf) shrink(n int) {
	if n >= len(b.f) {
		return
	}
	b.f = b.f[:n]
	page := syscall.Getpagesize()
	if from := (4*n + page - 1) / page * page; from < len(b.mem) {
		_ = syscall.Madvise(b.mem[from:], syscall.MADV_DONTNEED) // only a hint: the pages are freed at release anyway
	}
}

// drop gives back the whole pages of values [from, to), whose contents are no longer needed; they
// read as zeros if written again.
func (b *bigBuf) drop(from, to int) {
	page := syscall.Getpagesize()
	start, end := (4*from+page-1)/page*page, 4*min(to, len(b.f))/page*page
	if end > start {
		_ = syscall.Madvise(b.mem[start:end], syscall.MADV_DONTNEED) // a hint: the pages go at release anyway
	}
}

func (b *bigBuf) release() {
	if b == nil || b.mem == nil {
		return
	}
	_ = syscall.Munmap(b.mem)
	b.mem, b.f = nil, nil
}
