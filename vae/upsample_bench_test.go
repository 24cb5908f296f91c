package vae

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rflowrt/rflow/internal/benchutil"
	"github.com/rflowrt/rflow/internal/compiler/arch"
	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/ort"
)

// The decoder's Upsample2D is nearest ×2 then a 3×3 convolution; arch builds it as four 2×2
// convolutions on the small input interleaved by DepthToSpace (arch.Net.SubPixelUpsampleConv).
// upsampleGraph builds either form with arch's own builders.
func upsampleGraph(c, h, w int, wt, bias []float32, subPixel bool) (*onnx.Model, error) {
	n := arch.NewNet("upsample", arch.Tensors{
		"conv.weight": {Shape: []int64{int64(c), int64(c), 3, 3}, Data: wt},
		"conv.bias":   {Shape: []int64{int64(c)}, Data: bias}})
	x := n.FloatInput("x", onnx.Float, onnx.Fixed(1), onnx.Fixed(int64(c)), onnx.Fixed(int64(h)), onnx.Fixed(int64(w)))
	var y string
	if subPixel {
		y = n.SubPixelUpsampleConv(x, "conv", c, c)
	} else {
		y = n.Conv2D(n.Upsample2x(x), "conv", c, c, 3, 1, 1)
	}
	n.FloatOutput(y, "y", onnx.Float, onnx.Fixed(1), onnx.Fixed(int64(c)), onnx.Fixed(int64(2*h)), onnx.Fixed(int64(2*w)))
	return n.Model()
}

// BenchmarkUpsampleConv compares the two forms at the bench decoder's upsampler sizes (one thread):
// CPU ms per run and the largest difference between their outputs.
func BenchmarkUpsampleConv(b *testing.B) {
	for _, s := range []struct{ c, h int }{{256, 64}, {256, 128}, {128, 256}} {
		r := rand.New(rand.NewPCG(3, 4))
		wt := make([]float32, s.c*s.c*9)
		for i := range wt {
			wt[i] = float32(r.NormFloat64() / math.Sqrt(float64(9*s.c)))
		}
		bias := make([]float32, s.c)
		x := make([]float32, s.c*s.h*s.h)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		outs := map[bool][]float32{}
		for _, sub := range []bool{false, true} {
			name := fmt.Sprintf("c%d-%dto%d/%s", s.c, s.h, 2*s.h, map[bool]string{false: "resize-conv3x3", true: "subpixel-conv2x2"}[sub])
			b.Run(name, func(b *testing.B) {
				m, err := upsampleGraph(s.c, s.h, s.h, wt, bias, sub)
				if err != nil {
					b.Fatal(err)
				}
				data, err := m.Marshal()
				if err != nil {
					b.Fatal(err)
				}
				sess, err := ort.NewSessionFromBytes(context.Background(), name, data, "", ort.SessionOptions{IntraOpThreads: 1})
				if err != nil {
					b.Fatal(err)
				}
				defer sess.Close()
				in, _ := sess.NewInput("x", 1, int64(s.c), int64(s.h), int64(s.h))
				out, _ := sess.NewOutput("y", 1, int64(s.c), int64(2*s.h), int64(2*s.h))
				defer in.Destroy()
				defer out.Destroy()
				if err := in.SetFloat32(x); err != nil {
					b.Fatal(err)
				}
				start := benchutil.CPUTime()
				for b.Loop() {
					if err := sess.Run(context.Background(), []*ort.Tensor{in}, []*ort.Tensor{out}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64((benchutil.CPUTime()-start).Microseconds())/1000/float64(b.N), "cpu-ms/run")
				y := make([]float32, s.c*4*s.h*s.h)
				if err := out.ReadFloat32(y); err != nil {
					b.Fatal(err)
				}
				outs[sub] = y
			})
		}
		if a, c := outs[false], outs[true]; a != nil && c != nil {
			var d, m float64
			for i := range a {
				d = math.Max(d, math.Abs(float64(a[i]-c[i])))
				m = math.Max(m, math.Abs(float64(a[i])))
			}
			b.Logf("c%d %d²: max |Δ| %.3g of max |y| %.3g", s.c, s.h, d, m)
		}
	}
}
