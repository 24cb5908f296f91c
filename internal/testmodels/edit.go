package testmodels

// Edit is an editing variant of a FLUX folder (Options.Edit).
type Edit string

const (
	// EditFill is FLUX.1-Fill: the transformer takes the packed latents, the packed masked-image latents
	// and the packed 8×8 pixel mask (in_channels 8c + 4·8² = 384, out_channels 4c = 64); the folder's
	// model_index.json names FluxFillPipeline.
	EditFill Edit = "fill"
	// EditKontext is FLUX.1-Kontext: FLUX.1-dev's transformer (reference tokens are more rows of the same
	// inputs) under model_index.json's FluxKontextPipeline.
	EditKontext Edit = "kontext"
)

// pipelineClass is the model_index.json _class_name of the variant ("" keeps the kind's).
func (e Edit) pipelineClass() string {
	switch e {
	case EditFill:
		return "FluxFillPipeline"
	case EditKontext:
		return "FluxKontextPipeline"
	}
	return ""
}

// fillInChannels is FLUX Fill's transformer input width for a VAE: latents and masked-image latents
// packed (4c each) and the pixel mask's s×s cells packed (4s², s the VAE's spatial factor).
func fillInChannels(v VAEConfig) int {
	s := 1 << (len(v.BlockOut) - 1)
	return 8*v.LatentChannels + 4*s*s
}
