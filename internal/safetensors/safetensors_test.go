package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// file assembles a safetensors file from a header text and data, as the format spec describes.
func file(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

func TestMarshalExactBytes(t *testing.T) {
	got, err := Marshal([]Tensor{
		F32("noise", []int{1, 2}, []float32{1, -2}),
		F32("latent", []int{2}, []float32{0.5, 3}),
	}, map[string]string{"seed": "7", "prompt": "a \"cat\""})
	if err != nil {
		t.Fatal(err)
	}
	header := `{"__metadata__":{"prompt":"a \"cat\"","seed":"7"},` +
		`"latent":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},` +
		`"noise":{"dtype":"F32","shape":[1,2],"data_offsets":[8,16]}}`
	for len(header)%8 != 0 {
		header += " "
	}
	data := []byte{0, 0, 0, 0x3f, 0, 0, 0x40, 0x40, 0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0}
	if want := file(header, data); !bytes.Equal(got, want) {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	if (len(got)-len(data))%8 != 0 {
		t.Errorf("data starts at %d, not 8-byte aligned", len(got)-len(data))
	}
}

func TestRoundTrip(t *testing.T) {
	in := []Tensor{F32("b", []int{2, 3}, []float32{1, 2, 3, 4, 5, 6}), F32("a", []int{}, []float32{7}),
		{Name: "ids", DType: "I64", Shape: []int{1}, Data: []byte{1, 0, 0, 0, 0, 0, 0, 0}},
		F32("empty", []int{0, 4}, nil)}
	b, err := Marshal(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(MetadataKey)) {
		t.Error("empty metadata written")
	}
	f, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range in {
		got, ok := f.Tensor(want.Name)
		if !ok || got.DType != want.DType || !slices.Equal(got.Shape, want.Shape) || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("%s: got %+v, want %+v", want.Name, got, want)
		}
	}
	v, err := f.Tensors[len(f.Tensors)-1].Float32s()
	if err == nil || v != nil {
		t.Errorf("Float32s of an I64 tensor: %v, %v", v, err)
	}
}

// TestUnmarshalAcceptsSpecVariants: any key order, no padding, metadata last.
func TestUnmarshalAcceptsSpecVariants(t *testing.T) {
	header := `{"x":{"data_offsets":[4,8],"shape":[1],"dtype":"F32"},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"__metadata__":{"k":"v"}}`
	f, err := Unmarshal(file(header, []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0x40}))
	if err != nil {
		t.Fatal(err)
	}
	w, _ := f.Tensor("w")
	x, _ := f.Tensor("x")
	wv, _ := w.Float32s()
	xv, _ := x.Float32s()
	if f.Metadata["k"] != "v" || wv[0] != 1 || xv[0] != 2 || f.Tensors[0].Name != "w" {
		t.Fatalf("%+v", f)
	}
}

func TestUnmarshalRejects(t *testing.T) {
	four := []byte{0, 0, 0, 0}
	for name, b := range map[string][]byte{
		"short":          {1, 2, 3},
		"length too big": file(`{}`, nil)[:9],
		"not an object":  file(`[]`, nil),
		"gap":            file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, append(four, four...)),
		"overlap": file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`,
			four),
		"trailing data":  file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, append(four, four...)),
		"size mismatch":  file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, four),
		"unknown dtype":  file(`{"a":{"dtype":"F31","shape":[1],"data_offsets":[0,4]}}`, four),
		"past the end":   file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}}`, four),
		"no shape":       file(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, four),
		"extra field":    file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, four),
		"int metadata":   file(`{"__metadata__":{"k":1}}`, nil),
		"negative shape": file(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, four),
		"bad json":       file(`{"a":`, nil),
	} {
		if _, err := Unmarshal(b); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: err %v, want ErrFormat", name, err)
		}
	}
}

func TestMarshalRejects(t *testing.T) {
	for name, ts := range map[string][]Tensor{
		"duplicate":    {F32("a", []int{1}, []float32{1}), F32("a", []int{1}, []float32{1})},
		"size":         {{Name: "a", DType: "F32", Shape: []int{2}, Data: make([]byte, 4)}},
		"dtype":        {{Name: "a", DType: "float", Shape: []int{1}, Data: make([]byte, 4)}},
		"metadata key": {F32(MetadataKey, []int{1}, []float32{1})},
	} {
		if _, err := Marshal(ts, nil); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: err %v", name, err)
		}
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "x.safetensors")
	for _, v := range []float32{1, 2} {
		if err := WriteFile(path, []Tensor{F32("v", []int{1}, []float32{v})}, map[string]string{"n": "1"}); err != nil {
			t.Fatal(err)
		}
	}
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := f.Tensors[0].Float32s(); v[0] != 2 {
		t.Fatalf("read %v", v)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("folder holds %d entries (temporary files left?)", len(entries))
	}
	if err := WriteFile(path, []Tensor{{Name: "bad", DType: "F32", Shape: []int{3}}}, nil); err == nil {
		t.Fatal("a bad tensor was written")
	}
}

func FuzzUnmarshal(f *testing.F) {
	b, _ := Marshal([]Tensor{F32("a", []int{2}, []float32{1, 2})}, map[string]string{"k": "v"})
	f.Add(b)
	f.Add(file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, []byte{1, 2, 3, 4}))
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Unmarshal(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) && !strings.Contains(err.Error(), "safetensors") {
				t.Fatalf("error %v", err)
			}
			return
		}
		again, err := Marshal(file.Tensors, file.Metadata)
		if err != nil {
			t.Fatalf("re-marshal: %v", err)
		}
		if _, err := Unmarshal(again); err != nil {
			t.Fatalf("re-read: %v", err)
		}
	})
}
