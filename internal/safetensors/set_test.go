package safetensors

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// shardedCheckpoint writes a diffusers-style sharded checkpoint into dir and returns the index path:
// two shards and an index mapping each tensor to its shard.
func shardedCheckpoint(t *testing.T, dir, index string) string {
	t.Helper()
	one := filepath.Join(dir, "diffusion_pytorch_model-00001-of-00002.safetensors")
	two := filepath.Join(dir, "diffusion_pytorch_model-00002-of-00002.safetensors")
	if err := WriteFile(one, []Tensor{F32("a.weight", []int{2, 2}, []float32{1, 2, 3, 4}), F32("a.bias", []int{2}, []float32{5, 6})},
		map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(two, []Tensor{F32("b.weight", []int{1}, []float32{7})}, map[string]string{"format": "pt", "extra": "2"}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "diffusion_pytorch_model.safetensors.index.json")
	if err := os.WriteFile(path, []byte(index), 0o666); err != nil {
		t.Fatal(err)
	}
	return path
}

const goodIndex = `{"metadata":{"total_size":28},"weight_map":{
 "a.bias":"diffusion_pytorch_model-00001-of-00002.safetensors",
 "a.weight":"diffusion_pytorch_model-00001-of-00002.safetensors",
 "b.weight":"diffusion_pytorch_model-00002-of-00002.safetensors"}}`

func TestOpenIndex(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenIndex(shardedCheckpoint(t, dir, goodIndex))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.Names(); !slices.Equal(got, []string{"a.bias", "a.weight", "b.weight"}) {
		t.Errorf("names %v", got)
	}
	if got := len(s.Files()); got != 2 {
		t.Errorf("%d files opened, want each shard once", got)
	}
	if src := s.Source("b.weight"); filepath.Base(src) != "diffusion_pytorch_model-00002-of-00002.safetensors" {
		t.Errorf("source %q", src)
	}
	if s.Source("nope") != "" {
		t.Error("source of a missing tensor")
	}
	if info, ok := s.Info("a.weight"); !ok || !slices.Equal(info.Shape, []int64{2, 2}) || info.DType != "F32" {
		t.Errorf("info %+v", info)
	}
	if v, err := s.Float32("b.weight"); err != nil || !slices.Equal(v, []float32{7}) {
		t.Errorf("b.weight %v, %v", v, err)
	}
	if v, err := s.Float32Rows("a.weight", 1, 2); err != nil || !slices.Equal(v, []float32{3, 4}) {
		t.Errorf("a.weight row 1: %v, %v", v, err)
	}
	if raw, err := s.Raw("a.bias"); err != nil || len(raw) != 8 {
		t.Errorf("raw %v, %v", raw, err)
	}
	if _, err := s.Float32("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing: %v", err)
	}
	if m := s.Metadata(); m["format"] != "pt" || m["extra"] != "2" {
		t.Errorf("metadata %v", m)
	}
	s.Release("a.weight")
}

func TestOpenIndexRejects(t *testing.T) {
	for _, c := range []struct {
		name, index string
		want        []string
	}{
		{"tensor not in its file", strings.Replace(goodIndex, `"a.bias":"diffusion_pytorch_model-00001`, `"a.bias":"diffusion_pytorch_model-00002`, 1),
			[]string{`tensor "a.bias"`, "00002-of-00002.safetensors, which lacks it (it is in ", "00001-of-00002.safetensors)"}},
		{"tensor only in an unlisted file", strings.Replace(goodIndex, `"b.weight":"diffusion_pytorch_model-00002`, `"b.weight":"diffusion_pytorch_model-00001`, 1),
			[]string{`tensor "b.weight"`, "00001-of-00002.safetensors, which lacks it (no file of the index has it)"}},
		{"tensor in no file", strings.Replace(goodIndex, `"b.weight"`, `"c.weight"`, 1),
			[]string{`tensor "c.weight"`, "which lacks it (no file of the index has it)"}},
		{"missing shard", strings.Replace(goodIndex, "00002-of-00002", "00003-of-00003", 1), []string{"00003-of-00003.safetensors", "no such file"}},
		{"path outside the folder", strings.Replace(goodIndex, `"diffusion_pytorch_model-00002`, `"../diffusion_pytorch_model-00002`, 1),
			[]string{`tensor "b.weight"`, "not a path inside"}},
		{"absolute path", strings.Replace(goodIndex, `"diffusion_pytorch_model-00002`, `"/diffusion_pytorch_model-00002`, 1), []string{"not a path inside"}},
		{"no weight_map", `{"metadata":{}}`, []string{"no weight_map"}},
		{"not JSON", `{"weight_map":`, []string{"index JSON"}},
		{"weight_map of numbers", `{"weight_map":{"a":1}}`, []string{"index JSON"}},
	} {
		dir := t.TempDir()
		s, err := OpenIndex(shardedCheckpoint(t, dir, c.index))
		if err == nil {
			s.Close()
			t.Errorf("%s: opened", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q lacks %q", c.name, err, w)
			}
		}
	}
}

func TestOpenSet(t *testing.T) {
	dir := t.TempDir()
	shardedCheckpoint(t, dir, goodIndex)
	one := filepath.Join(dir, "diffusion_pytorch_model-00001-of-00002.safetensors")
	two := filepath.Join(dir, "diffusion_pytorch_model-00002-of-00002.safetensors")
	ab, err := OpenSet(one, two)
	if err != nil {
		t.Fatal(err)
	}
	defer ab.Close()
	ba, err := OpenSet(two, one)
	if err != nil {
		t.Fatal(err)
	}
	defer ba.Close()
	fab, err1 := ab.Fingerprint()
	fba, err2 := ba.Fingerprint()
	if err1 != nil || err2 != nil || fab != fba || len(fab) != 64 {
		t.Errorf("fingerprints %s %s (%v %v) differ by file order", fab, fba, err1, err2)
	}
	alone, _ := OpenSet(one)
	defer alone.Close()
	if f, _ := alone.Fingerprint(); f == fab {
		t.Error("a subset has the same fingerprint")
	}

	// The same name in two files names both.
	dup := filepath.Join(dir, "dup.safetensors")
	if err := WriteFile(dup, []Tensor{F32("a.bias", []int{1}, []float32{0})}, nil); err != nil {
		t.Fatal(err)
	}
	_, err = OpenSet(one, dup)
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), `tensor "a.bias" is in both `+one+" and "+dup) {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := OpenSet(one, filepath.Join(dir, "none.safetensors")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
