package testmodels

import (
	"fmt"
	"path/filepath"

	"github.com/rflowrt/rflow/internal/safetensors"
)

// WriteProjOutLoRA writes to path a rank-1 diffusers-keyed LoRA for the checkpoint folder ckpt
// (WriteCheckpoint's) that patches only the transformer's proj_out, with fixed non-zero factors: a
// LoRA that changes the image, for tests of LoRA plumbing.
func WriteProjOutLoRA(ckpt, path string) error {
	r, err := safetensors.Open(filepath.Join(ckpt, "transformer", "diffusion_pytorch_model.safetensors"))
	if err != nil {
		return err
	}
	info, ok := r.Info("proj_out.weight")
	r.Close()
	if !ok || len(info.Shape) != 2 {
		return fmt.Errorf("%s: no 2-D transformer proj_out.weight", ckpt)
	}
	out, in := int(info.Shape[0]), int(info.Shape[1])
	down, up := make([]float32, in), make([]float32, out)
	for i := range down {
		down[i] = float32(i%7) / 7
	}
	for i := range up {
		up[i] = float32(i%5) / 5
	}
	return safetensors.WriteFile(path, []safetensors.Tensor{
		safetensors.F32("transformer.proj_out.lora_A.weight", []int{1, in}, down),
		safetensors.F32("transformer.proj_out.lora_B.weight", []int{out, 1}, up),
	}, nil)
}
