package compiler

import "github.com/rflowrt/rflow/internal/compiler/checkpoint"

// WriteReleasedFolderFiles writes into root what a diffusers folder holds besides its models, as the
// released model of that variant has it: model_index.json, scheduler/scheduler_config.json and the
// tokenizer folders (embedded in rflow). variant is "flux-dev", "flux-schnell", VariantFluxKontext or an SD3 variant;
// withT5 says an SD3 model has its T5 encoder. Folders that come without these files (the TensorRT
// demos' *.opt/ sets) are read through them.
func WriteReleasedFolderFiles(root, variant string, withT5 bool) error {
	c := &Checkpoint{Family: checkpoint.FamilySD3, Variant: variant}
	switch variant {
	case "flux-dev", "flux-schnell", VariantFluxKontext:
		c.Family = checkpoint.FamilyFLUX
	default:
		if withT5 {
			c.Parts = map[checkpoint.Role]*Part{checkpoint.RoleT5: {}}
		}
	}
	return c.writeFolderFiles(root)
}
