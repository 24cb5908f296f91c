package build

import (
	"github.com/rflowrt/rflow/assets/internal/demo"
	"github.com/rflowrt/rflow/internal/onnx"
)

// VAEDecoder builds vae_decoder: latent_sample [B,16,h,w] → sample [B,3,8h,8w]: channels 0–6 resized
// ×8 (bilinear, half_pixel), alpha = sigmoid(k·field) with k = k0·min(h, w)/32, sample = bg + alpha·(fg − bg).
func VAEDecoder() ([]byte, error) {
	g := newGraph("demo_vae_decoder")
	B := onnx.Sym("batch_size")
	z := g.Input("latent_sample", onnx.Float, B, onnx.Fixed(demo.LatentChannels), onnx.Sym("latent_height"), onnx.Sym("latent_width"))
	up := g.resize(g.slice(z, 1, 0, 7), g.f32([]int64{4}, 1, 1, demo.Scale, demo.Scale), "")
	side := g.opA("ReduceMin", []string{g.shapeDims(z, 2, 4)}, onnx.AttrInt("keepdims", 0))
	k := g.op("Mul", g.opA("Cast", []string{side}, onnx.AttrInt("to", int64(onnx.Float))), g.scalar(float32(demo.Sharpness/demo.BaseLatent)))
	alpha := g.op("Sigmoid", g.op("Mul", g.slice(up, 1, 0, 1), k))
	fg, bg := g.slice(up, 1, 1, 4), g.slice(up, 1, 4, 7)
	out := g.op("Add", bg, g.op("Mul", alpha, g.op("Sub", fg, bg)))
	g.Output(out, "sample", onnx.Float, B, onnx.Fixed(3), onnx.Sym("height"), onnx.Sym("width"))
	return g.model()
}

// Encoder constants.
const (
	encoderLogVar = -10 // log-variance of every latent: the encoder is (almost) deterministic
	encoderEps    = 1e-6
	encoderPure   = 0.98 // coverage above which a pixel counts as pure foreground
)

// coverageOf is clip((p − bg)·(fg − bg)/‖fg − bg‖², 0, 1) per pixel ([B,1,H,W]); diff = p − bg.
func coverageOf(g graph, diff, fg, bg string) string {
	span := g.op("Sub", fg, bg)
	proj := g.op("Div", g.reduceSum(g.op("Mul", diff, span), true, 1), g.op("Add", g.reduceSum(g.square(span), true, 1), g.scalar(encoderEps)))
	return g.op("Clip", proj, g.scalar(0), g.scalar(1))
}

// VAEEncoder builds vae_encoder: sample [B,3,H,W] → latent_parameters [B,32,H/8,W/8] (mean ‖ logvar).
// It inverts the decoder for two-colour pictures: the background colour is the mean of the four corner
// 8×8 cells, the foreground colour the mean of all pixels weighted by ‖p − bg‖⁴, the coverage
// alpha = clip((p − bg)·(fg − bg)/‖fg − bg‖², 0, 1) per pixel; averaged over 8×8 cells and then over
// 3×3 cells it ramps linearly across an edge (b = ½ + d/3, d in latent pixels), so the field is
// tanh(d/w) = tanh(1.5·(b − ½)). Colour channels hold fg and bg everywhere, channels 7–15 zero.
func VAEEncoder() ([]byte, error) {
	g := newGraph("demo_vae_encoder")
	B := onnx.Sym("batch_size")
	img := g.Input("sample", onnx.Float, B, onnx.Fixed(3), onnx.Sym("height"), onnx.Sym("width"))
	pool := func(x string, k, stride, pad int64) string {
		return g.opA("AveragePool", []string{x}, onnx.AttrInts("kernel_shape", k, k), onnx.AttrInts("strides", stride, stride),
			onnx.AttrInts("pads", pad, pad, pad, pad), onnx.AttrInt("count_include_pad", 0))
	}
	cells := pool(img, demo.Scale, demo.Scale, 0) // [B,3,h,w]
	corner := func(r, c int64) string {           // r, c ∈ {0, −1}: first or last cell
		return g.slice(g.slice(cells, 2, r, cellEnd(r)), 3, c, cellEnd(c))
	}
	bg := g.op("Mul", g.op("Sum", corner(0, 0), corner(0, -1), corner(-1, 0), corner(-1, -1)), g.scalar(0.25)) // [B,3,1,1]
	diff := g.op("Sub", img, bg)
	d2 := g.reduceSum(g.square(diff), true, 1) // [B,1,H,W]
	wgt := g.square(d2)
	fg := g.op("Div", g.reduceSum(g.op("Mul", img, wgt), true, 2, 3),
		g.op("Add", g.reduceSum(wgt, true, 2, 3), g.scalar(encoderEps))) // [B,3,1,1]
	// Refine fg over the pixels the first estimate calls pure foreground (anti-aliased edge pixels
	// pull the weighted mean towards bg); with none, keep the first estimate.
	pure := g.opA("Cast", []string{g.op("Greater", coverageOf(g, diff, fg, bg), g.scalar(encoderPure))}, onnx.AttrInt("to", int64(onnx.Float)))
	eps := g.scalar(encoderEps)
	fg = g.op("Div", g.op("Add", g.reduceSum(g.op("Mul", img, pure), true, 2, 3), g.op("Mul", fg, eps)),
		g.op("Add", g.reduceSum(pure, true, 2, 3), eps))
	alpha := coverageOf(g, diff, fg, bg)
	b := pool(pool(alpha, demo.Scale, demo.Scale, 0), 3, 1, 1) // [B,1,h,w]
	field := g.op("Tanh", g.op("Mul", g.op("Sub", b, g.scalar(0.5)), g.scalar(float32(3/demo.FieldWidth))))
	like := g.op("Shape", b)
	zero := g.zeros(like)
	fgMap := g.op("Add", zero, fg)
	bgMap := g.op("Add", zero, bg)
	rest := g.zeros(g.concat(0, g.shapeDims(b, 0, 1), g.ints(demo.LatentChannels-7), g.shapeDims(b, 2, 4)))
	mean := g.concat(1, field, fgMap, bgMap, rest)
	logvar := g.opA("ConstantOfShape", []string{g.op("Shape", mean)},
		onnx.AttrTensor("value", onnx.Float32Tensor("", []int64{1}, []float32{encoderLogVar})))
	g.Output(g.concat(1, mean, logvar), "latent_parameters", onnx.Float, B, onnx.Fixed(2*demo.LatentChannels),
		onnx.Sym("latent_height"), onnx.Sym("latent_width"))
	return g.model()
}

// cellEnd is the Slice end that selects the one cell at start (0 or −1).
func cellEnd(start int64) int64 {
	if start < 0 {
		return 1 << 62
	}
	return start + 1
}
