package assets

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rflowrt/rflow/assets/internal/build"
	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/scheduler"
)

// embeddedFiles lists an embedded model's files with their bytes.
func embeddedFiles(t *testing.T, name string) map[string][]byte {
	t.Helper()
	fsys, err := FS(name)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files[p], err = fs.ReadFile(fsys, p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func sameFiles(t *testing.T, what string, got, want map[string][]byte) {
	t.Helper()
	for p, w := range want {
		if g, ok := got[p]; !ok {
			t.Errorf("%s: %s is missing", what, p)
		} else if !bytes.Equal(g, w) {
			t.Errorf("%s: %s differs (%d vs %d bytes): run go generate ./assets", what, p, len(g), len(w))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: unexpected file %s", what, p)
		}
	}
}

// TestEmbeddedIsGenerated: the embedded folders are exactly what the generator produces now, and
// the generator gives the same bytes twice.
func TestEmbeddedIsGenerated(t *testing.T) {
	for _, name := range Names() {
		fresh, err := build.Files(name)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := build.Files(name)
		sameFiles(t, name+" (second generation)", again, fresh)
		sameFiles(t, name+" (embedded vs generated)", embeddedFiles(t, name), fresh)
	}
}

// TestGoRunGen runs the generator command as go generate does and compares its output.
func TestGoRunGen(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the generator")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH")
	}
	dir := t.TempDir()
	cmd := exec.Command(goTool, "run", "./gen", "-o", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run ./gen: %v\n%s", err, out)
	}
	for _, name := range Names() {
		got := map[string][]byte{}
		root := filepath.Join(dir, name)
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			got[filepath.ToSlash(rel)], err = os.ReadFile(p)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		sameFiles(t, name+" (go run ./gen)", got, embeddedFiles(t, name))
	}
}

func TestFSAndExtract(t *testing.T) {
	if !slices.Equal(Names(), []string{"demo-sd3", "demo-flux"}) || !slices.Contains(Names(), Default) {
		t.Fatalf("Names() = %v", Names())
	}
	if _, err := FS("sd3"); err == nil {
		t.Error("FS of an unknown name succeeded")
	}
	for _, name := range Names() {
		dir := t.TempDir()
		if err := Extract(name, dir); err != nil {
			t.Fatal(err)
		}
		want := embeddedFiles(t, name)
		got := map[string][]byte{}
		for p := range want {
			data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
			if err != nil {
				t.Fatal(err)
			}
			got[p] = data
		}
		sameFiles(t, name+" extracted", got, want)
	}
}

func readJSON(t *testing.T, name, path string) map[string]any {
	t.Helper()
	fsys, _ := FS(name)
	data, err := fs.ReadFile(fsys, path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s/%s: %v", name, path, err)
	}
	return m
}

// TestConfigs checks the diffusers configs the pipeline reads.
func TestConfigs(t *testing.T) {
	idx := readJSON(t, "demo-sd3", "model_index.json")
	if idx["_class_name"] != "StableDiffusion3Pipeline" || idx["text_encoder_3"].([]any)[0] != nil || idx["tokenizer_3"].([]any)[1] != nil {
		t.Errorf("demo-sd3 model_index: %v", idx)
	}
	if idx := readJSON(t, "demo-flux", "model_index.json"); idx["_class_name"] != "FluxPipeline" {
		t.Errorf("demo-flux model_index: %v", idx)
	}
	for _, name := range Names() {
		fsys, _ := FS(name)
		data, _ := fs.ReadFile(fsys, "scheduler/scheduler_config.json")
		cfg, err := scheduler.ParseFlowMatchConfig(data)
		if err != nil || cfg.Shift != 1 || cfg.UseDynamicShifting {
			t.Errorf("%s scheduler: %+v %v", name, cfg, err)
		}
		for _, comp := range []string{"vae_decoder", "vae_encoder"} {
			vae := readJSON(t, name, comp+"/config.json")
			if vae["scaling_factor"] != 1.0 || vae["shift_factor"] != 0.0 || vae["latent_channels"] != 16.0 || len(vae["block_out_channels"].([]any)) != 4 {
				t.Errorf("%s %s config: %v", name, comp, vae)
			}
		}
	}
	if tr := readJSON(t, "demo-sd3", "transformer/config.json"); tr["joint_attention_dim"] != 64.0 || tr["pooled_projection_dim"] != 64.0 || tr["sample_size"] != 32.0 {
		t.Errorf("demo-sd3 transformer config: %v", tr)
	}
	if tr := readJSON(t, "demo-flux", "transformer/config.json"); tr["guidance_embeds"] != true || tr["in_channels"] != 64.0 || tr["pooled_projection_dim"] != 32.0 {
		t.Errorf("demo-flux transformer config: %v", tr)
	}
}

// TestSignatures checks every graph's inputs and outputs against Optimum's export names (spec §5.2).
func TestSignatures(t *testing.T) {
	sig := func(name, comp string) (in, out []string) {
		fsys, _ := FS(name)
		data, err := fs.ReadFile(fsys, comp+"/model.onnx")
		if err != nil {
			t.Fatal(err)
		}
		info, err := onnx.ReadInfoBytes(data)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range info.Inputs {
			in = append(in, v.Name+":"+v.Type.String())
		}
		for _, v := range info.Outputs {
			out = append(out, v.Name)
		}
		return in, out
	}
	hidden := []string{"text_embeds", "last_hidden_state", "hidden_states.0", "hidden_states.1", "hidden_states.2"}
	for _, c := range []struct {
		name, comp string
		in, out    []string
	}{
		{"demo-sd3", "transformer", []string{"hidden_states:float32", "encoder_hidden_states:float32", "pooled_projections:float32", "timestep:float32"}, []string{"out_hidden_states"}},
		{"demo-flux", "transformer", []string{"hidden_states:float32", "encoder_hidden_states:float32", "pooled_projections:float32", "timestep:float32",
			"img_ids:int64", "txt_ids:int64", "guidance:float32"}, []string{"out_hidden_states"}},
		{"demo-sd3", "text_encoder", []string{"input_ids:int64"}, hidden},
		{"demo-sd3", "text_encoder_2", []string{"input_ids:int64"}, hidden},
		{"demo-flux", "text_encoder", []string{"input_ids:int64"}, []string{"last_hidden_state", "pooler_output"}},
		{"demo-flux", "text_encoder_2", []string{"input_ids:int64"}, []string{"last_hidden_state"}},
		{"demo-sd3", "vae_decoder", []string{"latent_sample:float32"}, []string{"sample"}},
		{"demo-flux", "vae_encoder", []string{"sample:float32"}, []string{"latent_parameters"}},
	} {
		in, out := sig(c.name, c.comp)
		if !slices.Equal(in, c.in) || !slices.Equal(out, c.out) {
			t.Errorf("%s/%s: inputs %v outputs %v, want %v %v", c.name, c.comp, in, out, c.in, c.out)
		}
	}
}
