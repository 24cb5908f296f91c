package vae

import (
	"slices"
	"testing"

	"github.com/rflowrt/rflow/internal/onnx"
)

// TestExportWeightsTorchNames: the parameters of a torch export are found under the wrapper's prefix,
// a GroupNorm's affine through the Mul/Add nodes named after its module (behind the Identity nodes by
// which torch shares equal constants), a Linear's weight as its MatMul's transposed constant, and a
// compiled decoder's "….weight.T" transposed back.
func TestExportWeightsTorchNames(t *testing.T) {
	g := onnx.Graph{
		Initializers: []onnx.Tensor{
			onnx.Float32Tensor("m.decoder.conv_in.weight", []int64{2, 1, 1, 1}, []float32{1, 2}),
			onnx.Float32Tensor("onnx::Mul_7", []int64{2, 1, 1}, []float32{3, 4}),
			onnx.Float32Tensor("onnx::Add_8", []int64{2, 1, 1}, []float32{5, 6}),
			onnx.Float32Tensor("onnx::MatMul_9", []int64{2, 3}, []float32{1, 2, 3, 4, 5, 6}),
			onnx.Float32Tensor("m.decoder.x.to_k.weight.T", []int64{3, 2}, []float32{1, 4, 2, 5, 3, 6}),
		},
		Nodes: []onnx.Node{
			{Name: "Identity_1", OpType: "Identity", Inputs: []string{"onnx::Mul_7"}, Outputs: []string{"onnx::Mul_70"}},
			{Name: "/decoder/up_blocks.3/resnets.0/norm1/Mul", OpType: "Mul", Inputs: []string{"h", "onnx::Mul_70"}, Outputs: []string{"a"}},
			{Name: "/decoder/up_blocks.3/resnets.0/norm1/Add", OpType: "Add", Inputs: []string{"a", "onnx::Add_8"}, Outputs: []string{"b"}},
			{Name: "/decoder/mid_block/attentions.0/to_q/MatMul", OpType: "MatMul", Inputs: []string{"b", "onnx::MatMul_9"}, Outputs: []string{"c"}},
		},
	}
	w, ok := newExportWeights(&onnx.Model{Graph: g})
	if !ok || w.prefix != "m." {
		t.Fatalf("prefix %q, found %v", w.prefix, ok)
	}
	for _, c := range []struct {
		name  string
		shape []int64 // what Shape reports (nil: any shape of that count)
		want  []float32
	}{
		{"decoder.conv_in.weight", []int64{2, 1, 1, 1}, []float32{1, 2}},
		{"decoder.up_blocks.3.resnets.0.norm1.weight", nil, []float32{3, 4}},
		{"decoder.up_blocks.3.resnets.0.norm1.bias", nil, []float32{5, 6}},
		{"decoder.mid_block.attentions.0.to_q.weight", []int64{3, 2}, []float32{1, 4, 2, 5, 3, 6}},
		{"decoder.x.to_k.weight", []int64{2, 3}, []float32{1, 2, 3, 4, 5, 6}},
	} {
		shape, ok := w.Shape(c.name)
		if !ok || !slices.Equal(shape, c.shape) {
			t.Errorf("%s: shape %v (found %v), want %v", c.name, shape, ok, c.shape)
			continue
		}
		got, err := w.Float32(c.name, []int64{int64(len(c.want))})
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, %v; want %v", c.name, got, err, c.want)
		}
	}
	for _, name := range []string{"decoder.up_blocks.3.resnets.0.norm2.weight", "decoder.conv_out.weight"} {
		if _, ok := w.Shape(name); ok {
			t.Errorf("%s found in an export without it", name)
		}
	}
	if _, ok := newExportWeights(&onnx.Model{Graph: onnx.Graph{Initializers: g.Initializers[1:]}}); ok {
		t.Error("an export without decoder.conv_in.weight is taken as named")
	}
}

func TestTorchScope(t *testing.T) {
	for in, want := range map[string]string{
		"decoder.up_blocks.3.resnets.0.norm1":     "/decoder/up_blocks.3/resnets.0/norm1",
		"decoder.conv_norm_out":                   "/decoder/conv_norm_out",
		"decoder.mid_block.attentions.0.to_out.0": "/decoder/mid_block/attentions.0/to_out.0",
	} {
		if got := torchScope(in); got != want {
			t.Errorf("torchScope(%q) = %q, want %q", in, got, want)
		}
	}
}
