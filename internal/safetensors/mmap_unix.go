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

// faultAround is how far beyond a released range pages are dropped too. On a fault the kernel maps
// the cached pages around the faulting one as well (fault-around, 64 KiB by default), so reading a
// tensor makes the edges of its already released neighbours resident again; without the margin those
// stay, about 64 KiB per tensor (measured: +39 MB after 600 tensors), and a converter's RSS grows with
// the model. Dropping a page that is read again later only costs a minor fault.
const faultAround = 1 << 20

func (s *mapSource) release(off, n int64) {
	page := int64(os.Getpagesize())
	begin := max(off-faultAround, 0) / page * page
	end := min((off+n+faultAround+page-1)/page*page, int64(len(s.data)))
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
