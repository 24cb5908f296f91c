package arch

import (
	"github.com/rflowrt/rflow/internal/onnx"
)

// A nearest-×2 upsample followed by a 3×3 conv (padding 1) is, exactly, four 2×2 convs on the small
// input, one per output phase (a, b) = (row, column) of the ×2 grid, interleaved by DepthToSpace:
// output pixel (2i+a, 2j+b) sees input rows i−1, i (a = 0) or i, i+1 (a = 1), each 3×3 tap landing on
// one of them, so a phase's 2×2 kernel is the 3×3 taps summed over the input pixel they repeat. That
// is 16 instead of 36 multiply-adds per output value and input channel, and the ×2 tensor is never
// made; the zero padding of the ×2 tensor is the zero padding of the small one, so the borders agree.

// subPixelSuffix marks a folded kernel's initializer: "<name>.subpixel<a><b>".
const subPixelSuffix = ".subpixel"

// subPixelTaps[a][k] are the 3×3 kernel rows (or columns) that fall on input row k of phase a's 2×2
// window: phase 0 reads rows i−1 (tap 0) and i (taps 1, 2), phase 1 rows i (taps 0, 1) and i+1 (tap 2).
var subPixelTaps = [2][2][]int{{{0}, {1, 2}}, {{0, 1}, {2}}}

// subPixelLayouts are the folded kernels' layouts in DepthToSpace's DCR order: channel block a·2+b.
var subPixelLayouts = [4]layout{subPixel00, subPixel01, subPixel10, subPixel11}

// subPixelPhase is the output phase (row a, column b) of a sub-pixel layout; ok is false for others.
func (l layout) subPixelPhase() (a, b int, ok bool) {
	if l < subPixel00 || l > subPixel11 {
		return 0, 0, false
	}
	i := int(l - subPixel00)
	return i / 2, i % 2, true
}

// subPixelKernel folds the 3×3 kernel w [out, in, 3, 3] into the 2×2 kernel [out, in, 2, 2] of output
// phase (a, b).
func subPixelKernel(w []float32, out, in, a, b int) []float32 {
	k := make([]float32, out*in*4)
	for o := range out * in {
		src := w[o*9:][:9]
		for ky := range 2 {
			for kx := range 2 {
				var s float32
				for _, dy := range subPixelTaps[a][ky] {
					for _, dx := range subPixelTaps[b][kx] {
						s += src[dy*3+dx]
					}
				}
				k[o*4+ky*2+kx] = s
			}
		}
	}
	return k
}

// SubPixelUpsampleConv is Conv2D(Upsample2x(x), prefix, in, out, 3, 1, 1) on NCHW x computed as four
// 2×2 convs on x whose outputs DepthToSpace interleaves. The folded kernels are made from
// prefix.weight as the graph is written (initializers "<prefix>.weight.subpixel<a><b>"); each phase
// adds the bias. The four kernels hold 16/9 of the 3×3 weight's bytes (SD3/FLUX decoder: 189 → 205
// MiB of weights); the activations at the peak are the same bytes as Resize + Conv's.
func (n *Net) SubPixelUpsampleConv(x, prefix string, in, out int) string {
	want := shapeOf(out, in, 3, 3)
	b := n.Param(prefix+".bias", out)
	phases := make([]string, len(subPixelLayouts))
	for i, l := range subPixelLayouts {
		a, c, _ := l.subPixelPhase()
		w := n.param(prefix+".weight", want, l)
		// phase a reads input rows i−1+a and i+a: one row of zero padding above (a = 0) or below (a = 1)
		pads := []int64{int64(1 - a), int64(1 - c), int64(a), int64(c)} // top, left, bottom, right
		phases[i] = n.Op("Conv", []string{x, w, b}, onnx.AttrInts("kernel_shape", 2, 2), onnx.AttrInts("pads", pads...))
	}
	return n.Op("DepthToSpace", []string{n.Concat(1, phases...)}, onnx.AttrInt("blocksize", 2),
		onnx.AttrString("mode", "DCR"))
}
