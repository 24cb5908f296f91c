package safetensors

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestStreamWriterMatchesMarshal: the streamed file is byte-identical to Marshal's for the same tensors
// given in another order, and reads back.
func TestStreamWriterMatchesMarshal(t *testing.T) {
	ts := []Tensor{
		F32("z.weight", []int{2, 3}, []float32{1, 2, 3, 4, 5, 6}),
		{Name: "a.bias", DType: "BF16", Shape: []int{3}, Data: []byte{1, 2, 3, 4, 5, 6}},
		F32("m.scalar", nil, []float32{7}),
	}
	meta := map[string]string{"format": "pt"}
	want, err := Marshal(ts, meta)
	if err != nil {
		t.Fatal(err)
	}
	var entries []Entry
	data := map[string][]byte{}
	for _, x := range ts {
		shape := make([]int64, len(x.Shape))
		for i, d := range x.Shape {
			shape[i] = int64(d)
		}
		entries = append(entries, Entry{Name: x.Name, DType: x.DType, Shape: shape})
		data[x.Name] = x.Data
	}
	path := filepath.Join(t.TempDir(), "s.safetensors")
	if err := WriteStream(path, entries, meta, func(e Entry) ([]byte, error) { return data[e.Name], nil }); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("streamed file differs from Marshal's:\n%q\n%q", got, want)
	}
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := f.Tensor("z.weight"); v.DType != "F32" || len(v.Data) != 24 {
		t.Fatalf("read back %+v", v)
	}
}

// TestStreamWriterErrors: out-of-order, wrong-size and missing tensors are errors, and a failed
// WriteStream leaves no file.
func TestStreamWriterErrors(t *testing.T) {
	entries := []Entry{{Name: "b", DType: "F32", Shape: []int64{2}}, {Name: "a", DType: "F16", Shape: []int64{1}}}
	var buf bytes.Buffer
	sw, err := NewStreamWriter(&buf, entries, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Write("b", make([]byte, 8)); !errors.Is(err, ErrFormat) {
		t.Errorf("out of order: %v", err)
	}
	sw, _ = NewStreamWriter(&buf, entries, nil)
	if err := sw.Write("a", make([]byte, 4)); !errors.Is(err, ErrFormat) {
		t.Errorf("wrong size: %v", err)
	}
	sw, _ = NewStreamWriter(&buf, entries, nil)
	if err := sw.Write("a", make([]byte, 2)); err != nil {
		t.Fatal(err)
	}
	if err := sw.Close(); !errors.Is(err, ErrFormat) {
		t.Errorf("missing tensor: %v", err)
	}
	for _, bad := range [][]Entry{{{Name: "x", DType: "F31"}}, {{Name: "x", DType: "F32"}, {Name: "x", DType: "F32"}},
		{{Name: "x", DType: "F32", Shape: []int64{-1}}}} {
		if _, err := NewStreamWriter(&buf, bad, nil); !errors.Is(err, ErrFormat) {
			t.Errorf("%v: %v", bad, err)
		}
	}
	path := filepath.Join(t.TempDir(), "f.safetensors")
	fail := errors.New("no data")
	if err := WriteStream(path, entries, nil, func(Entry) ([]byte, error) { return nil, fail }); !errors.Is(err, fail) {
		t.Errorf("fill error: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 0 {
		t.Errorf("left %v behind", ents)
	}
}
