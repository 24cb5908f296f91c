package onnx

import (
	"fmt"
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
// partial model or a model whose data is not there yet.
func (m *Model) WriteFile(path string, o WriteOptions) error {
	var model, data []byte
	var err error
	var dataPath string
	if o.ExternalData {
		name := o.DataName
		if name == "" {
			name = filepath.Base(path) + "_data"
		}
		threshold := o.Threshold
		if threshold == 0 {
			threshold = 1024
		}
		model, data, err = m.MarshalExternal(name, threshold)
		dataPath = filepath.Join(filepath.Dir(path), name)
	} else {
		model, err = m.Marshal()
	}
	if err != nil {
		return err
	}
	if dataPath != "" {
		if err := writeAtomic(dataPath, data); err != nil {
			return err
		}
	}
	return writeAtomic(path, model)
}

// writeAtomic writes data to a temporary file in the target directory (so
// the rename stays on one filesystem), syncs it, and renames it into place.
func writeAtomic(path string, data []byte) (err error) {
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
	if _, err = f.Write(data); err != nil {
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
