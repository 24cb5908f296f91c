package vae

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rflowrt/rflow/internal/benchutil"
	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/ort"
)

// The decoder's Upsample2D is nearest ×2 then a 3×3 convolution. The same output comes from four 2×2
// convolutions on the small input (one per output phase, weights summed over the input pixels the
// phase repeats) interleaved by DepthToSpace: 16 instead of 36 multiply-adds per output value per
// input channel, and the ×2 tensor is never made. upsampleGraph builds either form.
func upsampleGraph(c, h, w int, wt, bias []float32, subPixel bool) *onnx.Model {
	b := onnx.NewBuilder("upsample", 17)
	x := b.Input("x", onnx.Float, onnx.Fixed(1), onnx.Fixed(int64(c)), onnx.Fixed(int64(h)), onnx.Fixed(int64(w)))
	B := b.Initializer(onnx.Float32Tensor("b", []int64{int64(c)}, bias))
	var y string
	if !subPixel {
		up := b.Op("Resize", []string{x, "", b.Initializer(onnx.Float32Tensor("scales", []int64{4}, []float32{1, 1, 2, 2}))},
			onnx.AttrString("mode", "nearest"), onnx.AttrString("coordinate_transformation_mode", "asymmetric"),
			onnx.AttrString("nearest_mode", "floor"))
		W := b.Initializer(onnx.Float32Tensor("w", []int64{int64(c), int64(c), 3, 3}, wt))
		y = b.Op("Conv", []string{up, W, B}, onnx.AttrInts("kernel_shape", 3, 3), onnx.AttrInts("pads", 1, 1, 1, 1))
	} else {
		phases := make([]string, 0, 4)
		for a := range 2 {
			for bb := range 2 {
				k := subPixelKernel(wt, c, c, a, bb)
				W := b.Initializer(onnx.Float32Tensor("", []int64{int64(c), int64(c), 2, 2}, k))
				pads := []int64{int64(1 - a), int64(1 - bb), int64(a), int64(bb)} // top, left, bottom, right
				phases = append(phases, b.Op("Conv", []string{x, W, B}, onnx.AttrInts("kernel_shape", 2, 2), onnx.AttrInts("pads", pads...)))
			}
		}
		y = b.Op("DepthToSpace", []string{b.Op("Concat", phases, onnx.AttrInt("axis", 1))}, onnx.AttrInt("blocksize", 2))
	}
	b.Output(y, "y", onnx.Float, onnx.Fixed(1), onnx.Fixed(int64(c)), onnx.Fixed(int64(2*h)), onnx.Fixed(int64(2*w)))
	return b.Model()
}

// subPixelKernel folds a 3×3 kernel [out, in, 3, 3] into the 2×2 kernel of output phase (a, b): phase
// 0 reads input rows i−1 (tap 0) and i (taps 1 and 2), phase 1 rows i (taps 0 and 1) and i+1 (tap 2).
func subPixelKernel(w []float32, out, in, a, b int) []float32 {
	taps := [2][2][]int{{{0}, {1, 2}}, {{0, 1}, {2}}}
	k := make([]float32, out*in*4)
	for o := range out * in {
		src := w[o*9:][:9]
		for ky := range 2 {
			for kx := range 2 {
				var s float32
				for _, dy := range taps[a][ky] {
					for _, dx := range taps[b][kx] {
						s += src[dy*3+dx]
					}
				}
				k[o*4+ky*2+kx] = s
			}
		}
	}
	return k
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
				data, err := upsampleGraph(s.c, s.h, s.h, wt, bias, sub).Marshal()
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
