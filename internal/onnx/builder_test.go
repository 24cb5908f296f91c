package onnx

import (
	"reflect"
	"strings"
	"testing"
)

func TestBuilder(t *testing.T) {
	b := NewBuilder("mlp", 17)
	x := b.Input("x", Float, Sym("batch"), Fixed(4))
	w := b.Initializer(Float32Tensor("w", []int64{4, 2}, make([]float32, 8)))
	bias := b.Constant(Float32Tensor("", []int64{2}, []float32{1, 2}))
	mm := b.Op("MatMul", []string{x, w})
	add := b.Op("Add", []string{mm, bias})
	parts := b.OpN("Split", []string{add}, 2, AttrInt("axis", 1))
	g1 := b.OpDomain("com.microsoft", "Gelu", []string{parts[0]}, 1)
	g2 := b.OpDomain("com.microsoft", "Gelu", []string{parts[1]}, 1)
	b.Output(g1[0], "y", Float, Sym("batch"), Fixed(1))
	b.Output(g2[0], g2[0], Float)
	m := b.Model()

	if m.IRVersion != 8 || m.ProducerName != "rflow" {
		t.Errorf("ir %d producer %q", m.IRVersion, m.ProducerName)
	}
	if want := []OpsetImport{{"", 17}, {"com.microsoft", 1}}; !reflect.DeepEqual(m.Opsets, want) {
		t.Errorf("opsets = %v, want %v", m.Opsets, want)
	}
	if bias == "" || bias == w {
		t.Errorf("generated initializer name %q", bias)
	}
	names := map[string]bool{}
	for _, n := range append([]string{x, w, bias, mm, add, g1[0], g2[0]}, parts...) {
		if names[n] {
			t.Errorf("name %q returned twice", n)
		}
		names[n] = true
	}
	if !strings.HasPrefix(mm, "MatMul_") || !strings.HasPrefix(parts[0], "Split_") || len(parts) != 2 {
		t.Errorf("generated names %q %q", mm, parts)
	}
	ops := []string{}
	for _, n := range m.Graph.Nodes {
		ops = append(ops, n.Domain+":"+n.OpType)
	}
	if want := []string{":MatMul", ":Add", ":Split", "com.microsoft:Gelu", "com.microsoft:Gelu", ":Identity"}; !reflect.DeepEqual(ops, want) {
		t.Errorf("nodes = %v, want %v", ops, want)
	}
	id := m.Graph.Nodes[5]
	if !reflect.DeepEqual(id.Inputs, []string{g1[0]}) || !reflect.DeepEqual(id.Outputs, []string{"y"}) {
		t.Errorf("Identity node %v -> %v", id.Inputs, id.Outputs)
	}
	if got := m.Graph.Nodes[2].Attrs; len(got) != 1 || got[0].I != 1 {
		t.Errorf("Split attrs = %v", got)
	}

	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	info, err := ReadInfoBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	wantIn := []ValueInfo{{Name: "x", Type: Float, Dims: []Dim{Sym("batch"), Fixed(4)}}}
	wantOut := []ValueInfo{{Name: "y", Type: Float, Dims: []Dim{Sym("batch"), Fixed(1)}}, {Name: g2[0], Type: Float}}
	if !reflect.DeepEqual(info.Inputs, wantIn) || !reflect.DeepEqual(info.Outputs, wantOut) || info.Initializers != 2 {
		t.Errorf("info: in %v out %v inits %d", info.Inputs, info.Outputs, info.Initializers)
	}

	// The returned model is a snapshot.
	b.Op("Relu", []string{x})
	if len(m.Graph.Nodes) != 6 {
		t.Error("builder calls after Model() changed the model")
	}
}

func TestBuilderNamesAvoidCollisions(t *testing.T) {
	b := NewBuilder("g", 21)
	b.Input("Relu_1", Float)
	b.Initializer(Float32Tensor("init_2", nil, []float32{1}))
	r := b.Op("Relu", []string{"Relu_1"})
	c := b.Constant(Float32Tensor("", nil, []float32{2}))
	if r == "Relu_1" || c == "init_2" {
		t.Errorf("generated names collide: %q %q", r, c)
	}
	b.Output(r, "out", Float)
	m := b.Model()
	if m.IRVersion != 10 {
		t.Errorf("opset 21 -> IR %d, want 10", m.IRVersion)
	}
	if _, err := m.Marshal(); err != nil {
		t.Fatal(err)
	}
}

func TestBuilderStickyErrors(t *testing.T) {
	cases := []struct {
		name  string
		build func(b *Builder)
		want  string
	}{
		{"duplicate input", func(b *Builder) { b.Input("x", Float); b.Input("x", Float) }, `duplicate value name "x"`},
		{"input vs initializer", func(b *Builder) {
			b.Input("x", Float)
			b.Initializer(Float32Tensor("x", nil, []float32{1}))
		}, `duplicate value name "x" (initializer)`},
		{"empty input name", func(b *Builder) { b.Input("", Float) }, "input with empty name"},
		{"zero outputs", func(b *Builder) { b.OpN("Split", []string{"x"}, 0) }, "Split: 0 outputs"},
		{"empty op", func(b *Builder) { b.Op("", nil) }, "empty op type"},
		{"duplicate output", func(b *Builder) {
			v := b.Op("Relu", []string{"x"})
			b.Output(v, "y", Float)
			b.Output(v, "y", Float)
		}, `duplicate output "y"`},
		{"output name taken", func(b *Builder) {
			b.Input("x", Float)
			v := b.Op("Relu", []string{"x"})
			b.Output(v, "x", Float)
		}, `duplicate value name "x" (output)`},
		{"bad output type", func(b *Builder) { b.Output(b.Op("Relu", []string{"x"}), "y", 0) }, `output "y" has unknown data type`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := NewBuilder("g", 17)
			c.build(b)
			// Keep building after the error: nothing panics, the first error sticks.
			b.Output(b.Op("Identity", []string{"x"}), "final", Float)
			_, err := b.Model().Marshal()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Marshal error %v, want it to contain %q", err, c.want)
			}
		})
	}
	if _, err := NewBuilder("g", 0).Model().Marshal(); err == nil || !strings.Contains(err.Error(), "opset 0") {
		t.Errorf("opset 0: %v", err)
	}
}

func TestBuilderSubgraph(t *testing.T) {
	then := NewBuilder("then", 17)
	then.Output(then.Op("Neg", []string{"x"}), "r", Float)
	tg, err := then.Graph()
	if err != nil {
		t.Fatal(err)
	}
	els := NewBuilder("else", 17)
	els.Output(els.Op("Abs", []string{"x"}), "r", Float)
	eg, _ := els.Graph()

	b := NewBuilder("main", 17)
	x := b.Input("x", Float, Fixed(1))
	c := b.Input("c", Bool)
	out := b.Op("If", []string{c}, AttrGraph("then_branch", tg), AttrGraph("else_branch", eg))
	b.Output(out, "y", Float, Fixed(1))
	_ = x
	data, err := b.Model().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	node := decode(t, data).msg(t, 7).msgs(t, 1)[0]
	for i, a := range node.msgs(t, 5) {
		g := a.msg(t, 6)
		if want := []string{"then", "else"}[i]; g.str(t, 2) != want || g.msgs(t, 12)[0].str(t, 1) != "r" {
			t.Errorf("branch %d wrong", i)
		}
	}
}
