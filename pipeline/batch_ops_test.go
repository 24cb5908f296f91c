package pipeline

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/internal/ort/orttest"
)

// matMulRowDiffers runs x [B,K] · W [K,N] for B = 1 and B = rows (row 0 the same) and counts how many of
// row 0's outputs differ in their bits. W is a constant initializer (which ORT pre-packs) or, with
// dynamicW, a graph input (as a weight computed inside a graph is).
func matMulRowDiffers(t *testing.T, k, n, rows int, dynamicW bool) int {
	return matMulRowDiffersFrom(t, k, n, 1, rows, dynamicW)
}

// matMulRowDiffersFrom compares row 0 of B = from and B = rows.
func matMulRowDiffersFrom(t *testing.T, k, n, from, rows int, dynamicW bool) int {
	t.Helper()
	rnd := rand.New(rand.NewPCG(1, 2))
	w := make([]float32, k*n)
	for i := range w {
		w[i] = rnd.Float32()
	}
	b := onnx.NewBuilder("matmul", 17)
	x := b.Input("x", onnx.Float, onnx.Sym("B"), onnx.Fixed(int64(k)))
	var wName string
	if dynamicW {
		wName = b.Input("w", onnx.Float, onnx.Fixed(int64(k)), onnx.Fixed(int64(n)))
	} else {
		wName = b.Initializer(onnx.Float32Tensor("", []int64{int64(k), int64(n)}, w))
	}
	b.Output(b.Op("MatMul", []string{x, wName}), "y", onnx.Float, onnx.Sym("B"), onnx.Fixed(int64(n)))
	data, err := b.Model().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	sess, err := ort.NewSessionFromBytes(context.Background(), "matmul", data, "", orttest.Options())
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	xs := make([]float32, rows*k)
	for i := range xs {
		xs[i] = rnd.Float32()
	}
	run := func(r int) []float32 {
		in, _ := sess.NewInput("x", int64(r), int64(k))
		out, _ := sess.NewOutput("y", int64(r), int64(n))
		defer in.Destroy()
		defer out.Destroy()
		ins := []*ort.Tensor{in}
		if dynamicW {
			wt, _ := sess.NewInput("w", int64(k), int64(n))
			defer wt.Destroy()
			if err := wt.SetFloat32(w); err != nil {
				t.Fatal(err)
			}
			ins = append(ins, wt)
		}
		if err := in.SetFloat32(xs[:r*k]); err != nil {
			t.Fatal(err)
		}
		if err := sess.Run(context.Background(), ins, []*ort.Tensor{out}); err != nil {
			t.Fatal(err)
		}
		return append([]float32(nil), out.Float32s()...)
	}
	one, many := run(from), run(rows)
	diff := 0
	for j := range n {
		if one[j] != many[j] {
			diff++
		}
	}
	return diff
}

// TestORTRowInvariance pins what batching relies on: ORT's CPU MatMul with a constant (pre-packed)
// right operand gives row 0 the same bits whatever the number of rows — every Linear layer of a real
// SD3/FLUX export. With a computed right operand one row takes another kernel path than two or more
// rows (logged, not required), which is why the demo graph computes such products without MatMul.
func TestORTRowInvariance(t *testing.T) {
	for _, c := range [][3]int{{336, 6, 3}, {6, 64, 3}, {64, 64, 4}, {64, 96, 16}} {
		if d := matMulRowDiffers(t, c[0], c[1], c[2], false); d != 0 {
			t.Errorf("constant W K=%d N=%d: %d of row 0's values differ between 1 and %d rows", c[0], c[1], d, c[2])
		}
		if d := matMulRowDiffersFrom(t, c[0], c[1], 2, c[2], true); d != 0 {
			t.Errorf("computed W K=%d N=%d: %d of row 0's values differ between 2 and %d rows", c[0], c[1], d, c[2])
		}
		t.Logf("computed W K=%d N=%d: %d of row 0's values differ between 1 and %d rows", c[0], c[1],
			matMulRowDiffers(t, c[0], c[1], c[2], true), c[2])
	}
}
