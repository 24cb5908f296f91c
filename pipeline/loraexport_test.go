package pipeline

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rflowrt/rflow/internal/safetensors"
	"github.com/rflowrt/rflow/internal/testmodels"
)

// TestExportLoRA: a LoRA merged into an ONNX folder that keeps parameter names (rflow's own convert output,
// transposed "<name>.T" initializers) gives the bytes of compiling the checkpoint with the LoRA; the
// export itself is not touched; an export whose names are gone is refused with ErrExportLoRA.
func TestExportLoRA(t *testing.T) {
	ctx := context.Background()
	ckpt := filepath.Join(t.TempDir(), "ckpt")
	if err := testmodels.WriteCheckpoint(ckpt, testmodels.Options{Kind: testmodels.KindFluxDev, GeneratedVocab: true}); err != nil {
		t.Fatal(err)
	}
	r, err := safetensors.Open(filepath.Join(ckpt, "transformer", "diffusion_pytorch_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	q, _ := r.Info("transformer_blocks.0.attn.to_q.weight")
	r.Close()
	w := int(q.Shape[0])
	ramp := func(n int, s float32) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = (float32(i%9) - 4) * s
		}
		return v
	}
	lora := filepath.Join(t.TempDir(), "l.safetensors")
	if err := safetensors.WriteFile(lora, []safetensors.Tensor{
		safetensors.F32("lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight", []int{3 * w, 2}, ramp(6*w, 0.01)),
		safetensors.F32("lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight", []int{2, w}, ramp(2*w, 0.02)),
		safetensors.F32("lora_unet_double_blocks_0_img_attn_qkv.alpha", []int{}, []float32{1}),
	}, nil); err != nil {
		t.Fatal(err)
	}
	loras := []LoRA{{Path: lora, Weight: 0.6}}
	export, want := filepath.Join(t.TempDir(), "export"), filepath.Join(t.TempDir(), "with-lora")
	if err := ConvertCheckpoint(ctx, CheckpointSource{Model: ckpt}, export, CompileOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := ConvertCheckpoint(ctx, CheckpointSource{Model: ckpt, LoRAs: loras}, want, CompileOptions{}); err != nil {
		t.Fatal(err)
	}
	data := func(dir string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, "transformer", "model.onnx_data"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	before := data(export)
	m, err := OpenExportWithLoRAs(export, loras, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data(m.Dir), data(want)) {
		t.Error("the patched export's transformer differs from the checkpoint compiled with the LoRA")
	}
	if !bytes.Equal(data(export), before) || bytes.Equal(before, data(want)) {
		t.Error("the export itself changed, or the LoRA changed nothing")
	}
	if len(m.LoRAs) != 1 || m.LoRAs[0].Modules != 1 || m.Name != "export" {
		t.Errorf("model %s, LoRAs %+v", m.Name, m.LoRAs)
	}
	// An export with other initializer names.
	renamed := filepath.Join(t.TempDir(), "renamed")
	if err := os.CopyFS(renamed, os.DirFS(export)); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(renamed, "transformer", "model.onnx")
	b, _ := os.ReadFile(p)
	os.WriteFile(p, bytes.ReplaceAll(b, []byte("attn.to_q.weight.T"), []byte("attn.to_q.weight.X")), 0o644)
	if _, err := OpenExportWithLoRAs(renamed, loras, t.TempDir()); !errors.Is(err, ErrExportLoRA) {
		t.Errorf("renamed weights: %v", err)
	}
}
