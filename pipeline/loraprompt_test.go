package pipeline

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPromptLoRAs: A1111's <lora:NAME:WEIGHT> tags leave the text (the rest untouched, as A1111's
// extra-network parser leaves it) and name DIR/NAME.safetensors; an unknown name says where it looked.
func TestPromptLoRAs(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"style.safetensors", "sub/detail.safetensors"} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, n)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	clean, ls, err := PromptLoRAs("a cat <lora:style:0.5>, in snow<lora:sub/detail>", dir)
	if err != nil {
		t.Fatal(err)
	}
	if clean != "a cat , in snow" {
		t.Errorf("prompt %q", clean)
	}
	want := []LoRA{{Path: filepath.Join(dir, "style.safetensors"), Weight: 0.5}, {Path: filepath.Join(dir, "sub", "detail.safetensors"), Weight: 1}}
	if len(ls) != 2 || ls[0] != want[0] || ls[1] != want[1] {
		t.Errorf("LoRAs %+v, want %+v", ls, want)
	}
	if clean, ls, err := PromptLoRAs("no tags <b>", dir); clean != "no tags <b>" || ls != nil || err != nil {
		t.Errorf("no tags: %q %v %v", clean, ls, err)
	}
	_, _, err = PromptLoRAs("x <lora:missing:1>", dir)
	if !errors.Is(err, ErrLoRANotFound) || !strings.Contains(err.Error(), filepath.Join(dir, "missing.safetensors")) {
		t.Errorf("unknown name: %v", err)
	}
	for _, bad := range []string{"<lora:style:nan>", "<lora:style:inf>", "<lora:style:x>", "<lora:style:1:2>", "<lora::1>"} {
		if _, _, err := PromptLoRAs(bad, dir); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("%s: %v", bad, err)
		}
	}
	if _, _, err := PromptLoRAs("<lora:style>", ""); !errors.Is(err, ErrLoRANotFound) {
		t.Errorf("no folder: %v", err)
	}
}
