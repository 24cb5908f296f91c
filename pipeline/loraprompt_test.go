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

// TestTakeLoRATags: TakeLoRATags reads <lora:…> tags exactly as PromptLoRAs does (the same text left,
// the same weights, the same malformed tags refused), only without looking up any file.
func TestTakeLoRATags(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a", "b c", "x.y"} {
		if err := os.WriteFile(filepath.Join(dir, name+".safetensors"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, prompt := range []string{"no tags", "a cat <lora:a:0.8>", "<lora:a>, <lora: b c :-0.25 > and <lora:x.y:1e-1>!",
		"<lora:a:0.5><lora:a:0.5>", "unclosed <lora:a:0.5", "<LORA:a:1> is not a tag"} {
		wantClean, wantLoRAs, err := PromptLoRAs(prompt, dir)
		if err != nil {
			t.Fatalf("%q: pipeline: %v", prompt, err)
		}
		clean, tags, err := TakeLoRATags(prompt)
		if err != nil || clean != wantClean || len(tags) != len(wantLoRAs) {
			t.Fatalf("%q: got %q, %d tags, %v; want %q, %d LoRAs", prompt, clean, len(tags), err, wantClean, len(wantLoRAs))
		}
		for i, tag := range tags {
			l := wantLoRAs[i]
			if tag.Weight != l.Weight || tag.Name+".safetensors" != filepath.Base(l.Path) {
				t.Errorf("%q tag %d: %q at %g; pipeline: %s at %g", prompt, i, tag.Name, tag.Weight, l.Path, l.Weight)
			}
		}
	}
	for _, bad := range []string{"<lora:>", "<lora::1>", "<lora:a:b>", "<lora:a:NaN>", "<lora:a:inf>", "<lora:a:1:2>"} {
		if _, _, err := PromptLoRAs(bad, dir); err == nil {
			t.Fatalf("%q: pipeline accepts it", bad)
		}
		if _, _, err := TakeLoRATags(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("%q: %v; want an error naming the tag", bad, err)
		}
	}
}

// TestLoRAHashes: A1111's "Lora hashes" value: names without ':' and ',', the first 12 hex digits.
func TestLoRAHashes(t *testing.T) {
	got := LoRAHashes([]AppliedLoRA{{Name: "my:style,v2", Hash: "0123456789abcdef0123"}, {Name: "b", Hash: "fedcba9876543210"}, {Name: "nohash"}})
	if want := "mystylev2: 0123456789ab, b: fedcba987654"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
	if LoRAHashes(nil) != "" {
		t.Error("no LoRAs: not empty")
	}
}
