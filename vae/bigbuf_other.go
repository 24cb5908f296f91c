//go:build !linux

package vae

// bigBuf is a float32 buffer; off Linux it lives on Go's heap and goes back with the next collection.
type bigBuf struct{ f []float32 }

func newBigBuf(n int) (*bigBuf, error) { return &bigBuf{f: make([]float32, n)}, nil }

// shrink keeps the first n values.
func (b *bigBuf) shrink(n int) { b.f = b.f[:min(n, len(b.f))] }

// drop would give back the pages of values [from, to); off Linux the memory stays until release.
func (b *bigBuf) drop(from, to int) {}

func (b *bigBuf) release() {
	if b != nil {
		b.f = nil
	}
}
