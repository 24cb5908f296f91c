package onnx

import (
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func TestReadInfoRoundTrip(t *testing.T) {
	m := testModel()
	m.IRVersion = 3 // IR < 4 style: initializers are also listed as inputs
	m.Graph.Inputs = append(m.Graph.Inputs,
		ValueInfo{Name: "w", Type: Float, Dims: []Dim{Fixed(2), Fixed(3)}},
		ValueInfo{Name: "mask", Type: Bool, Dims: []Dim{}},
	)
	m.Graph.Outputs = append(m.Graph.Outputs, ValueInfo{Name: "y", Type: Float, Dims: []Dim{Sym("n"), {Value: -1}, Fixed(0)}})
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	info, err := ReadInfoBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	want := &Info{
		IRVersion:    3,
		ProducerName: "test",
		Opsets:       []OpsetImport{{"", 17}, {"com.microsoft", 1}},
		Inputs: []ValueInfo{
			{Name: "x", Type: Float, Dims: []Dim{Sym("batch"), Fixed(3), {Value: -1}}},
			{Name: "mask", Type: Bool, Dims: []Dim{}},
		},
		Outputs: []ValueInfo{
			{Name: "z", Type: Float16},
			{Name: "y", Type: Float, Dims: []Dim{Sym("n"), {Value: -1}, Fixed(0)}},
		},
		Initializers: 3,
		Metadata:     map[string]string{"a": "1", "b": "2"},
	}
	if !reflect.DeepEqual(info, want) {
		t.Errorf("ReadInfoBytes:\n got %+v\nwant %+v", info, want)
	}

	path := filepath.Join(t.TempDir(), "model.onnx")
	if err := m.WriteFile(path, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	fromFile, err := ReadInfo(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromFile, want) {
		t.Errorf("ReadInfo:\n got %+v\nwant %+v", fromFile, want)
	}
}

// countingReaderAt records how many bytes the reader asked for.
type countingReaderAt struct {
	r     io.ReaderAt
	bytes atomic.Int64
	calls atomic.Int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.bytes.Add(int64(len(p)))
	c.calls.Add(1)
	return c.r.ReadAt(p, off)
}

func TestReadInfoSkipsLargeInitializer(t *testing.T) {
	const big = 50 << 20
	b := NewBuilder("big", 17)
	x := b.Input("x", Float, Sym("batch"), Fixed(big/4))
	w := b.Initializer(Tensor{Name: "w", Type: Float, Dims: []int64{big / 4}, Raw: make([]byte, big)})
	s := b.Initializer(Float32Tensor("after_big", []int64{1}, []float32{2}))
	y := b.Op("Mul", []string{x, w})
	b.Output(b.Op("Add", []string{y, s}), "y", Float, Sym("batch"), Fixed(big/4))
	m := b.Model()
	m.Metadata = map[string]string{"license": "mit"}
	path := filepath.Join(t.TempDir(), "big.onnx")
	if err := m.WriteFile(path, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	if st.Size() < big {
		t.Fatalf("model is only %d bytes", st.Size())
	}
	c := &countingReaderAt{r: f}
	info, err := ReadInfoFrom(c, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	if n := c.bytes.Load(); n >= 64<<10 {
		t.Errorf("read %d bytes in %d calls of a %d-byte model, want < 64 KiB", n, c.calls.Load(), st.Size())
	} else {
		t.Logf("read %d bytes in %d calls of a %d-byte model", n, c.calls.Load(), st.Size())
	}
	if info.Initializers != 2 || info.ExternalData || len(info.Inputs) != 1 || info.Inputs[0].Name != "x" ||
		info.Outputs[0].Dims[1] != Fixed(big/4) || info.Metadata["license"] != "mit" {
		t.Errorf("info = %+v", info)
	}
}

// handModel encodes a model by hand with things the writer never produces:
// fields out of order, unknown fields, unpacked dims, non-tensor types,
// sparse and external initializers.
func handModel() []byte {
	str := func(b []byte, n protowire.Number, s string) []byte {
		return protowire.AppendString(protowire.AppendTag(b, n, protowire.BytesType), s)
	}
	vint := func(b []byte, n protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(b, n, protowire.VarintType), v)
	}
	msg := func(b []byte, n protowire.Number, body []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(b, n, protowire.BytesType), body)
	}
	entry := func(k, v string) []byte { return str(str(nil, 1, k), 2, v) }
	extTensor := func(name, loc string) []byte {
		t := vint(nil, 1, 4) // unpacked dims
		t = vint(t, 1, 2)
		t = vint(t, 2, uint64(Float))
		t = str(t, 8, name)
		t = msg(t, 13, entry("location", loc))
		t = msg(t, 13, entry("offset", "0"))
		return vint(t, 14, 1)
	}
	dim := func(d []byte) []byte { return msg(nil, 1, d) }
	shape := append(dim(str(nil, 2, "seq")), dim(nil)...)                // symbolic + unknown
	shape = append(shape, dim(vint(nil, 1, 1<<40))...)                   // large fixed
	shape = append(shape, dim(str(str(nil, 3, "DATA_BATCH"), 2, ""))...) // empty param: unknown
	tensorType := msg(vint(nil, 1, uint64(Int64)), 2, shape)
	in := msg(str(nil, 1, "ids"), 2, msg(nil, 1, tensorType))
	seqType := msg(nil, 4, msg(nil, 1, msg(nil, 1, msg(vint(nil, 1, 1), 2, nil)))) // sequence<tensor<float>>
	seq := msg(str(nil, 1, "seq_in"), 2, seqType)
	noType := str(nil, 1, "untyped")

	var g []byte
	g = msg(g, 11, in) // inputs before nodes and initializers
	g = msg(g, 11, seq)
	g = msg(g, 11, noType)
	g = msg(g, 11, str(nil, 1, "ext_w"))
	g = msg(g, 1, str(str(nil, 4, "Relu"), 1, "ids"))
	g = str(g, 99, "unknown graph field")
	g = msg(g, 5, extTensor("ext_w", "a.bin"))
	g = msg(g, 5, extTensor("ext_v", "b.bin"))
	g = msg(g, 5, extTensor("ext_u", "a.bin"))
	g = msg(g, 15, msg(msg(nil, 2, vint(nil, 1, 0)), 1, str(nil, 8, "sparse_w"))) // indices before values
	g = msg(g, 11, str(nil, 1, "sparse_w"))
	g = msg(g, 12, msg(str(nil, 1, "out"), 2, msg(nil, 1, vint(nil, 1, uint64(Float)))))

	var b []byte
	b = msg(b, 8, vint(str(nil, 1, "ai.onnx"), 2, 15)) // opset before graph
	b = str(b, 6, "doc")
	b = vint(b, 1, 7)
	b = msg(b, 7, g)
	b = protowire.AppendFixed64(protowire.AppendTag(b, 100, protowire.Fixed64Type), 1)
	b = protowire.AppendFixed32(protowire.AppendTag(b, 101, protowire.Fixed32Type), 1)
	b = msg(b, 14, entry("k", "v1"))
	b = msg(b, 14, entry("k", "v2")) // last one wins
	return b
}

func TestReadInfoHandEncoded(t *testing.T) {
	info, err := ReadInfoBytes(handModel())
	if err != nil {
		t.Fatal(err)
	}
	want := &Info{
		IRVersion: 7,
		Opsets:    []OpsetImport{{"ai.onnx", 15}},
		Inputs: []ValueInfo{
			{Name: "ids", Type: Int64, Dims: []Dim{Sym("seq"), {Value: -1}, Fixed(1 << 40), {Value: -1}}},
			{Name: "seq_in"},
			{Name: "untyped"},
		},
		Outputs:       []ValueInfo{{Name: "out", Type: Float}},
		Initializers:  4,
		ExternalData:  true,
		ExternalFiles: []string{"a.bin", "b.bin"},
		Metadata:      map[string]string{"k": "v2"},
	}
	if !reflect.DeepEqual(info, want) {
		t.Errorf("\n got %+v\nwant %+v", info, want)
	}
}

func TestReadInfoNotONNX(t *testing.T) {
	valid, err := testModel().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(1))
	garbage := make([]byte, 4096)
	rng.Read(garbage)
	justHeader := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 8)
	cases := map[string][]byte{
		"empty":          nil,
		"garbage":        garbage,
		"text":           []byte("This is not a model.\nJust some text, with commas; and numbers 12345.\n"),
		"python":         []byte("import onnx\nmodel = onnx.load('model.onnx')\nprint(model.graph.input)\n"),
		"json":           []byte(`{"ir_version": 8, "graph": {"node": []}}`),
		"truncated half": valid[:len(valid)/2],
		"truncated -1":   valid[:len(valid)-1],
		"one byte":       valid[:1],
		"no graph":       justHeader,
		"graph as int":   protowire.AppendVarint(protowire.AppendTag(justHeader, 7, protowire.VarintType), 1),
		"no ir_version":  valid[2:], // drops the ir_version field (tag + one-byte value)
		"zeros":          make([]byte, 100),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ReadInfoBytes(data)
			if !errors.Is(err, ErrNotONNX) {
				t.Fatalf("err = %v, want ErrNotONNX", err)
			}
			if !strings.HasPrefix(err.Error(), "onnx: read model: not an ONNX model (") {
				t.Errorf("message %q", err)
			}
			path := filepath.Join(t.TempDir(), "model.onnx")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = ReadInfo(path)
			if !errors.Is(err, ErrNotONNX) || !strings.HasPrefix(err.Error(), "onnx: read "+path+": not an ONNX model (") {
				t.Errorf("ReadInfo err = %v", err)
			}
		})
	}
}

// Every prefix and every single-byte corruption of a model must either parse
// or fail with ErrNotONNX; nothing may panic.
func TestReadInfoCorruptions(t *testing.T) {
	valid, err := testModel().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, data []byte) {
		if _, err := ReadInfoBytes(data); err != nil && !errors.Is(err, ErrNotONNX) {
			t.Fatalf("%s: %v is not ErrNotONNX", what, err)
		}
	}
	for n := range valid {
		check("prefix", valid[:n])
	}
	for i := range valid {
		for _, x := range []byte{0x00, 0xff, 0x80} {
			c := append([]byte(nil), valid...)
			c[i] = x
			check("corrupt", c)
		}
	}
}

type failingReaderAt struct{ err error }

func (f failingReaderAt) ReadAt([]byte, int64) (int, error) { return 0, f.err }

func TestReadInfoIOErrors(t *testing.T) {
	boom := errors.New("disk on fire")
	_, err := ReadInfoFrom(failingReaderAt{boom}, 100)
	if !errors.Is(err, boom) || errors.Is(err, ErrNotONNX) {
		t.Errorf("err = %v, want the reader's error and not ErrNotONNX", err)
	}
	_, err = ReadInfo(filepath.Join(t.TempDir(), "missing.onnx"))
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing.onnx") {
		t.Errorf("missing file: %v", err)
	}
	if _, err = ReadInfo(t.TempDir()); err == nil {
		t.Error("directory accepted")
	}
	// A size larger than the data behaves like truncation.
	valid, _ := testModel().Marshal()
	_, err = ReadInfoFrom(strings.NewReader(string(valid)), int64(len(valid)+100))
	if !errors.Is(err, ErrNotONNX) {
		t.Errorf("oversized size: %v", err)
	}
}

func FuzzReadInfoBytes(f *testing.F) {
	valid, _ := testModel().Marshal()
	f.Add(valid)
	f.Add(handModel())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := ReadInfoBytes(data)
		if err != nil && !errors.Is(err, ErrNotONNX) {
			t.Fatalf("unexpected error kind: %v", err)
		}
		if err == nil && info == nil {
			t.Fatal("nil info without error")
		}
	})
}
