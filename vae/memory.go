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
// h×w-pixel images adds to the process's peak resident memory: the images are decoded one after
// another, each holding at most the last upsampler's output and the first ResNet of the last block's
// inner tensor at full resolution (float32), plus the output pixels of the batch and ORT's strip
// buffers; 0 when the config does not know the VAE's widths.
func (c Config) StreamedDecodeBytes(b, h, w int) int64 {
	if c.FullResChannels == 0 || c.ImageChannels == 0 {
		return 0
	}
	px := int64(h) * int64(w)
	return px*int64(c.FullResChannels+c.ImageChannels)*4 + int64(b)*px*3*4 + streamOverheadBytes
}

// streamOverheadBytes is what a streamed decode adds beside its full-resolution tensors (strips,
// ORT's working buffers), measured with BenchmarkDecodePeak.
const streamOverheadBytes = 64 << 20
