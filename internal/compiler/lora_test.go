package compiler_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rflowrt/rflow/internal/compiler"
	"github.com/rflowrt/rflow/internal/safetensors"
	"github.com/rflowrt/rflow/internal/testmodels"
)

// writeLoRA writes a kohya LoRA for the checkpoint's FLUX transformer (the first double block's fused img
// qkv) and CLIP-L (the first layer's q_proj), rank 2.
func writeLoRA(t testing.TB, ckpt, path string) {
	t.Helper()
	c := open(t, compiler.Source{Model: ckpt})
	width := c.Parts["transformer"].Config["num_attention_heads"].(float64) * c.Parts["transformer"].Config["attention_head_dim"].(float64)
	clip := c.Parts["clip_l"].Config["hidden_size"].(float64)
	ramp := func(n int, s float32) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = (float32(i%9) - 4) * s
		}
		return v
	}
	w, h := int(width), int(clip)
	err := safetensors.WriteFile(path, []safetensors.Tensor{
		safetensors.F32("lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight", []int{3 * w, 2}, ramp(6*w, 0.01)),
		safetensors.F32("lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight", []int{2, w}, ramp(2*w, 0.02)),
		safetensors.F32("lora_unet_double_blocks_0_img_attn_qkv.alpha", []int{}, []float32{1}),
		safetensors.F32("lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight", []int{h, 2}, ramp(2*h, 0.01)),
		safetensors.F32("lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight", []int{2, h}, ramp(2*h, 0.03)),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLoRACache: a LoRA changes the key and the patched components' weights (a weight of 0 gives the
// base's bytes); switching its weight builds only the patched components (transformer, CLIP-L) and links
// the others (T5, VAE) from the folder compiled before.
func TestLoRACache(t *testing.T) {
	ckpt := writeCheckpoint(t, testmodels.Options{Kind: testmodels.KindFluxDev, GeneratedVocab: true})
	lora := filepath.Join(t.TempDir(), "style.safetensors")
	writeLoRA(t, ckpt, lora)
	root := t.TempDir()
	compiled := map[float64]string{}
	var built []string
	o := compiler.Options{OnComponent: func(c string) { built = append(built, c) }}
	base, _ := cached(t, open(t, compiler.Source{Model: ckpt}), root, o)
	for _, w := range []float64{0, 0.5, 0.7} {
		built = nil
		c := open(t, compiler.Source{Model: ckpt, LoRAs: []compiler.LoRA{{Path: lora, Weight: w}}})
		if len(c.LoRAs) != 1 || c.LoRAs[0].Modules != 2 || strings.Join(c.LoRAs[0].Components, ",") != "clip_l,transformer" {
			t.Fatalf("applied %+v", c.LoRAs)
		}
		dir, _ := cached(t, c, root, o)
		if dir == base || compiled[0] == dir {
			t.Fatalf("weight %v: the key %s is another's", w, filepath.Base(dir))
		}
		compiled[w] = dir
		if strings.Join(built, ",") != "text_encoder,transformer" {
			t.Errorf("weight %v built %v, want only the patched text_encoder and transformer", w, built)
		}
		for _, comp := range []string{"text_encoder_2", "vae_decoder", "vae_encoder"} {
			a, _ := os.Stat(filepath.Join(base, comp, "model.onnx_data"))
			b, _ := os.Stat(filepath.Join(dir, comp, "model.onnx_data"))
			if a == nil || b == nil || !os.SameFile(a, b) {
				t.Errorf("weight %v: %s is not linked from the base compile", w, comp)
			}
		}
	}
	for _, comp := range []string{"transformer", "text_encoder"} {
		data := func(w float64) []byte { return readFile(t, filepath.Join(compiled[w], comp, "model.onnx_data")) }
		baseData := readFile(t, filepath.Join(base, comp, "model.onnx_data"))
		if !bytes.Equal(data(0), baseData) {
			t.Errorf("%s: weight 0 changes the weights", comp)
		}
		if bytes.Equal(data(0.5), baseData) || bytes.Equal(data(0.5), data(0.7)) {
			t.Errorf("%s: weights 0.5 and 0.7 do not change the weights", comp)
		}
		if !bytes.Equal(readFile(t, filepath.Join(compiled[0.5], comp, "model.onnx")), readFile(t, filepath.Join(base, comp, "model.onnx"))) {
			t.Errorf("%s: the LoRA changed the graph", comp)
		}
	}
}

// TestLoRABadInput: a LoRA for another model is refused when the checkpoint opens, naming the file and key.
func TestLoRABadInput(t *testing.T) {
	ckpt := writeCheckpoint(t, testmodels.Options{Kind: testmodels.KindFluxDev, GeneratedVocab: true})
	bad := filepath.Join(t.TempDir(), "sdxl.safetensors")
	if err := safetensors.WriteFile(bad, []safetensors.Tensor{
		safetensors.F32("lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight", []int{4, 1}, make([]float32, 4)),
		safetensors.F32("lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", []int{1, 4}, make([]float32, 4)),
	}, nil); err != nil {
		t.Fatal(err)
	}
	_, err := compiler.Open(compiler.Source{Model: ckpt, LoRAs: []compiler.LoRA{{Path: bad, Weight: 1}}})
	oneLine(t, err, "sdxl.safetensors", "lora_unet_down_blocks_0_attentions_0_proj_in", "matches no module")
}

// BenchmarkLoRASwitch measures switching a LoRA's weight on a bench-size FLUX checkpoint against compiling
// it with the LoRA from scratch (issue 14 item 3): the switch rebuilds the patched transformer and CLIP-L and
// links T5 and the VAE.
//
//	go test -run '^$' -bench LoRASwitch -benchtime 1x ./internal/compiler
func BenchmarkLoRASwitch(b *testing.B) {
	ckpt := filepath.Join(b.TempDir(), "checkpoint")
	if err := testmodels.WriteCheckpoint(ckpt, testmodels.Options{Kind: testmodels.KindFluxDev, Size: testmodels.SizeBench, GeneratedVocab: true}); err != nil {
		b.Fatal(err)
	}
	lora := filepath.Join(b.TempDir(), "style.safetensors")
	writeLoRA(b, ckpt, lora)
	for range b.N {
		root := b.TempDir()
		var secs [3]float64
		for i, w := range []float64{0.5, 0.7, 0.9} {
			start := time.Now()
			c, err := compiler.Open(compiler.Source{Model: ckpt, LoRAs: []compiler.LoRA{{Path: lora, Weight: w}}})
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := compiler.Cached(context.Background(), c, root, compiler.Options{}); err != nil {
				b.Fatal(err)
			}
			c.Close()
			secs[i] = time.Since(start).Seconds()
		}
		b.ReportMetric(secs[0], "full-compile-s")
		b.ReportMetric((secs[1]+secs[2])/2, "switch-weight-s")
		b.ReportMetric((secs[1]+secs[2])/2/secs[0], "switch/full")
	}
}
