package testmodels

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rflowrt/rflow/internal/compiler/checkpoint"
	"github.com/rflowrt/rflow/internal/half"
	"github.com/rflowrt/rflow/internal/safetensors"
)

// TestWriteCheckpointLayout: every kind's checkpoint folder has the diffusers layout (one vae/, configs
// equal to Write's, the class's weights file) and each weights file holds exactly the tensors
// checkpoint.Expected lists, with the random values the ONNX form's graphs get — as F32, or as BF16 whose
// values are the bf16-rounded weights.
func TestWriteCheckpointLayout(t *testing.T) {
	for _, kind := range Kinds() {
		for _, bf16 := range []bool{false, true} {
			name := string(kind) + map[bool]string{false: "/f32", true: "/bf16"}[bf16]
			t.Run(name, func(t *testing.T) {
				o := Options{Kind: kind, BF16Weights: bf16, GeneratedVocab: true}
				dir := t.TempDir()
				if err := WriteCheckpoint(dir, o); err != nil {
					t.Fatal(err)
				}
				onnxDir := t.TempDir()
				if err := Write(onnxDir, o); err != nil {
					t.Fatal(err)
				}
				d, err := DimsFor(o)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range d.components(kind) {
					if c.dir == "vae_encoder" {
						continue
					}
					sub := c.dir
					if sub == "vae_decoder" {
						sub = "vae"
					}
					checkComponent(t, dir, onnxDir, sub, c, bf16)
				}
				for _, gone := range []string{"vae_decoder", "vae_encoder"} {
					if _, err := os.Stat(filepath.Join(dir, gone)); err == nil {
						t.Errorf("checkpoint has %s/", gone)
					}
				}
				for _, same := range []string{"model_index.json", "scheduler/scheduler_config.json", "tokenizer/vocab.json"} {
					a, _ := os.ReadFile(filepath.Join(dir, same))
					b, _ := os.ReadFile(filepath.Join(onnxDir, same))
					if len(a) == 0 || string(a) != string(b) {
						t.Errorf("%s differs from Write's", same)
					}
				}
			})
		}
	}
}

func checkComponent(t *testing.T, dir, onnxDir, sub string, c component, bf16 bool) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, sub, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(onnxDir, c.dir, "config.json"))
	if string(raw) != string(want) {
		t.Errorf("%s/config.json differs from Write's %s/config.json", sub, c.dir)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	classes, err := indexClasses(dir)
	if err != nil {
		t.Fatal(err)
	}
	class, file := classes[sub][1], "model.safetensors"
	if classes[sub][0] == "diffusers" {
		file = "diffusion_pytorch_model.safetensors"
	}
	shapes, err := checkpoint.Expected(class, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := safetensors.Open(filepath.Join(dir, sub, file))
	if err != nil {
		t.Fatalf("%s: %v", sub, err)
	}
	defer r.Close()
	names := r.Names()
	if len(names) != len(shapes) {
		t.Errorf("%s: %d tensors, Expected lists %d", sub, len(names), len(shapes))
	}
	dtype := map[bool]string{false: "F32", true: "BF16"}[bf16]
	for _, n := range names {
		info, _ := r.Info(n)
		want := dtype
		if slices.Contains(bufferNames, n) {
			want = "F32"
		}
		if !slices.Equal(info.Shape, shapes[n]) || info.DType != want {
			t.Fatalf("%s: %s is %s%v, want %s%v", sub, n, info.DType, info.Shape, want, shapes[n])
		}
	}
	// Spot-check values: the first and last tensors against the random weights.
	for _, n := range []string{names[0], names[len(names)-1]} {
		got, err := r.Float32(n)
		if err != nil {
			t.Fatal(err)
		}
		exp, _ := c.weights.Float32(n, shapes[n])
		if !slices.Equal(got, exp) {
			t.Errorf("%s: %s holds other values than the random weights", sub, n)
		}
		for _, x := range exp {
			if bf16 && half.BFloat16ToFloat32(half.BFloat16FromFloat32(x)) != x {
				t.Fatalf("%s: %s: %v is not bf16-exact", sub, n, x)
			}
		}
	}
}
