package exportquant

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

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
