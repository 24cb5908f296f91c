package demo

import "math"

// Latent is component c's mean latent μ_k at latent size h×w, NCHW without the batch dimension
// ([16, h, w]): channel 0 the shape field, 1–3 the foreground colour, 4–6 the background colour,
// 7–15 zero.
func Latent(c Component, h, w int) []float32 {
	n := h * w
	x := make([]float32, LatentChannels*n)
	copy(x, FieldAt(c.Shape, h, w))
	fg, bg := ColorValue(c.FG), ColorValue(c.BG)
	for ch := range 3 {
		for i := range n {
			x[(1+ch)*n+i] = fg[ch]
			x[(4+ch)*n+i] = bg[ch]
		}
	}
	return x
}

// DecoderSharpness is the decoder's k for latent size h×w: k0·min(h, w)/32, so edges stay about one
// output pixel wide at every size (the fields are resized to min(h, w) and widen in proportion).
func DecoderSharpness(h, w int) float32 {
	return float32(min(h, w)) * float32(Sharpness/BaseLatent)
}

// Decode is the VAE decoder in Go: latent [16, h, w] → RGB [3, 8h, 8w] in [−1, 1]: channels 0–6
// resized ×8, alpha = sigmoid(k·field), rgb = bg + alpha·(fg − bg). It follows the decoder graph's
// operation order; the ORT result differs by float32 rounding and ORT's sigmoid (≈1e-6).
func Decode(latent []float32, h, w int) []float32 {
	H, W := Scale*h, Scale*w
	up := Resize(latent[:7*h*w], 7, h, w, H, W)
	k := DecoderSharpness(h, w)
	n := H * W
	out := make([]float32, 3*n)
	for i := range n {
		a := float32(1 / (1 + math.Exp(-float64(k*up[i]))))
		for ch := range 3 {
			fg, bg := up[(1+ch)*n+i], up[(4+ch)*n+i]
			out[ch*n+i] = bg + a*(fg-bg)
		}
	}
	return out
}

// Alpha is shape s's decoded coverage at latent size h×w ([8h·8w]): the weight of the foreground.
func Alpha(s, h, w int) []float32 {
	up := Resize(FieldAt(s, h, w), 1, h, w, Scale*h, Scale*w)
	k := DecoderSharpness(h, w)
	for i, f := range up {
		up[i] = float32(1 / (1 + math.Exp(-float64(k*f))))
	}
	return up
}
