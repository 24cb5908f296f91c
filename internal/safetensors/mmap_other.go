//go:build !unix

package safetensors

import "os"

// openSource reads the file with ReadAt on systems without syscall.Mmap; Raw then returns copies.
func openSource(f *os.File, size int64) (source, error) {
	return &readAtSource{f: f, n: size}, nil
}
