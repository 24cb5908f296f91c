package onnx

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// rampSource writes n float32-sized words 0,1,2,… as bytes, counting its calls.
type rampSource struct {
	n     int
	calls *int
	err   error
}

func (s rampSource) WriteRaw(w io.Writer) error {
	*s.calls++
	if s.err != nil {
		return s.err
	}
	b := make([]byte, 4*s.n)
	for i := range b {
		b[i] = byte(i)
	}
	_, err := w.Write(b)
	return err
}

func sourceModel(calls *int, err error) (*Model, []byte) {
	b := NewBuilder("g", 17)
	x := b.Input("x", Float, Fixed(3))
	raw := make([]byte, 4*3000)
	for i := range raw {
		raw[i] = byte(i)
	}
	lazy := b.Initializer(Tensor{Name: "w", Type: Float, Dims: []int64{3000}, Source: rampSource{n: 3000, calls: calls, err: err}})
	small := b.Initializer(Float32Tensor("s", []int64{3}, []float32{1, 2, 3}))
	y := b.Op("Add", []string{x, small})
	b.Output(b.Op("Add", []string{y, lazy}), "y", Float)
	return b.Model(), raw
}

// A tensor with a Source marshals to the same bytes as the same tensor with Raw, inline and external.
func TestSourceTensorEqualsRaw(t *testing.T) {
	calls := 0
	lazy, raw := sourceModel(&calls, nil)
	eager, _ := sourceModel(&calls, nil)
	eager.Graph.Initializers[0].Raw, eager.Graph.Initializers[0].Source = raw, nil

	got, err := lazy.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want, err := eager.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("inline marshal of a source tensor differs from the raw tensor's")
	}

	dir := t.TempDir()
	if err := lazy.WriteFile(filepath.Join(dir, "lazy.onnx"), WriteOptions{ExternalData: true, DataName: "d"}); err != nil {
		t.Fatal(err)
	}
	wantModel, wantData, err := eager.MarshalExternal("d", 1024)
	if err != nil {
		t.Fatal(err)
	}
	gotModel, _ := os.ReadFile(filepath.Join(dir, "lazy.onnx"))
	gotData, _ := os.ReadFile(filepath.Join(dir, "d"))
	if !bytes.Equal(gotModel, wantModel) || !bytes.Equal(gotData, wantData) {
		t.Fatalf("streamed external write differs: model %d/%d bytes, data %d/%d bytes",
			len(gotModel), len(wantModel), len(gotData), len(wantData))
	}
	if calls != 2 {
		t.Errorf("source called %d times, want once per write (2)", calls)
	}
}

// A failing source fails the write and leaves no model file behind.
func TestSourceErrorLeavesNothing(t *testing.T) {
	calls := 0
	m, _ := sourceModel(&calls, errors.New("disk on fire"))
	dir := t.TempDir()
	err := m.WriteFile(filepath.Join(dir, "m.onnx"), WriteOptions{ExternalData: true})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("disk on fire")) {
		t.Fatalf("err = %v, want the source's error", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left %d files behind", len(ents))
	}
	if _, err := m.Marshal(); err == nil {
		t.Fatal("inline marshal with a failing source succeeded")
	}
}
