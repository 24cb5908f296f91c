package compiler_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rflowrt/rflow/internal/compiler"
	"github.com/rflowrt/rflow/internal/compiler/checkpoint"
	"github.com/rflowrt/rflow/internal/safetensors"
	"github.com/rflowrt/rflow/internal/testmodels"
)

// fluxCheckpoint is a tiny FLUX.1-dev checkpoint folder of the test's own (tests may damage it).
func fluxCheckpoint(t *testing.T) string {
	return writeCheckpoint(t, testmodels.Options{Kind: testmodels.KindFluxDev, GeneratedVocab: true})
}

func fluxFile(dir, comp string) string {
	name := "model.safetensors"
	if comp == "transformer" || comp == "vae" {
		name = "diffusion_pytorch_model.safetensors"
	}
	return filepath.Join(dir, comp, name)
}

// TestUnknownArchitecture: a safetensors file of tensors no format knows is a one-line error naming
// the file, the tensors and the formats understood.
func TestUnknownArchitecture(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mystery.safetensors")
	err := safetensors.WriteFile(path, []safetensors.Tensor{
		safetensors.F32("encoder.frobnicator.weight", []int{2, 2}, []float32{1, 2, 3, 4}),
		safetensors.F32("zz_head.bias", []int{2}, []float32{1, 2}),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = compiler.Open(compiler.Source{Model: path})
	oneLine(t, err, path, "encoder.frobnicator.weight", "formats understood", "BFL FLUX transformer", "SAI SD3/SD3.5 MMDiT",
		"transformers T5EncoderModel")
	if !errors.Is(err, checkpoint.ErrUnknownFormat) {
		t.Errorf("error %v is not ErrUnknownFormat", err)
	}
}

// TestMissingComponents: a FLUX transformer alone lacks CLIP-L, T5 and VAE, and says so by name.
func TestMissingComponents(t *testing.T) {
	dir := fluxCheckpoint(t)
	_, err := compiler.Open(compiler.Source{Model: fluxFile(dir, "transformer"), Config: dir})
	oneLine(t, err, "flux-dev", "CLIP-L, T5 or VAE")
	var missing *compiler.MissingError
	if !errors.As(err, &missing) || len(missing.Roles) != 3 || missing.Roles[0] != checkpoint.RoleCLIPL ||
		missing.Roles[1] != checkpoint.RoleT5 || missing.Roles[2] != checkpoint.RoleVAE {
		t.Fatalf("error %v (%T), want a MissingError for clip_l, t5, vae", err, err)
	}
	// With CLIP-L and T5 given, only the VAE is missing.
	_, err = compiler.Open(compiler.Source{Model: fluxFile(dir, "transformer"), Config: dir,
		CLIPL: fluxFile(dir, "text_encoder"), T5: fluxFile(dir, "text_encoder_2")})
	oneLine(t, err, "has no VAE")
}

// TestWrongComponentFile: a T5 given as the CLIP-L file is refused, naming both.
func TestWrongComponentFile(t *testing.T) {
	dir := fluxCheckpoint(t)
	t5 := fluxFile(dir, "text_encoder_2")
	_, err := compiler.Open(compiler.Source{Model: fluxFile(dir, "transformer"), Config: dir,
		CLIPL: t5, T5: t5, VAE: fluxFile(dir, "vae")})
	oneLine(t, err, t5, "given as the CLIP-L file, holds a T5")
	// A VAE given as the T5 file.
	_, err = compiler.Open(compiler.Source{Model: fluxFile(dir, "transformer"), Config: dir,
		CLIPL: fluxFile(dir, "text_encoder"), T5: fluxFile(dir, "vae"), VAE: fluxFile(dir, "vae")})
	oneLine(t, err, "given as the T5 file, holds a VAE")
}

// TestConfigShapeMismatch: a config.json whose width disagrees with the weights fails the compile with
// the tensor, the expected and the found shape, and leaves no folder (whole or partial) behind.
func TestConfigShapeMismatch(t *testing.T) {
	dir := fluxCheckpoint(t)
	p := filepath.Join(dir, "transformer", "config.json")
	var cfg map[string]any
	b, err := os.ReadFile(p)
	if err == nil {
		err = json.Unmarshal(b, &cfg)
	}
	if err != nil {
		t.Fatal(err)
	}
	joint := cfg["joint_attention_dim"].(float64)
	hidden := cfg["num_attention_heads"].(float64) * cfg["attention_head_dim"].(float64)
	cfg["joint_attention_dim"] = joint + 8
	b, _ = json.Marshal(cfg)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	c := open(t, compiler.Source{Model: dir})
	parent := t.TempDir()
	out := filepath.Join(parent, "compiled")
	err = compiler.Write(context.Background(), c, out, compiler.Options{})
	oneLine(t, err, `"context_embedder.weight"`, "expected shape "+shape(hidden, joint+8), "found "+shape(hidden, joint))
	if ents, _ := os.ReadDir(parent); len(ents) != 0 {
		t.Errorf("a failed compile left %v", ents)
	}
}

func shape(dims ...float64) string {
	b, _ := json.Marshal(dims)
	s := string(b)
	for i := range s {
		if s[i] == ',' {
			s = s[:i] + " " + s[i+1:]
		}
	}
	return s
}

// TestTruncatedWeights: a weights file cut short is a one-line error naming the file.
func TestTruncatedWeights(t *testing.T) {
	dir := fluxCheckpoint(t)
	p := fluxFile(dir, "transformer")
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, st.Size()-100); err != nil {
		t.Fatal(err)
	}
	_, err = compiler.Open(compiler.Source{Model: dir})
	oneLine(t, err, p)
	if !errors.Is(err, safetensors.ErrFormat) {
		t.Errorf("error %v is not a safetensors format error", err)
	}
	if err := os.Truncate(p, 5); err != nil {
		t.Fatal(err)
	}
	_, err = compiler.Open(compiler.Source{Model: dir})
	oneLine(t, err, p, "too short")
}

// TestShardedWeights: a component stored as shards with an index compiles like the single file; with a
// shard missing it is a one-line error naming that shard.
func TestShardedWeights(t *testing.T) {
	dir := fluxCheckpoint(t)
	single := fluxFile(dir, "transformer")
	f, err := safetensors.ReadFile(single)
	if err != nil {
		t.Fatal(err)
	}
	shards := [2][]safetensors.Tensor{}
	weightMap := map[string]string{}
	names := [2]string{"diffusion_pytorch_model-00001-of-00002.safetensors", "diffusion_pytorch_model-00002-of-00002.safetensors"}
	for i, x := range f.Tensors {
		shards[i%2] = append(shards[i%2], x)
		weightMap[x.Name] = names[i%2]
	}
	for i, s := range shards {
		if err := safetensors.WriteFile(filepath.Join(dir, "transformer", names[i]), s, nil); err != nil {
			t.Fatal(err)
		}
	}
	idx, _ := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": 0}, "weight_map": weightMap})
	if err := os.WriteFile(filepath.Join(dir, "transformer", "diffusion_pytorch_model.safetensors.index.json"), idx, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(single); err != nil {
		t.Fatal(err)
	}
	c := open(t, compiler.Source{Model: dir})
	if got := c.Parts[checkpoint.RoleTransformer].File; filepath.Base(got) != "diffusion_pytorch_model.safetensors.index.json" {
		t.Errorf("transformer read from %s, want the index", got)
	}
	if err := compiler.Write(context.Background(), c, filepath.Join(t.TempDir(), "out"), compiler.Options{}); err != nil {
		t.Fatalf("sharded compile: %v", err)
	}
	c.Close()
	missing := filepath.Join(dir, "transformer", names[1])
	if err := os.Remove(missing); err != nil {
		t.Fatal(err)
	}
	_, err = compiler.Open(compiler.Source{Model: dir})
	oneLine(t, err, missing)
}
