package demo

// Resize is ONNX Resize (mode linear, coordinate_transformation_mode half_pixel, no antialias) of c
// planes of ih×iw float32 values to oh×ow, computed the way ONNX Runtime's CPU kernel does: the
// source coordinate (o+0.5)·(in/out)−0.5 clamped to [0, in−1], then bilinear weights.
func Resize(src []float32, c, ih, iw, oh, ow int) []float32 {
	ys, yw := resizeAxis(ih, oh)
	xs, xw := resizeAxis(iw, ow)
	dst := make([]float32, c*oh*ow)
	for p := range c {
		in := src[p*ih*iw : (p+1)*ih*iw]
		out := dst[p*oh*ow : (p+1)*oh*ow]
		for y := range oh {
			y0, y1, dy := ys[y][0], ys[y][1], yw[y]
			for x := range ow {
				x0, x1, dx := xs[x][0], xs[x][1], xw[x]
				a := in[y0*iw+x0]*(1-dx) + in[y0*iw+x1]*dx
				b := in[y1*iw+x0]*(1-dx) + in[y1*iw+x1]*dx
				out[y*ow+x] = a*(1-dy) + b*dy
			}
		}
	}
	return dst
}

// resizeAxis returns, per output index, the two source indices and the weight of the second.
func resizeAxis(in, out int) ([][2]int, []float32) {
	idx := make([][2]int, out)
	wt := make([]float32, out)
	scale := float32(out) / float32(in)
	for o := range out {
		x := (float32(o)+0.5)/scale - 0.5
		x = max(0, min(x, float32(in-1)))
		i0 := int(x)
		i1 := min(i0+1, in-1)
		idx[o] = [2]int{i0, i1}
		wt[o] = x - float32(i0)
	}
	return idx, wt
}
