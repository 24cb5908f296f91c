package vae

import (
	"fmt"
	"image"
)

// PreviewFactors is a linear latent→RGB map: rgb[k] = Σ_c x[c]·RGB[c][k] + Bias[k], in the decoder's
// [−1, 1] range. Rows are latent channels, columns R, G, B.
type PreviewFactors struct {
	RGB  [16][3]float32
	Bias [3]float32
}

// SD3PreviewFactors are ComfyUI's latent_rgb_factors and latent_rgb_factors_bias of the SD3 latent
// format (comfy/latent_formats.py at 040a3243, shared/spec/peers-and-conventions.md §4.3). ComfyUI
// has re-fitted these before; compare on upgrade.
func SD3PreviewFactors() PreviewFactors {
	return PreviewFactors{
		RGB: [16][3]float32{
			{-0.0922, -0.0175, 0.0749},
			{0.0311, 0.0633, 0.0954},
			{0.1994, 0.0927, 0.0458},
			{0.0856, 0.0339, 0.0902},
			{0.0587, 0.0272, -0.0496},
			{-0.0006, 0.1104, 0.0309},
			{0.0978, 0.0306, 0.0427},
			{-0.0042, 0.1038, 0.1358},
			{-0.0194, 0.0020, 0.0669},
			{-0.0488, 0.0130, -0.0268},
			{0.0922, 0.0988, 0.0951},
			{-0.0278, 0.0524, -0.0542},
			{0.0332, 0.0456, 0.0895},
			{-0.0069, -0.0030, -0.0810},
			{-0.0596, -0.0465, -0.0293},
			{-0.1448, -0.1463, -0.1189},
		},
		Bias: [3]float32{0.2394, 0.2135, 0.1925},
	}
}

// FluxPreviewFactors are ComfyUI's latent_rgb_factors and latent_rgb_factors_bias of the Flux latent
// format (comfy/latent_formats.py at 040a3243, shared/spec/peers-and-conventions.md §4.3).
func FluxPreviewFactors() PreviewFactors {
	return PreviewFactors{
		RGB: [16][3]float32{
			{-0.0346, 0.0244, 0.0681},
			{0.0034, 0.0210, 0.0687},
			{0.0275, -0.0668, -0.0433},
			{-0.0174, 0.0160, 0.0617},
			{0.0859, 0.0721, 0.0329},
			{0.0004, 0.0383, 0.0115},
			{0.0405, 0.0861, 0.0915},
			{-0.0236, -0.0185, -0.0259},
			{-0.0245, 0.0250, 0.1180},
			{0.1008, 0.0755, -0.0421},
			{-0.0515, 0.0201, 0.0011},
			{0.0428, -0.0012, -0.0036},
			{0.0817, 0.0765, 0.0749},
			{-0.1264, -0.0522, -0.1103},
			{-0.0280, -0.0881, -0.0499},
			{-0.1262, -0.0982, -0.0778},
		},
		Bias: [3]float32{-0.0329, -0.0718, -0.0851},
	}
}

// Preview draws batch item 0 of x0 ([B, c, h, w], model space: the sampler's denoised prediction,
// unpacked for FLUX) at latent resolution, w×h, as ComfyUI's Latent2RGBPreviewer and
// preview_to_image do: rgb = x0·F + bias, then per value in float32
//
//	v = (rgb + 1)/2, clamp(v, 0, 1), v·255, truncated to a byte (torch's .to(uint8))
//
// ComfyUI truncates, it does not round: rgb = 0 gives 127. The dot product is summed in float64 and
// rounded once to float32 (torch's BLAS sums in float32 in its own order; bytes can differ by one
// where a value lands near an integer). c must be 16 (the factors' rows); x0 may hold more than one
// item. NaN or ±Inf in item 0 is a *NonFiniteError with Stage "preview".
func Preview(x0 []float32, c, h, w int, f PreviewFactors) (*image.NRGBA, error) {
	if c != len(f.RGB) {
		return nil, fmt.Errorf("vae preview: %d latent channels, the factors map %d", c, len(f.RGB))
	}
	n, err := volume(c, h, w)
	if err != nil {
		return nil, fmt.Errorf("vae preview: %w", err)
	}
	if len(x0) < n {
		return nil, fmt.Errorf("vae preview: %d values, want at least %d for [%d,%d,%d]", len(x0), n, c, h, w)
	}
	x := x0[:n]
	if err := CheckFinite("preview", x); err != nil {
		return nil, err
	}
	hw := h * w
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for k := range hw {
		var acc [3]float64
		for ch := range c {
			v := float64(x[ch*hw+k])
			for j := range 3 {
				acc[j] += v * float64(f.RGB[ch][j])
			}
		}
		p := img.Pix[4*k : 4*k+4 : 4*k+4]
		for j := range 3 {
			p[j] = previewByte(float32(acc[j]) + f.Bias[j])
		}
		p[3] = 255
	}
	return img, nil
}

// previewByte is ComfyUI's preview_to_image for one finite value.
func previewByte(v float32) uint8 {
	v = float32(v+1) / 2
	v = min(max(v, 0), 1)
	return uint8(float32(v * 255))
}
