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
// and inner tensor (ImageChannels each). Beside them: the batch's output pixels and streamBytesPerPixel,
// streamOverheadBytes for the stem's and the strips' buffers, fitted with BenchmarkDecodePeak (bench
// SD3 VAE, three rounds: +194–198 MiB at 512², +683–691 MiB at 1024², against 212 and 702 MiB
// estimated). 0 when the config does not know the VAE's widths.
func (c Config) StreamedDecodeBytes(b, h, w int) int64 {
	if c.FullResChannels == 0 || c.ImageChannels == 0 {
		return 0
	}
	px := int64(h) * int64(w)
	return px*(4*int64(max(c.FullResChannels, 2*c.ImageChannels))+int64(b)*3*4+streamBytesPerPixel) + streamOverheadBytes
}

const (
	streamBytesPerPixel = 130
	streamOverheadBytes = 48 << 20
)
