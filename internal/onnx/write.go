package onnx

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteOptions controls WriteFile.
type WriteOptions struct {
	// ExternalData moves large initializers to a data file next to the model.
	ExternalData bool
	// DataName is the data file name; default base(path)+"_data".
	DataName string
	// Threshold is the minimum raw size in bytes moved out; 0 means 1024,
	// a negative value moves every non-empty initializer.
	Threshold int
}

// WriteFile marshals the model to path, and with o.ExternalData also writes
// the data file beside it. Each file is written to a temporary name and
// renamed, and the data file goes first, so a concurrent reader never sees a
// partial model or a model whose data is not there yet. External tensors are
// streamed into the data file one at a time (a tensor with a Source is
// produced only when its turn comes), so memory stays near the largest tensor.
func (m *Model) WriteFile(path string, o WriteOptions) error {
	if !o.ExternalData {
		model, err := m.Marshal()
		if err != nil {
			return err
		}
		return writeAtomic(path, func(w io.Writer) error { _, err := w.Write(model); return err })
	}
	name := o.DataName
	if name == "" {
		name = filepath.Base(path) + "_data"
	}
	if err := checkDataName(name); err != nil {
		return fmt.Errorf("onnx: write %s: %w", path, err)
	}
	threshold := o.Threshold
	if threshold == 0 {
		threshold = 1024
	} else if threshold < 0 {
		threshold = 1
	}
	e := encoder{dataName: name, threshold: threshold, stream: true}
	model, err := m.encode(&e)
	if err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(filepath.Dir(path), name), e.writeData); err != nil {
		return err
	}
	return writeAtomic(path, func(w io.Writer) error { _, err := w.Write(model); return err })
}

// writeData writes the pending external tensors at their offsets, zero-padded between them.
func (e *encoder) writeData(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	var pos int64
	var zeros [externalAlign]byte
	for _, p := range e.pending {
		if _, err := bw.Write(zeros[:p.off-pos]); err != nil {
			return err
		}
		cw := countingWriter{w: bw}
		var err error
		if p.t.Raw != nil || p.t.Source == nil {
			_, err = cw.Write(p.t.Raw)
		} else {
			err = p.t.Source.WriteRaw(&cw)
		}
		if err != nil {
			return fmt.Errorf("initializer %q: %w", p.t.Name, err)
		}
		if want := p.t.RawSize(); cw.n != want {
			return fmt.Errorf("initializer %q: source wrote %d bytes, want %d", p.t.Name, cw.n, want)
		}
		pos = p.off + cw.n
	}
	return bw.Flush()
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writeAtomic writes data to a temporary file in the target directory (so
// the rename stays on one filesystem), syncs it, and renames it into place.
func writeAtomic(path string, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("onnx: write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
			err = fmt.Errorf("onnx: write %s: %w", path, err)
		}
	}()
	if err = write(f); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
