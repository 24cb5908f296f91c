//go:build unix

package safetensors

import (
	"math"
	"os"
	"syscall"
)

// mapSource is a read-only shared mapping of the whole file.
type mapSource struct {
	data []byte
}

// openSource maps f read-only and closes it (the mapping outlives the descriptor). Where the file cannot
// be mapped (too large for the address space, a file system without mmap) it falls back to ReadAt and
// keeps f open.
func openSource(f *os.File, size int64) (source, error) {
	if size > 0 && size <= math.MaxInt {
		if data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED); err == nil {
			f.Close()
			return &mapSource{data: data}, nil
		}
	}
	return &readAtSource{f: f, n: size}, nil
}

func (s *mapSource) size() int64 { return int64(len(s.data)) }

func (s *mapSource) slice(off, n int64) ([]byte, error) {
	return s.data[off : off+n : off+n], nil
}

func (s *mapSource) release(off, n int64) {
	page := int64(os.Getpagesize())
	begin := off / page * page
	end := min((off+n+page-1)/page*page, int64(len(s.data)))
	if begin < end {
		dropPages(s.data[begin:end])
	}
}

func (s *mapSource) close() error {
	if s.data == nil {
		return nil
	}
	err := syscall.Munmap(s.data)
	s.data = nil
	return err
}
