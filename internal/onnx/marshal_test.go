package onnx

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// testModel covers every attribute type, optional-input gaps, a custom
// domain, initializers of several types and all dim kinds.
func testModel() *Model {
	body := &Graph{
		Name:    "body",
		Nodes:   []Node{{OpType: "Identity", Inputs: []string{"x"}, Outputs: []string{"o"}}},
		Outputs: []ValueInfo{{Name: "o", Type: Float, Dims: []Dim{Fixed(1)}}},
	}
	return &Model{
		ProducerName:    "test",
		ProducerVersion: "1.2",
		Opsets:          []OpsetImport{{Domain: "", Version: 17}, {Domain: "com.microsoft", Version: 1}},
		Graph: Graph{
			Name: "g",
			Nodes: []Node{
				{
					Name: "n0", OpType: "Conv",
					Inputs:  []string{"x", "w", ""},
					Outputs: []string{"y"},
					Attrs: []Attribute{
						AttrFloat("alpha", 0.5),
						AttrInt("group", -3),
						AttrString("auto_pad", "SAME_UPPER"),
						AttrInts("pads", 1, -2, 3, 1<<40),
						AttrFloats("scales", 1.5, -2.25),
						AttrStrings("names", "a", "", "c"),
						AttrTensor("value", Int64Tensor("", []int64{2}, []int64{7, -8})),
						AttrGraph("body", body),
						AttrFloat("zero", 0),
						AttrInts("empty"),
					},
				},
				{OpType: "FusedMatMul", Domain: "com.microsoft", Inputs: []string{"y", "h"}, Outputs: []string{"z", ""}},
			},
			Initializers: []Tensor{
				Float32Tensor("w", []int64{2, 3}, []float32{1, 2, 3, 4, 5, 6}),
				Float16Tensor("h", []int64{2}, []float32{1, -2}),
				Int64Tensor("s", nil, []int64{5}),
			},
			Inputs:    []ValueInfo{{Name: "x", Type: Float, Dims: []Dim{Sym("batch"), Fixed(3), {Value: -1}}}},
			Outputs:   []ValueInfo{{Name: "z", Type: Float16}},
			ValueInfo: []ValueInfo{{Name: "y", Type: Float, Dims: []Dim{}}},
		},
		Metadata: map[string]string{"b": "2", "a": "1"},
	}
}

func TestMarshalFields(t *testing.T) {
	b, err := testModel().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	m := decode(t, b)
	if got := m.int(t, 1); got != 8 {
		t.Errorf("ir_version = %d, want 8 (derived from opset 17)", got)
	}
	if m.str(t, 2) != "test" || m.str(t, 3) != "1.2" {
		t.Errorf("producer = %q %q", m.str(t, 2), m.str(t, 3))
	}
	ops := m.msgs(t, 8)
	if len(ops) != 2 || ops[0].has(1) || ops[0].int(t, 2) != 17 || ops[1].str(t, 1) != "com.microsoft" || ops[1].int(t, 2) != 1 {
		t.Errorf("opset_import wrong: %v", ops)
	}
	if got := m.entries(t, 14); !reflect.DeepEqual(got, [][2]string{{"a", "1"}, {"b", "2"}}) {
		t.Errorf("metadata = %v, want sorted a,b", got)
	}

	g := m.msg(t, 7)
	if g.str(t, 2) != "g" {
		t.Errorf("graph name = %q", g.str(t, 2))
	}
	nodes := g.msgs(t, 1)
	if len(nodes) != 2 {
		t.Fatalf("%d nodes", len(nodes))
	}
	n0 := nodes[0]
	if n0.str(t, 4) != "Conv" || n0.str(t, 3) != "n0" || n0.has(7) {
		t.Errorf("node 0 op/name/domain wrong")
	}
	if got := n0.strs(t, 1); !reflect.DeepEqual(got, []string{"x", "w", ""}) {
		t.Errorf("node 0 inputs = %q", got)
	}
	if got := n0.strs(t, 2); !reflect.DeepEqual(got, []string{"y"}) {
		t.Errorf("node 0 outputs = %q", got)
	}
	n1 := nodes[1]
	if n1.str(t, 4) != "FusedMatMul" || n1.str(t, 7) != "com.microsoft" || n1.has(3) {
		t.Errorf("node 1 op/domain wrong")
	}
	if got := n1.strs(t, 2); !reflect.DeepEqual(got, []string{"z", ""}) {
		t.Errorf("node 1 outputs = %q", got)
	}

	attrs := map[string]pmsg{}
	for _, a := range n0.msgs(t, 5) {
		attrs[a.str(t, 1)] = a
	}
	if len(attrs) != 10 {
		t.Fatalf("%d attributes, want 10", len(attrs))
	}
	wantType := map[string]AttrType{"alpha": 1, "zero": 1, "group": 2, "auto_pad": 3, "value": 4, "body": 5, "scales": 6, "pads": 7, "empty": 7, "names": 8}
	for name, typ := range wantType {
		if got := attrs[name].uint(t, 20); got != uint64(typ) {
			t.Errorf("attr %s type = %d, want %d", name, got, typ)
		}
	}
	if got := attrs["alpha"].floats(t, 2); !reflect.DeepEqual(got, []float32{0.5}) {
		t.Errorf("alpha = %v", got)
	}
	if got := attrs["zero"].floats(t, 2); !reflect.DeepEqual(got, []float32{0}) {
		t.Errorf("zero float attribute must still be written, got %v", got)
	}
	if got := attrs["group"].int(t, 3); got != -3 {
		t.Errorf("group = %d", got)
	}
	if got := attrs["auto_pad"].str(t, 4); got != "SAME_UPPER" {
		t.Errorf("auto_pad = %q", got)
	}
	if got := attrs["pads"].ints(t, 8); !reflect.DeepEqual(got, []int64{1, -2, 3, 1 << 40}) {
		t.Errorf("pads = %v", got)
	}
	if got := attrs["empty"].ints(t, 8); len(got) != 0 {
		t.Errorf("empty = %v", got)
	}
	if got := attrs["scales"].floats(t, 7); !reflect.DeepEqual(got, []float32{1.5, -2.25}) {
		t.Errorf("scales = %v", got)
	}
	if got := attrs["names"].strs(t, 9); !reflect.DeepEqual(got, []string{"a", "", "c"}) {
		t.Errorf("names = %q", got)
	}
	vt := attrs["value"].msg(t, 5)
	if vt.has(8) || vt.int(t, 2) != int64(Int64) || !reflect.DeepEqual(vt.ints(t, 1), []int64{2}) {
		t.Errorf("value tensor header wrong")
	}
	if got := vt.str(t, 9); got != "\x07\x00\x00\x00\x00\x00\x00\x00\xf8\xff\xff\xff\xff\xff\xff\xff" {
		t.Errorf("value tensor raw = %x", got)
	}
	sub := attrs["body"].msg(t, 6)
	if sub.str(t, 2) != "body" || sub.msgs(t, 1)[0].str(t, 4) != "Identity" || sub.msgs(t, 12)[0].str(t, 1) != "o" {
		t.Errorf("subgraph wrong")
	}
	for name, a := range attrs { // only the field for the attribute's type
		n := 0
		for _, f := range []int{2, 3, 4, 5, 6, 7, 8, 9} {
			if a.has(protowire.Number(f)) {
				n++
			}
		}
		want := 1
		if name == "empty" {
			want = 0
		}
		if n != want {
			t.Errorf("attr %s has %d value fields", name, n)
		}
	}

	inits := g.msgs(t, 5)
	want := testModel().Graph.Initializers
	if len(inits) != len(want) {
		t.Fatalf("%d initializers", len(inits))
	}
	for i, in := range inits {
		w := want[i]
		if in.str(t, 8) != w.Name || in.int(t, 2) != int64(w.Type) || in.str(t, 9) != string(w.Raw) || in.has(13) || in.has(14) {
			t.Errorf("initializer %d (%s) wrong", i, w.Name)
		}
		if got := in.ints(t, 1); !reflect.DeepEqual(got, w.Dims) && !(len(got) == 0 && len(w.Dims) == 0) {
			t.Errorf("initializer %s dims = %v, want %v", w.Name, got, w.Dims)
		}
	}
	if got := inits[0].str(t, 9); got != string(f32le(1, 2, 3, 4, 5, 6)) {
		t.Errorf("w raw = %x", got)
	}

	in := g.msgs(t, 11)
	if len(in) != 1 || in[0].str(t, 1) != "x" {
		t.Fatalf("inputs wrong")
	}
	tt := in[0].msg(t, 2).msg(t, 1)
	if tt.int(t, 1) != int64(Float) {
		t.Errorf("x elem_type = %d", tt.int(t, 1))
	}
	dims := tt.msg(t, 2).msgs(t, 1)
	if len(dims) != 3 || dims[0].str(t, 2) != "batch" || dims[0].has(1) || dims[1].int(t, 1) != 3 || dims[1].has(2) || len(dims[2]) != 0 {
		t.Errorf("x dims wrong: %v", dims)
	}
	out := g.msgs(t, 12)
	ot := out[0].msg(t, 2).msg(t, 1)
	if out[0].str(t, 1) != "z" || ot.int(t, 1) != int64(Float16) || ot.has(2) {
		t.Errorf("output z wrong (unknown rank must have no shape)")
	}
	vi := g.msgs(t, 13)
	vt2 := vi[0].msg(t, 2).msg(t, 1)
	if vi[0].str(t, 1) != "y" || !vt2.has(2) || len(vt2.msg(t, 2)) != 0 {
		t.Errorf("value_info y must be a scalar (empty shape)")
	}
}

func f32le(v ...float32) []byte { return Float32Tensor("", nil, v).Raw }

func TestIRVersion(t *testing.T) {
	for opset, want := range map[int64]int64{7: 8, 13: 8, 18: 8, 19: 9, 20: 9, 21: 10, 22: 10} {
		if got := IRVersionForOpset(opset); got != want {
			t.Errorf("IRVersionForOpset(%d) = %d, want %d", opset, got, want)
		}
		m := testModel()
		m.Opsets[0] = OpsetImport{Domain: "ai.onnx", Version: opset}
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if got := decode(t, b).int(t, 1); got != want {
			t.Errorf("opset %d: ir_version %d, want %d", opset, got, want)
		}
	}
	m := testModel()
	m.IRVersion = 7
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if got := decode(t, b).int(t, 1); got != 7 {
		t.Errorf("explicit ir_version = %d, want 7", got)
	}
}

func TestMarshalDeterministic(t *testing.T) {
	mk := func() *Model {
		m := testModel()
		for i := 0; i < 50; i++ {
			m.Metadata[fmt.Sprintf("k%02d", 49-i)] = strconv.Itoa(i)
		}
		return m
	}
	m := mk()
	a, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		c, err := mk().Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) || !bytes.Equal(a, c) {
			t.Fatal("marshal is not deterministic")
		}
	}
}

func TestMarshalErrors(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(m *Model)
		want   string
	}{
		{"no outputs", func(m *Model) { m.Graph.Outputs = nil }, `graph "g": no outputs`},
		{"no op type", func(m *Model) { m.Graph.Nodes[1].OpType = "" }, "node 1 has no op_type"},
		{"unknown input type", func(m *Model) { m.Graph.Inputs[0].Type = 0 }, `input "x" has unknown data type DataType(0)`},
		{"unknown output type", func(m *Model) { m.Graph.Outputs[0].Type = 99 }, `output "z" has unknown data type DataType(99)`},
		{"unknown value_info type", func(m *Model) { m.Graph.ValueInfo[0].Type = 8 }, `value_info "y" has unknown data type`},
		{"raw size", func(m *Model) { m.Graph.Initializers[0].Raw = m.Graph.Initializers[0].Raw[:8] }, `initializer "w": raw data is 8 bytes, want 24`},
		{"raw size scalar", func(m *Model) { m.Graph.Initializers[2].Raw = nil }, `initializer "s": raw data is 0 bytes, want 8`},
		{"tensor type", func(m *Model) { m.Graph.Initializers[1].Type = 0 }, `initializer "h": unknown data type`},
		{"negative dim", func(m *Model) { m.Graph.Initializers[0].Dims = []int64{-2, -3} }, "negative dimension"},
		{"unnamed initializer", func(m *Model) { m.Graph.Initializers[1].Name = "" }, "initializer 1 has no name"},
		{"duplicate initializer", func(m *Model) { m.Graph.Initializers[1].Name = "w" }, `initializer "w" already defined`},
		{"duplicate output", func(m *Model) { m.Graph.Nodes[1].Outputs[0] = "y" }, `output "y" already defined as an output of node 0 (n0)`},
		{"duplicate input", func(m *Model) { m.Graph.Inputs = append(m.Graph.Inputs, m.Graph.Inputs[0]) }, `duplicate input "x"`},
		{"no opsets", func(m *Model) { m.Opsets = nil }, "no opset imports"},
		{"bad opset", func(m *Model) { m.Opsets[1].Version = 0 }, `domain "com.microsoft" has version 0`},
		{"duplicate opset", func(m *Model) { m.Opsets[1].Domain = "ai.onnx" }, "duplicate opset import"},
		{"no default opset", func(m *Model) { m.Opsets = m.Opsets[1:] }, "no default-domain opset"},
		{"negative ir", func(m *Model) { m.IRVersion = -1 }, "negative IR version"},
		{"nil graph attr", func(m *Model) { m.Graph.Nodes[0].Attrs[7].G = nil }, `attribute "body": graph attribute has nil graph`},
		{"nil tensor attr", func(m *Model) { m.Graph.Nodes[0].Attrs[6].T = nil }, `attribute "value": tensor attribute has nil tensor`},
		{"bad tensor attr", func(m *Model) { m.Graph.Nodes[0].Attrs[6].T.Dims = []int64{3} }, `attribute "value": raw data is 16 bytes, want 24`},
		{"bad attr type", func(m *Model) { m.Graph.Nodes[0].Attrs[0].Type = 42 }, "unknown attribute type 42"},
		{"unnamed attr", func(m *Model) { m.Graph.Nodes[0].Attrs[0].Name = "" }, "attribute with no name"},
		{"duplicate attr", func(m *Model) { m.Graph.Nodes[0].Attrs[1].Name = "alpha" }, `duplicate attribute "alpha"`},
		{"subgraph no outputs", func(m *Model) { m.Graph.Nodes[0].Attrs[7].G.Outputs = nil }, `subgraph "body": no outputs`},
		{"cyclic subgraph", func(m *Model) { m.Graph.Nodes[0].Attrs[7].G = &m.Graph }, "nested deeper"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := testModel()
			c.mutate(m)
			b, err := m.Marshal()
			if err == nil {
				t.Fatalf("Marshal succeeded (%d bytes), want error containing %q", len(b), c.want)
			}
			if !strings.HasPrefix(err.Error(), "onnx: marshal: ") || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to contain %q", err, c.want)
			}
			if _, _, err := m.MarshalExternal("d", 1); err == nil {
				t.Error("MarshalExternal succeeded on an invalid model")
			}
		})
	}
	var nilModel *Model
	if _, err := nilModel.Marshal(); err == nil {
		t.Error("nil model marshalled")
	}
}

func TestMarshalExternal(t *testing.T) {
	fill := func(name string, n int) Tensor {
		raw := make([]byte, n)
		for i := range raw {
			raw[i] = byte(i*7 + len(name))
		}
		return Tensor{Name: name, Type: Uint8, Dims: []int64{int64(n)}, Raw: raw}
	}
	m := testModel()
	m.Graph.Initializers = append(m.Graph.Initializers, fill("a", 1000), fill("small", 99), fill("b", 130), fill("c", 100))
	model, data, err := m.MarshalExternal("m.onnx_data", 100)
	if err != nil {
		t.Fatal(err)
	}
	wantOff := map[string]int{"a": 0, "b": 1024, "c": 1216} // 64-byte aligned
	if len(data) != 1216+100 {
		t.Errorf("data is %d bytes, want %d", len(data), 1316)
	}
	byName := map[string]Tensor{}
	for _, in := range m.Graph.Initializers {
		byName[in.Name] = in
	}
	g := decode(t, model).msg(t, 7)
	seen := 0
	for _, in := range g.msgs(t, 5) {
		name := in.str(t, 8)
		off, external := wantOff[name]
		if !external {
			if in.has(13) || in.has(14) || in.str(t, 9) != string(byName[name].Raw) {
				t.Errorf("%s must stay inline", name)
			}
			continue
		}
		seen++
		if in.has(9) {
			t.Errorf("%s: raw_data written for external tensor", name)
		}
		if in.int(t, 14) != 1 {
			t.Errorf("%s: data_location != EXTERNAL", name)
		}
		ent := in.entries(t, 13)
		raw := byName[name].Raw
		want := [][2]string{{"location", "m.onnx_data"}, {"offset", strconv.Itoa(off)}, {"length", strconv.Itoa(len(raw))}}
		if !reflect.DeepEqual(ent, want) {
			t.Errorf("%s: external_data = %v, want %v", name, ent, want)
		}
		if !bytes.Equal(data[off:off+len(raw)], raw) {
			t.Errorf("%s: data file bytes at %d differ", name, off)
		}
	}
	if seen != 3 {
		t.Errorf("%d external tensors, want 3", seen)
	}
	// Tensors inside attributes stay inline.
	if decode(t, g.msgs(t, 1)[0].msgs(t, 5)[6].one(t, 5, protowire.BytesType).b).has(14) {
		t.Error("attribute tensor moved to external data")
	}
	for _, bad := range []string{"", "../x", "a/b", `a\b`, ".."} {
		if _, _, err := m.MarshalExternal(bad, 1); err == nil {
			t.Errorf("MarshalExternal(%q) accepted", bad)
		}
	}
	// threshold <= 0 moves every non-empty initializer.
	_, data, err = m.MarshalExternal("d", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 1000+99+130+100 {
		t.Errorf("threshold 0 moved only %d bytes", len(data))
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	m := testModel()
	big := make([]byte, 5000)
	for i := range big {
		big[i] = byte(i)
	}
	m.Graph.Initializers = append(m.Graph.Initializers, Tensor{Name: "big", Type: Int8, Dims: []int64{5000}, Raw: big})

	plain := filepath.Join(dir, "plain.onnx")
	if err := m.WriteFile(plain, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(plain)
	want, _ := m.Marshal()
	if !bytes.Equal(got, want) {
		t.Error("WriteFile bytes differ from Marshal")
	}

	path := filepath.Join(dir, "m.onnx")
	if err := m.WriteFile(path, WriteOptions{ExternalData: true}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "m.onnx_data"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, big) { // only "big" is over the 1024-byte default
		t.Errorf("data file is %d bytes, want exactly the big tensor", len(data))
	}
	info, err := ReadInfo(path)
	if err != nil {
		t.Fatal(err)
	}
	if !info.ExternalData || !reflect.DeepEqual(info.ExternalFiles, []string{"m.onnx_data"}) || info.Initializers != 4 {
		t.Errorf("info: external=%v files=%v inits=%d", info.ExternalData, info.ExternalFiles, info.Initializers)
	}

	if err := m.WriteFile(path, WriteOptions{ExternalData: true, DataName: "w.bin", Threshold: 8}); err != nil {
		t.Fatal(err)
	}
	info, err = ReadInfo(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(info.ExternalFiles, []string{"w.bin"}) {
		t.Errorf("files = %v", info.ExternalFiles)
	}
	if st, err := os.Stat(filepath.Join(dir, "w.bin")); err != nil || st.Size() < 5000+24 {
		t.Errorf("w.bin: %v", err)
	}

	bad := testModel()
	bad.Graph.Outputs = nil
	if err := bad.WriteFile(filepath.Join(dir, "bad.onnx"), WriteOptions{}); err == nil {
		t.Error("invalid model written")
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !reflect.DeepEqual(names, []string{"m.onnx", "m.onnx_data", "plain.onnx", "w.bin"}) {
		t.Errorf("directory holds %v (temp files left or bad file written?)", names)
	}
	if err := m.WriteFile(filepath.Join(dir, "nodir", "x.onnx"), WriteOptions{}); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}
