package safetensors

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime/debug"
)

// source is where a Reader's bytes come from: a read-only memory mapping of the file (unix), the open
// file read with ReadAt (elsewhere, or where mapping fails), or bytes in memory (tests, fuzzing).
type source interface {
	// size is the length of the file in bytes.
	size() int64
	// slice returns the n bytes at off, which the caller has checked lie within size: a view (read-only,
	// valid until close) where the source is mapped, otherwise a fresh copy.
	slice(off, n int64) ([]byte, error)
	// release tells the source that the bytes at [off, off+n) are not needed for a while, so that a
	// mapping can drop their pages from the process's resident set (they stay in the page cache and are
	// read back on the next access; views stay valid).
	release(off, n int64)
	close() error
}

// readAtSource reads an open file with ReadAt: no mapping, every slice is a copy.
type readAtSource struct {
	f *os.File
	n int64
}

func (s *readAtSource) size() int64 { return s.n }

func (s *readAtSource) slice(off, n int64) ([]byte, error) {
	if n > math.MaxInt {
		return nil, fmt.Errorf("%d bytes do not fit in memory on this platform", n)
	}
	b := make([]byte, n)
	if _, err := s.f.ReadAt(b, off); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read %d bytes at %d (was the file changed after it was opened?): %w", n, off, err)
	}
	return b, nil
}

func (s *readAtSource) release(off, n int64) {}

func (s *readAtSource) close() error { return s.f.Close() }

// memSource serves bytes held in memory; slices are views.
type memSource []byte

func (s memSource) size() int64                        { return int64(len(s)) }
func (s memSource) slice(off, n int64) ([]byte, error) { return s[off : off+n : off+n], nil }
func (s memSource) release(off, n int64)               {}
func (s memSource) close() error                       { return nil }

// catchFault turns a memory fault while reading a mapping (SIGBUS when the file was truncated after it
// was mapped, or an I/O error under the mapping) into an error instead of a crash. Use it as
//
//	defer catchFault(path, &err)()
//
// in any function that reads mapped bytes itself; views handed to callers (Raw) are not covered.
func catchFault(path string, err *error) func() {
	old := debug.SetPanicOnFault(true)
	return func() {
		debug.SetPanicOnFault(old)
		if v := recover(); v != nil {
			if _, ok := v.(interface{ Addr() uintptr }); !ok {
				panic(v)
			}
			*err = fmt.Errorf("safetensors: %s: memory fault reading the mapped file (was it truncated or changed after it was opened?)", path)
		}
	}
}
