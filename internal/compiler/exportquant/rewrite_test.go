package exportquant

import (
	"bytes"
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/benchutil"
	"github.com/rflowrt/rflow/internal/compiler/arch"
	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/testmodels"
)

// A model read and written back runs to the same bits as the original.
func TestRoundTripRunsIdentically(t *testing.T) {
	dir := t.TempDir()
	for _, flux := range []bool{false, true} {
		name := map[bool]string{false: "sd3", true: "flux"}[flux]
		src := writeModel(t, transformer(t, flux, arch.UnfusedAttention, nil), filepath.Join(dir, name, "a"))
		m, err := onnx.ReadModel(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := writeModel(t, m, filepath.Join(dir, name, "b"))
		want, got := runModel(t, src, 1), runModel(t, dst, 1)
		for k, w := range want {
			if d, _ := maxDiff(w, got[k]); d != 0 {
				t.Errorf("%s %s: round trip changed the output by up to %g", name, k, d)
			}
		}
	}
}

// Quantizing an export gives exactly the weights the compiler stores for the same layers and kind,
// on the same selection of layers (a compiled fp32 graph stands in for the export: its weight
// MatMuls are the export's form, B [in, out] with the bias added after).
func TestQuantizedExportMatchesCompiler(t *testing.T) {
	w := testmodels.RandomWeights{Seed: 11}
	for _, k := range []arch.WeightKind{arch.Int8, arch.Q8, arch.Q4} {
		t.Run(string(k), func(t *testing.T) {
			export := transformer(t, false, arch.FusedAttention, w)
			st, err := Rewrite(context.Background(), export, Options{Kind: k})
			if err != nil {
				t.Fatal(err)
			}
			compiled := transformer(t, false, arch.FusedAttention, arch.Quantized(w, Quant(k)))
			op := map[arch.WeightKind]string{arch.Int8: "com.microsoft:DynamicQuantizeMatMul"}[k]
			if op == "" {
				op = "com.microsoft:MatMulNBits"
			}
			if n := opCounts(compiled)[op]; st.Quantized != n || opCounts(export)[op] != n || n == 0 {
				t.Errorf("rewrote %d MatMuls into %d %s; the compiler has %d", st.Quantized, opCounts(export)[op], op, n)
			}
			if st.BiasesFolded == 0 || st.Float == 0 {
				t.Errorf("stats %+v: want folded biases and float layers outside the blocks", st)
			}
			got := map[string]onnx.Tensor{}
			for _, it := range export.Graph.Initializers {
				got[it.Name] = it
			}
			compared := 0
			for _, it := range compiled.Graph.Initializers {
				if !strings.HasSuffix(it.Name, ".int8") && !strings.HasSuffix(it.Name, ".scale") &&
					!strings.HasSuffix(it.Name, ".qweight") && !strings.HasSuffix(it.Name, ".scales") && !strings.HasSuffix(it.Name, ".zero_points") {
					continue
				}
				g, ok := got[it.Name]
				if !ok {
					t.Errorf("%s: missing from the quantized export", it.Name)
					continue
				}
				a, err1 := it.Bytes()
				b, err2 := g.Bytes()
				if err1 != nil || err2 != nil || !bytes.Equal(a, b) || g.Type != it.Type {
					t.Errorf("%s: quantized export differs from the compiler's (%v %v)", it.Name, err1, err2)
				}
				compared++
			}
			if compared == 0 {
				t.Fatal("no quantized initializers compared")
			}
		})
	}
}

// Fused attention gives the unfused graph's outputs within float tolerance on SD3 (joint attention,
// qk norm, a dual-attention block) and FLUX (RoPE, double and single blocks); every attention is
// fused, and the quantized + fused graph runs too.
func TestFuseAttentionMatchesUnfused(t *testing.T) {
	dir := t.TempDir()
	for _, flux := range []bool{false, true} {
		name := map[bool]string{false: "sd3", true: "flux"}[flux]
		m := transformer(t, flux, arch.UnfusedAttention, nil)
		softmax := opCounts(m)["Softmax"]
		src := writeModel(t, m, filepath.Join(dir, name, "unfused"))
		st, err := Rewrite(context.Background(), m, Options{Kind: arch.FP32, FuseAttention: true})
		if err != nil {
			t.Fatal(err)
		}
		ops := opCounts(m)
		if st.Attentions != softmax || st.AttentionsLeft != 0 || ops["Softmax"] != 0 || ops["com.microsoft:MultiHeadAttention"] != softmax {
			t.Errorf("%s: fused %d of %d attentions (%d Softmax left, %d MHA)", name, st.Attentions, softmax, ops["Softmax"], ops["com.microsoft:MultiHeadAttention"])
		}
		dst := writeModel(t, m, filepath.Join(dir, name, "fused"))
		want, got := runModel(t, src, 2), runModel(t, dst, 2)
		for k, w := range want {
			d, scale := maxDiff(w, got[k])
			if d > 1e-5*max(scale, 1) {
				t.Errorf("%s %s: fused output differs by up to %g (max |y| %g)", name, k, d, scale)
			}
			t.Logf("%s %s: max |Δ| %.3g, max |y| %.3g", name, k, d, scale)
		}
	}
}

// Bad input: unknown kinds, an already quantized model, an unsupported opset.
func TestRewriteRefuses(t *testing.T) {
	for _, s := range []string{"q3", "fp16", "INT8"} {
		if _, err := ParseKind(s); err == nil {
			t.Errorf("ParseKind(%q) accepted", s)
		}
	}
	ctx := context.Background()
	m := transformer(t, false, arch.FusedAttention, nil)
	if _, err := Rewrite(ctx, m, Options{Kind: arch.Q8}); err != nil {
		t.Fatal(err)
	}
	if _, err := Rewrite(ctx, m, Options{Kind: arch.Int8}); !errorsIs(err, ErrAlreadyQuantized) || !strings.Contains(err.Error(), "MatMulNBits") {
		t.Errorf("quantizing twice: %v", err)
	}
	m = transformer(t, false, arch.FusedAttention, nil)
	m.Opsets[0].Version = 5
	if _, err := Rewrite(ctx, m, Options{Kind: arch.Q4}); !errorsIs(err, ErrUnsupportedOpset) {
		t.Errorf("opset 5: %v", err)
	}
	if _, err := Rewrite(ctx, m, Options{Kind: "q3"}); !errorsIs(err, ErrUnknownWeightKind) {
		t.Errorf("kind q3: %v", err)
	}
}

func TestLayerName(t *testing.T) {
	for _, c := range [][3]string{
		{"/transformer_blocks.0/attn/to_q/MatMul", "onnx::MatMul_774", "transformer_blocks.0.attn.to_q.weight"},
		{"/m/single_transformer_blocks.3/proj_out/MatMul_1", "onnx::MatMul_9", "m.single_transformer_blocks.3.proj_out.weight"},
		{"MatMul_12", "transformer_blocks.1.ff.net.2.weight.T", "transformer_blocks.1.ff.net.2.weight"},
		{"", "encoder.layers.0.mlp.fc1.weight", "encoder.layers.0.mlp.fc1.weight"},
		{"mm", "w", "w"},
	} {
		if got := LayerName(c[0], c[1]); got != c[2] {
			t.Errorf("LayerName(%q, %q) = %q, want %q", c[0], c[1], got, c[2])
		}
	}
}

// Gemm with transB and a bias, a MatMul with its bias Add, a weight shared by two MatMuls and a
// Gemm with alpha ≠ 1 (left float): each kind runs close to the float graph, with one quantized copy
// of the shared weight.
func TestRewriteGemmAndSharedWeights(t *testing.T) {
	const n = 64
	r := testmodels.RandomWeights{Seed: 5}
	build := func() *onnx.Model {
		b := onnx.NewBuilder("g", 17)
		x := b.Input("x", onnx.Float, onnx.Fixed(8), onnx.Fixed(n))
		param := func(name string, dims ...int64) string {
			v, _ := r.Float32(name, dims)
			return b.Initializer(onnx.Float32Tensor(name, dims, v))
		}
		w1, b1 := param("onnx::Gemm_1", n, n), param("b1", n)
		w2, b2 := param("onnx::MatMul_2", n, n), param("b2", n)
		w3 := param("onnx::Gemm_3", n, n)
		m := b.Model()
		nodes := []onnx.Node{
			{Name: "/blocks.0/ff/Gemm", OpType: "Gemm", Inputs: []string{x, w1, b1}, Outputs: []string{"y1"}, Attrs: []onnx.Attribute{onnx.AttrInt("transB", 1)}},
			{Name: "/blocks.0/attn/to_q/MatMul", OpType: "MatMul", Inputs: []string{"y1", w2}, Outputs: []string{"y2"}},
			{Name: "/blocks.0/attn/to_q/Add", OpType: "Add", Inputs: []string{b2, "y2"}, Outputs: []string{"z"}},
			{Name: "/blocks.1/attn/to_q/MatMul", OpType: "MatMul", Inputs: []string{"z", w2}, Outputs: []string{"y3"}},
			{Name: "/blocks.1/ff/Gemm", OpType: "Gemm", Inputs: []string{"y3", w3}, Outputs: []string{"y"}, Attrs: []onnx.Attribute{onnx.AttrFloat("alpha", 2)}},
		}
		m.Graph.Nodes = nodes
		m.Graph.Outputs = []onnx.ValueInfo{{Name: "y", Type: onnx.Float, Dims: []onnx.Dim{onnx.Fixed(8), onnx.Fixed(n)}}}
		return m
	}
	dir := t.TempDir()
	src := writeModel(t, build(), filepath.Join(dir, "float"))
	want := runModel(t, src, 4)["y"]
	for k, minSNR := range map[arch.WeightKind]float64{arch.Int8: 25, arch.Q8: 35, arch.Q4: 12} {
		m := build()
		st, err := Rewrite(context.Background(), m, Options{Kind: k})
		if err != nil {
			t.Fatal(err)
		}
		if st.WeightMatMuls != 4 || st.Quantized != 3 || st.BiasesFolded != 1 || st.Float16Weights != 1 {
			t.Errorf("%s: stats %+v, want 4 weight MatMuls, 3 quantized, 1 bias folded, 1 float16 (the alpha-2 Gemm's)", k, st)
		}
		quantized := 0
		for _, it := range m.Graph.Initializers {
			if it.Type == onnx.Int8 || it.Type == onnx.Uint8 {
				quantized++
			}
		}
		if want := map[arch.WeightKind]int{arch.Int8: 2}[k]; want == 0 && quantized != 4 || want != 0 && quantized != want {
			t.Errorf("%s: %d integer initializers (the shared weight must be stored once)", k, quantized)
		}
		got := runModel(t, writeModel(t, m, filepath.Join(dir, string(k))), 4)["y"]
		if s := benchutil.SNRdB(got, want); s < minSNR {
			t.Errorf("%s: %.1f dB SNR against float, want ≥ %g", k, s, minSNR)
		} else {
			t.Logf("%s: %.1f dB", k, s)
		}
	}
}

// The quantized operators' scales stay float32 initializers fed to the operator directly, however
// large; the float weight left unquantized becomes float16 + Cast.
func TestQuantizedScalesStayFloat32(t *testing.T) {
	b := onnx.NewBuilder("g", 17)
	x := b.Input("x", onnx.Float, onnx.Fixed(2), onnx.Fixed(512))
	r := testmodels.RandomWeights{Seed: 3}
	v, _ := r.Float32("w", []int64{512, 2048})
	y := b.Op("MatMul", []string{x, b.Initializer(onnx.Float32Tensor("blocks.0.fc.weight.T", []int64{512, 2048}, v))})
	v, _ = r.Float32("p", []int64{2048, 8})
	y = b.Op("MatMul", []string{y, b.Initializer(onnx.Float32Tensor("proj_out.weight.T", []int64{2048, 8}, v))})
	b.Output(y, "y", onnx.Float, onnx.Fixed(2), onnx.Fixed(8))
	m := b.Model()
	st, err := Rewrite(context.Background(), m, Options{Kind: arch.Q8})
	if err != nil {
		t.Fatal(err)
	}
	if st.Quantized != 1 || st.Float16Weights != 1 {
		t.Errorf("stats %+v: want 1 quantized, 1 float16 (proj_out)", st)
	}
	types := map[string]onnx.DataType{}
	for _, it := range m.Graph.Initializers {
		types[it.Name] = it.Type
	}
	if types["blocks.0.fc.weight.scales"] != onnx.Float || types["proj_out.weight.T.fp16"] != onnx.Float16 {
		t.Errorf("initializer types %v", types)
	}
}

// Attention as torch ≥ 2 exports F.scaled_dot_product_attention without a scale (opset 14+): q and
// kᵀ each multiplied by √(1/√d) computed from Shape(q)[-1], with the heads split by a Reshape whose
// head size is dynamic. The scale is evaluated (d from the projection's width), the pattern fused,
// and the output equals the unfused graph's.
func TestFuseTorchSDPAExport(t *testing.T) {
	const hidden, heads = 64, 2
	r := testmodels.RandomWeights{Seed: 9}
	b := onnx.NewBuilder("sdpa", 17)
	x := b.Input("x", onnx.Float, onnx.Sym("batch_size"), onnx.Sym("sequence_length"), onnx.Fixed(hidden))
	i64 := func(v ...int64) string { return b.Constant(onnx.Int64Tensor("", []int64{int64(len(v))}, v)) }
	scalar := func(v int64) string { return b.Constant(onnx.Int64Tensor("", nil, []int64{v})) }
	shape := b.Op("Shape", []string{x})
	batch := b.Op("Unsqueeze", []string{b.Op("Gather", []string{shape, scalar(0)}, onnx.AttrInt("axis", 0)), i64(0)})
	headDim := b.Op("Unsqueeze", []string{b.Op("Div", []string{b.Op("Gather", []string{shape, scalar(2)}, onnx.AttrInt("axis", 0)), scalar(heads)}), i64(0)})
	split := b.Op("Concat", []string{batch, i64(-1), i64(heads), headDim}, onnx.AttrInt("axis", 0))
	linear := func(name string) string {
		w, _ := r.Float32(name+".weight", []int64{hidden, hidden})
		bias, _ := r.Float32(name+".bias", []int64{hidden})
		y := b.Op("MatMul", []string{x, b.Initializer(onnx.Float32Tensor("onnx::MatMul_"+name, []int64{hidden, hidden}, w))})
		return b.Op("Add", []string{y, b.Initializer(onnx.Float32Tensor(name+".bias", []int64{hidden}, bias))})
	}
	heads4 := func(y string) string {
		return b.Op("Transpose", []string{b.Op("Reshape", []string{y, split})}, onnx.AttrInts("perm", 0, 2, 1, 3))
	}
	q, k, v := heads4(linear("to_q")), heads4(linear("to_k")), heads4(linear("to_v"))
	last := b.Op("Slice", []string{b.Op("Shape", []string{q}), i64(-1), i64(1 << 62)})
	one := b.Constant(onnx.Float32Tensor("", []int64{1}, []float32{1}))
	scale := b.Op("Cast", []string{b.Op("Div", []string{one, b.Op("Sqrt", []string{b.Op("Cast", []string{last}, onnx.AttrInt("to", 1))})})}, onnx.AttrInt("to", 1))
	root := b.Op("Sqrt", []string{scale})
	kt := b.Op("Transpose", []string{k}, onnx.AttrInts("perm", 0, 1, 3, 2))
	s := b.Op("MatMul", []string{b.Op("Mul", []string{q, root}), b.Op("Mul", []string{kt, root})})
	o := b.Op("MatMul", []string{b.Op("Softmax", []string{s}, onnx.AttrInt("axis", -1)), v})
	merged := b.Op("Reshape", []string{b.Op("Transpose", []string{o}, onnx.AttrInts("perm", 0, 2, 1, 3)), i64(0, 0, hidden)})
	b.Output(merged, "y", onnx.Float, onnx.Sym("batch_size"), onnx.Sym("sequence_length"), onnx.Fixed(hidden))
	m := b.Model()
	dir := t.TempDir()
	src := writeModel(t, m, filepath.Join(dir, "unfused"))
	st, err := Rewrite(context.Background(), m, Options{Kind: arch.FP32, FuseAttention: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.Attentions != 1 || st.AttentionsLeft != 0 {
		t.Fatalf("stats %+v: want the attention fused", st)
	}
	for _, n := range m.Graph.Nodes {
		if n.OpType == "MultiHeadAttention" {
			if got := n.Attrs[1].F; math.Abs(float64(got)-1/math.Sqrt(hidden/heads)) > 1e-6 {
				t.Errorf("scale %g, want 1/√%d", got, hidden/heads)
			}
		}
	}
	want, got := runModel(t, src, 5)["y"], runModel(t, writeModel(t, m, filepath.Join(dir, "fused")), 5)["y"]
	if d, scale := maxDiff(want, got); d > 1e-5*max(scale, 1) {
		t.Errorf("fused output differs by %g (max |y| %g)", d, scale)
	}
}
