package compiler

import (
	"strings"

	"github.com/rflowrt/rflow/internal/compiler/checkpoint"
	"github.com/rflowrt/rflow/internal/safetensors"
)

// setFile adapts a safetensors.Set (one file or a sharded set) to tensorFile.
type setFile struct {
	*safetensors.Set
	fingerprint string
}

// openTensors opens a .safetensors file, or every shard of a .safetensors.index.json, memory-mapped.
func openTensors(path string) (*setFile, error) {
	var s *safetensors.Set
	var err error
	if strings.HasSuffix(strings.ToLower(path), ".index.json") {
		s, err = safetensors.OpenIndex(path)
	} else {
		s, err = safetensors.OpenSet(path)
	}
	if err != nil {
		return nil, err
	}
	fp, err := s.Fingerprint()
	if err != nil {
		s.Close()
		return nil, err
	}
	return &setFile{Set: s, fingerprint: fp}, nil
}

func (f *setFile) Meta(name string) (checkpoint.TensorMeta, bool) {
	info, ok := f.Info(name)
	return checkpoint.TensorMeta{DType: info.DType, Shape: info.Shape}, ok
}

func (f *setFile) Fingerprint() string { return f.fingerprint }
