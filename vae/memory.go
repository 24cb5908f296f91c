package vae

// decodeBytesPerPixelChannel is what a whole decode adds to the process's peak resident memory, per
// output pixel and per FullResChannels channel, measured with BenchmarkDecodePeak.
const decodeBytesPerPixelChannel = 21

// WholeDecodeBytes estimates what decoding b latents into h×w-pixel images in one run adds to the
// process's peak resident memory (0 when the config does not know the VAE's widths).
func (c Config) WholeDecodeBytes(b, h, w int) int64 {
	return int64(b) * int64(h) * int64(w) * int64(c.FullResChannels) * decodeBytesPerPixelChannel
}
