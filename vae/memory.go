package vae

// decodeBytesPerPixelChannel is what a whole decode adds to the process's peak resident memory, per
// output pixel and per FullResChannels channel, measured with BenchmarkDecodePeak.
const decodeBytesPerPixelChannel = 21

// WholeDecodeBytes estimates what decoding b latents into h×w-pixel images in one run adds to the
// process's peak resident memory (0 when the config does not know the VAE's widths).
func (c Config) WholeDecodeBytes(b, h, w int) int64 {
	return int64(b) * int64(h) * int64(w) * int64(c.FullResChannels) * decodeBytesPerPixelChannel
}

// StreamedDecodeBytes estimates what a streamed decode (LoadDecoder on the CPU) of b latents into
// h×w-pixel images adds to the process's peak resident memory. The images are decoded one after
// another, each holding at most two float32 tensors at full resolution: the last upsampler's output
// (FullResChannels), which the first ResNet of the last block replaces block by block with its shortcut
// and inner tensor (ImageChannels each). Beside them: the batch's output pixels, and for the stem's and
// the strips' buffers (in the arena they share) 1.1 bytes per pixel per FullResChannels channel plus
// streamOverheadBytes, fitted with BenchmarkDecodePeak: the bench SD3 VAE took +194–198 MiB at 512² and
// +683–691 MiB at 1024² (estimated 214 and 712), the real SD3/FLUX widths (RFLOW_VAE_REAL=1) +306 and
// +1341 MiB (estimated 377 and 1364). 0 when the config does not know the VAE's widths.
func (c Config) StreamedDecodeBytes(b, h, w int) int64 {
	if c.FullResChannels == 0 || c.ImageChannels == 0 {
		return 0
	}
	px, full := int64(h)*int64(w), int64(c.FullResChannels)
	tensors := 4 * max(full, 2*int64(c.ImageChannels))
	return px*(tensors+int64(b)*3*4+full*11/10) + streamOverheadBytes
}

// streamOverheadBytes is what a streamed decode adds whatever the image size.
const streamOverheadBytes = 48 << 20
