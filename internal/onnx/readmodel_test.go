package onnx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/half"
	"google.golang.org/protobuf/encoding/protowire"
)

// bigTensor is a float32 tensor larger than eagerTensor, so ReadModel leaves it on disk.
func bigTensor(name string) Tensor {
	v := make([]float32, 64*1024)
	for i := range v {
		v[i] = float32(i%977) - 300.5
	}
	return Float32Tensor(name, []int64{256, 256}, v)
}

// modelWithExtras is testModel with a large initializer and fields this package keeps only as read
// bytes: model, graph and node doc strings and an attribute of a kind Attribute does not model.
func modelWithExtras() *Model {
	m := testModel()
	m.Graph.Initializers = append(m.Graph.Initializers, bigTensor("big"))
	m.unknown = appendString(nil, 6, "model doc")
	m.Graph.unknown = appendString(nil, 10, "graph doc")
	m.Graph.Nodes[0].unknown = appendString(nil, 6, "node doc")
	enc := appendString(nil, 1, "tensors")
	t := Int64Tensor("", []int64{1}, []int64{3})
	e := encoder{threshold: -1}
	enc = appendMessage(enc, 10, func(b []byte) []byte { return e.tensor(b, &t, false) })
	enc = appendVarint(enc, 20, 9) // TENSORS
	m.Graph.Nodes[1].Attrs = append(m.Graph.Nodes[1].Attrs, Attribute{Name: "tensors", Type: 9, encoded: enc})
	return m
}

// A model read and written back is the same bytes, inline and with external data; the large
// initializer is read from disk only when written.
func TestReadModelRoundTrip(t *testing.T) {
	dir := t.TempDir()
	m := modelWithExtras()
	want, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "inline.onnx")
	if err := m.WriteFile(path, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := ReadModel(path)
	if err != nil {
		t.Fatal(err)
	}
	big := r.Graph.Initializers[len(r.Graph.Initializers)-1]
	if big.Raw != nil || big.Source == nil {
		t.Errorf("large initializer was loaded (Raw %d bytes) instead of left on disk", len(big.Raw))
	}
	got, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("inline round trip differs: %d bytes, want %d", len(got), len(want))
	}

	ext := filepath.Join(dir, "a", "model.onnx")
	os.MkdirAll(filepath.Dir(ext), 0o755)
	if err := m.WriteFile(ext, WriteOptions{ExternalData: true, DataName: "model.onnx_data"}); err != nil {
		t.Fatal(err)
	}
	r, err = ReadModel(ext)
	if err != nil {
		t.Fatal(err)
	}
	again := filepath.Join(dir, "b", "model.onnx")
	os.MkdirAll(filepath.Dir(again), 0o755)
	if err := r.WriteFile(again, WriteOptions{ExternalData: true, DataName: "model.onnx_data"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"model.onnx", "model.onnx_data"} {
		a, _ := os.ReadFile(filepath.Join(dir, "a", name))
		b, _ := os.ReadFile(filepath.Join(dir, "b", name))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s: external round trip differs (%d vs %d bytes)", name, len(a), len(b))
		}
	}
	vals, err := r.Graph.Initializers[len(r.Graph.Initializers)-1].Float32s()
	if err != nil || len(vals) != 256*256 || vals[1000] != float32(1000%977)-300.5 {
		t.Errorf("external tensor values: %d values, err %v", len(vals), err)
	}
}

// Tensors written with typed fields (float_data, int32_data, int64_data, packed and not) read as
// the same raw little-endian bytes.
func TestReadModelTypedData(t *testing.T) {
	tensor := func(name string, typ DataType, dims []int64, body func(b []byte) []byte) []byte {
		return appendMessage(nil, 5, func(b []byte) []byte {
			b = appendPackedInts(b, 1, dims)
			b = appendVarint(b, 2, uint64(typ))
			b = appendString(b, 8, name)
			return body(b)
		})
	}
	var g []byte
	g = append(g, tensor("f", Float, []int64{2}, func(b []byte) []byte {
		return appendMessage(b, 4, func(b []byte) []byte {
			b = protowire.AppendFixed32(b, math.Float32bits(1.5))
			return protowire.AppendFixed32(b, math.Float32bits(-2))
		})
	})...)
	g = append(g, tensor("i", Int64, []int64{3}, func(b []byte) []byte {
		for _, v := range []int64{7, -1, 1 << 40} { // unpacked
			b = appendVarint(b, 7, uint64(v))
		}
		return b
	})...)
	g = append(g, tensor("h", Float16, []int64{2}, func(b []byte) []byte {
		return appendPackedInts(b, 5, []int64{int64(half.FromFloat32(0.5)), int64(half.FromFloat32(-3))})
	})...)
	g = append(g, tensor("u", Uint8, []int64{2}, func(b []byte) []byte { return appendPackedInts(b, 5, []int64{200, 3}) })...)
	g = appendMessage(g, 1, func(b []byte) []byte {
		b = appendString(b, 1, "f")
		b = appendString(b, 2, "y")
		return appendString(b, 4, "Identity")
	})
	g = appendMessage(g, 12, func(b []byte) []byte { return valueInfo(b, &ValueInfo{Name: "y", Type: Float}) })
	path := writeGraph(t, t.TempDir(), "typed.onnx", g)
	m, err := ReadModel(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{
		"f": Float32Tensor("", nil, []float32{1.5, -2}).Raw,
		"i": Int64Tensor("", nil, []int64{7, -1, 1 << 40}).Raw,
		"h": Float16Tensor("", nil, []float32{0.5, -3}).Raw,
		"u": {200, 3},
	}
	for _, it := range m.Graph.Initializers {
		if !bytes.Equal(it.Raw, want[it.Name]) {
			t.Errorf("%s: raw %v, want %v", it.Name, it.Raw, want[it.Name])
		}
	}
	if len(m.Graph.Initializers) != 4 || m.Opset("") != 17 || m.Opset("com.microsoft") != 0 {
		t.Errorf("read %d initializers, opset %d", len(m.Graph.Initializers), m.Opset(""))
	}
}

// External data that is missing, short or outside the model's folder is a clear error, not "not
// ONNX"; input that is not a model is ErrNotONNX.
func TestReadModelErrors(t *testing.T) {
	dir := t.TempDir()
	m := &Model{Opsets: []OpsetImport{{Version: 17}}, Graph: Graph{
		Nodes:        []Node{{OpType: "Identity", Inputs: []string{"w"}, Outputs: []string{"y"}}},
		Initializers: []Tensor{bigTensor("w")},
		Outputs:      []ValueInfo{{Name: "y", Type: Float}},
	}}
	path := filepath.Join(dir, "model.onnx")
	if err := m.WriteFile(path, WriteOptions{ExternalData: true, DataName: "w.bin"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadModel(path); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "w.bin")
	os.Truncate(data, 1000)
	if _, err := ReadModel(path); err == nil || errors.Is(err, ErrNotONNX) || !strings.Contains(err.Error(), "w.bin") {
		t.Errorf("short data file: %v", err)
	}
	os.Remove(data)
	if _, err := ReadModel(path); err == nil || errors.Is(err, ErrNotONNX) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing data file: %v", err)
	}
	b, _ := os.ReadFile(path)
	b = bytes.Replace(b, []byte("\x05w.bin"), []byte("\x05../wb"), 1)
	os.WriteFile(path, b, 0o644)
	if _, err := ReadModel(path); err == nil || !strings.Contains(err.Error(), "inside the model's folder") {
		t.Errorf("location outside the folder: %v", err)
	}
	junk := filepath.Join(dir, "junk.onnx")
	os.WriteFile(junk, []byte("this is not a model at all"), 0o644)
	if _, err := ReadModel(junk); !errors.Is(err, ErrNotONNX) {
		t.Errorf("junk: %v, want ErrNotONNX", err)
	}
	binary.LittleEndian.PutUint32(b, 0) // corrupt the first fields
	os.WriteFile(junk, b[:40], 0o644)
	if _, err := ReadModel(junk); err == nil {
		t.Error("truncated model read without error")
	}
}

// Weights spread over several external files (torch.onnx writes one file per tensor, with no
// offset or length keys) are read from each and written back into one data file.
func TestReadModelManyExternalFiles(t *testing.T) {
	dir := t.TempDir()
	vals := map[string][]float32{"w1": {1, 2, 3, 4}, "w2": {-1, 0.5}}
	var g []byte
	for _, name := range []string{"w1", "w2"} {
		raw := Float32Tensor("", nil, vals[name]).Raw
		if err := os.WriteFile(filepath.Join(dir, name+".bin"), raw, 0o644); err != nil {
			t.Fatal(err)
		}
		g = appendMessage(g, 5, func(b []byte) []byte {
			b = appendPackedInts(b, 1, []int64{int64(len(vals[name]))})
			b = appendVarint(b, 2, uint64(Float))
			b = appendString(b, 8, name)
			b = appendEntry(b, 13, "location", name+".bin")
			return appendVarint(b, 14, 1)
		})
	}
	g = appendMessage(g, 1, func(b []byte) []byte {
		b = appendString(b, 1, "w1")
		b = appendString(b, 2, "y")
		return appendString(b, 4, "Identity")
	})
	g = appendMessage(g, 12, func(b []byte) []byte { return valueInfo(b, &ValueInfo{Name: "y", Type: Float}) })
	path := writeGraph(t, dir, "model.onnx", g)
	check := func(path string) {
		t.Helper()
		m, err := ReadModel(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range m.Graph.Initializers {
			v, err := it.Float32s()
			if err != nil || len(v) != len(vals[it.Name]) || v[0] != vals[it.Name][0] || v[len(v)-1] != vals[it.Name][len(v)-1] {
				t.Errorf("%s: %v (%v), want %v", it.Name, v, err, vals[it.Name])
			}
		}
	}
	check(path)
	m, _ := ReadModel(path)
	out := filepath.Join(dir, "out", "model.onnx")
	os.MkdirAll(filepath.Dir(out), 0o755)
	if err := m.WriteFile(out, WriteOptions{ExternalData: true, DataName: "model.onnx_data", Threshold: -1}); err != nil {
		t.Fatal(err)
	}
	check(out)
	info, err := ReadInfo(out)
	if err != nil || len(info.ExternalFiles) != 1 || info.ExternalFiles[0] != "model.onnx_data" {
		t.Errorf("written model's external files %v (%v), want [model.onnx_data]", info.ExternalFiles, err)
	}
}

// writeGraph writes dir/name: an IR 8, opset 17 model around the GraphProto fields g.
func writeGraph(t *testing.T, dir, name string, g []byte) string {
	t.Helper()
	model := appendVarint(nil, 1, 8)
	model = appendMessage(model, 7, func(b []byte) []byte { return append(b, g...) })
	model = appendMessage(model, 8, func(b []byte) []byte { return appendVarint(b, 2, 17) })
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, model, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTensorFloat32s: float32, float16 and bfloat16 tensors read back as float32 (values exact in
// every type), other types are an error.
func TestTensorFloat32s(t *testing.T) {
	want := []float32{1, -2.5, 0.375, 1024}
	for _, x := range []Tensor{Float32Tensor("f", []int64{4}, want), Float16Tensor("h", []int64{4}, want), BFloat16Tensor("b", []int64{4}, want)} {
		got, err := x.Float32s()
		if err != nil || len(got) != len(want) {
			t.Fatalf("%v: %v, %v", x.Type, got, err)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%v: %v, want %v", x.Type, got, want)
				break
			}
		}
	}
	i := Int64Tensor("i", []int64{1}, []int64{1})
	if _, err := i.Float32s(); err == nil {
		t.Error("an int64 tensor read as float32")
	}
}
