package pipeline

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/testmodels"
)

func mustWrite(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustRemove(t *testing.T, path string) {
	t.Helper()
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
}

// problemFiles returns the File of each problem.
func problemFiles(ps []Problem) []string {
	files := make([]string, len(ps))
	for i, p := range ps {
		files[i] = p.File
	}
	return files
}

// One folder, three unrelated breakages: Inspect reports all three in one pass and Open lists them.
func TestInspectCollectsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	// The generated vocabulary has no tokenizer.json, so merges.txt is needed.
	if err := testmodels.Write(dir, testmodels.Options{Kind: testmodels.KindSD3, GeneratedVocab: true}); err != nil {
		t.Fatal(err)
	}
	mustRemove(t, filepath.Join(dir, "transformer", "model.onnx"))
	mustRemove(t, filepath.Join(dir, "tokenizer_2", "merges.txt"))
	mustWrite(t, filepath.Join(dir, "vae_decoder", "model.onnx"), "this is not a model\n")
	rep := Inspect(dir)
	want := []string{"transformer/model.onnx", "vae_decoder/model.onnx", "tokenizer_2/merges.txt"}
	if got := problemFiles(rep.Problems); !slices.Equal(got, want) {
		t.Fatalf("problem files %v, want %v\n%v", got, want, rep.Problems)
	}
	for i, sub := range []string{"missing: the export must contain transformer/model.onnx", "not an ONNX model", "missing tokenizer file merges.txt"} {
		if !strings.Contains(rep.Problems[i].Message, sub) {
			t.Errorf("problem %d: %q lacks %q", i, rep.Problems[i].Message, sub)
		}
	}
	_, err := Open(dir)
	var fe *FolderError
	if !errors.As(err, &fe) || len(fe.Problems) != 3 {
		t.Fatalf("Open: %v", err)
	}
	for _, f := range want {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("Open's error does not name %s: %v", f, err)
		}
	}
}

// problemCase breaks a copy of a fixture folder in one way: Inspect must give one problem about file
// whose message contains subst.
type problemCase struct {
	name  string
	o     testmodels.Options
	brk   func(t *testing.T, dir string)
	file  string
	subst string
}

const trPath = "transformer/model.onnx"

// The problem cases use the generated vocabulary (small tokenizer files, fast to copy and load) unless
// they break a real tokenizer file.
var (
	sd3NoT5     = testmodels.Options{Kind: testmodels.KindSD3NoT5, GeneratedVocab: true}
	sd3NoT5Real = testmodels.Options{Kind: testmodels.KindSD3NoT5}
	fluxDev     = testmodels.Options{Kind: testmodels.KindFluxDev, GeneratedVocab: true}
	fluxSchnell = testmodels.Options{Kind: testmodels.KindFluxSchnell, GeneratedVocab: true}
)

// sd3TestInputs are an SD3 transformer's inputs at the sd3-no-t5 fixture's widths, with the timestep of
// the given type (none for 0).
func sd3TestInputs(timestep onnx.DataType) []onnx.ValueInfo {
	in := []onnx.ValueInfo{tvi("hidden_states", f32, "b", 16, "h", "w"), tvi("encoder_hidden_states", f32, "b", "s", 96), tvi("pooled_projections", f32, "b", 80)}
	if timestep != 0 {
		in = append(in, tvi("timestep", timestep, "b"))
	}
	return in
}

var sd3TestOutputs = []onnx.ValueInfo{tvi("out_hidden_states", f32, "b", 16, "h", "w")}

// fileProblemCases break files: missing, damaged, unreadable configs, tokenizers.
func fileProblemCases() []problemCase {
	sd3, tr := sd3NoT5, trPath
	return []problemCase{
		{"missing transformer", sd3, func(t *testing.T, dir string) { mustRemove(t, filepath.Join(dir, tr)) }, tr, "missing: the export must contain transformer/model.onnx"},
		{"pytorch weights", sd3, func(t *testing.T, dir string) {
			mustRemove(t, filepath.Join(dir, tr))
			mustWrite(t, filepath.Join(dir, "transformer", "diffusion_pytorch_model.safetensors"), "{}")
		}, tr, "optimum-cli export onnx"},
		{"listed T5 missing", testmodels.Options{Kind: testmodels.KindSD3, GeneratedVocab: true}, func(t *testing.T, dir string) {
			mustRemove(t, filepath.Join(dir, "text_encoder_3"))
		}, "text_encoder_3/model.onnx", "missing"},
		{"corrupt onnx", sd3, func(t *testing.T, dir string) { mustWrite(t, filepath.Join(dir, tr), "") }, tr, "not an ONNX model"},
		{"missing external data", testmodels.Options{Kind: testmodels.KindFluxSchnell, ExternalData: true, GeneratedVocab: true}, func(t *testing.T, dir string) {
			mustRemove(t, filepath.Join(dir, "transformer", "model.onnx_data"))
		}, "transformer/model.onnx_data", "missing external data"},
		{"bad model_index.json", sd3, func(t *testing.T, dir string) { mustWrite(t, filepath.Join(dir, "model_index.json"), "{not json") }, "model_index.json", "damaged"},
		{"no model_index.json", sd3, func(t *testing.T, dir string) { mustRemove(t, filepath.Join(dir, "model_index.json")) }, "model_index.json", "model_index.json is missing"},
		{"unsupported pipeline", sd3, func(t *testing.T, dir string) {
			mustWrite(t, filepath.Join(dir, "model_index.json"), `{"_class_name": "StableDiffusionXLPipeline", "unet": ["diffusers", "UNet2DConditionModel"]}`)
		}, "model_index.json", `unsupported pipeline "StableDiffusionXLPipeline"`},
		{"bad transformer config", sd3, func(t *testing.T, dir string) { mustWrite(t, filepath.Join(dir, "transformer", "config.json"), "{") }, "transformer/config.json", "unreadable config"},
		{"bad VAE config", sd3, func(t *testing.T, dir string) {
			mustWrite(t, filepath.Join(dir, "vae_decoder", "config.json"), `{"scaling_factor": 1}`)
		}, "vae_decoder/config.json", "latent_channels"},
		{"no VAE config", sd3, func(t *testing.T, dir string) {
			mustRemove(t, filepath.Join(dir, "vae_decoder", "config.json"))
			mustRemove(t, filepath.Join(dir, "vae_encoder", "config.json"))
		}, "vae_decoder/config.json", "scaling_factor"},
		{"VAE latent channels", sd3, func(t *testing.T, dir string) {
			mustWrite(t, filepath.Join(dir, "vae_decoder", "config.json"), `{"scaling_factor": 1.5, "latent_channels": 4, "block_out_channels": [1, 2, 3, 4]}`)
		}, "vae_decoder/model.onnx", "takes 16 latent channels but the VAE config says latent_channels 4"},
		{"transformer latent channels", sd3, func(t *testing.T, dir string) {
			in := sd3TestInputs(f32)
			in[0] = tvi("hidden_states", f32, "b", 4, "h", "w")
			writeTestGraph(t, filepath.Join(dir, tr), in, []onnx.ValueInfo{tvi("out_hidden_states", f32, "b", 4, "h", "w")})
		}, tr, "takes 4 latent channels but the VAE's 16 latent channels make 16"},
		{"missing scheduler config", sd3, func(t *testing.T, dir string) { mustRemove(t, filepath.Join(dir, "scheduler")) }, "scheduler/scheduler_config.json", "missing"},
		{"missing tokenizer", sd3, func(t *testing.T, dir string) { mustRemove(t, filepath.Join(dir, "tokenizer")) }, "tokenizer", "missing"},
		{"T5 tokenizer without files", fluxDev, func(t *testing.T, dir string) {
			mustRemove(t, filepath.Join(dir, "tokenizer_2", "tokenizer.json"))
			mustRemove(t, filepath.Join(dir, "tokenizer_2", "spiece.model"))
		}, "tokenizer_2", "tokenizer.json or spiece.model"},
		// Files that exist but do not load: Inspect loads each tokenizer as the pipeline does.
		{"truncated CLIP tokenizer.json", sd3NoT5Real, func(t *testing.T, dir string) {
			truncateFile(t, filepath.Join(dir, "tokenizer", "tokenizer.json"))
		}, "tokenizer/tokenizer.json", "the tokenizer does not load"},
		{"garbage CLIP-G vocab.json", sd3, func(t *testing.T, dir string) {
			mustRemove(t, filepath.Join(dir, "tokenizer_2", "tokenizer.json"))
			mustWrite(t, filepath.Join(dir, "tokenizer_2", "vocab.json"), "\x00garbage")
		}, "tokenizer_2/vocab.json", "not valid JSON"},
		{"garbage CLIP tokenizer_config.json", sd3, func(t *testing.T, dir string) {
			mustWrite(t, filepath.Join(dir, "tokenizer", "tokenizer_config.json"), "[1, 2")
		}, "tokenizer/tokenizer_config.json", "the tokenizer does not load"},
		{"garbage T5 tokenizer.json", fluxDev, func(t *testing.T, dir string) {
			mustWrite(t, filepath.Join(dir, "tokenizer_2", "tokenizer.json"), "garbage")
		}, "tokenizer_2/tokenizer.json", "the tokenizer does not load"},
		{"truncated T5 spiece.model", testmodels.Options{Kind: testmodels.KindFluxDev}, func(t *testing.T, dir string) {
			mustRemove(t, filepath.Join(dir, "tokenizer_2", "tokenizer.json"))
			truncateFile(t, filepath.Join(dir, "tokenizer_2", "spiece.model"))
		}, "tokenizer_2/spiece.model", "the tokenizer does not load"},
	}
}

// truncateFile keeps the first half of a file, as an interrupted download does.
func truncateFile(t *testing.T, path string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, st.Size()/2); err != nil {
		t.Fatal(err)
	}
}

// signatureProblemCases break signatures and the widths between components.
func signatureProblemCases() []problemCase {
	sd3, tr, sd3Inputs, sd3Out := sd3NoT5, trPath, sd3TestInputs, sd3TestOutputs
	return []problemCase{
		{"no timestep", sd3, func(t *testing.T, dir string) { writeTestGraph(t, filepath.Join(dir, tr), sd3Inputs(0), sd3Out) }, tr, "missing input timestep"},
		{"float64 timestep", sd3, func(t *testing.T, dir string) { writeTestGraph(t, filepath.Join(dir, tr), sd3Inputs(f64), sd3Out) }, tr, "unsupported element type float64"},
		{"int timestep", sd3, func(t *testing.T, dir string) { writeTestGraph(t, filepath.Join(dir, tr), sd3Inputs(i64), sd3Out) }, tr, "it must be float32"},
		{"unexpected input", sd3, func(t *testing.T, dir string) {
			writeTestGraph(t, filepath.Join(dir, tr), append(sd3Inputs(f32), tvi("controlnet_cond", f32, "b", 16, "h", "w")), sd3Out)
		}, tr, "unexpected input controlnet_cond"},
		{"encoder position_ids", sd3, func(t *testing.T, dir string) { // attention_mask is fed all ones; other inputs are refused
			writeTestGraph(t, filepath.Join(dir, "text_encoder_2", "model.onnx"), []onnx.ValueInfo{tvi("input_ids", i64, "b", "s"), tvi("position_ids", i64, "b", "s")},
				[]onnx.ValueInfo{tvi("text_embeds", f32, "b", 48), tvi("hidden_states.0", f32, "b", "s", 48), tvi("hidden_states.1", f32, "b", "s", 48)})
		}, "text_encoder_2/model.onnx", "unexpected input position_ids"},
		{"T5 without last_hidden_state", fluxDev, func(t *testing.T, dir string) {
			writeTestGraph(t, filepath.Join(dir, "text_encoder_2", "model.onnx"), []onnx.ValueInfo{tvi("input_ids", i64, "b", "s")}, []onnx.ValueInfo{tvi("hidden", f32, "b", "s", 64)})
		}, "text_encoder_2/model.onnx", "missing output last_hidden_state"},
		{"pooled width", sd3, func(t *testing.T, dir string) {
			in := sd3Inputs(f32)
			in[2] = tvi("pooled_projections", f32, "b", 81)
			writeTestGraph(t, filepath.Join(dir, tr), in, sd3Out)
		}, tr, "pooled_projections takes 81 values but the CLIP pooled outputs give 32 + 48"},
		{"CLIP wider than joint", sd3, func(t *testing.T, dir string) {
			in := sd3Inputs(f32)
			in[1] = tvi("encoder_hidden_states", f32, "b", "s", 64)
			writeTestGraph(t, filepath.Join(dir, tr), in, sd3Out)
		}, tr, "the CLIP hidden widths 32 (text_encoder) + 48 (text_encoder_2) exceed the joint width 64"},
		{"T5 width", fluxSchnell, func(t *testing.T, dir string) {
			writeTestGraph(t, filepath.Join(dir, tr), fluxInputs(i64, nil, "n", false)[:6], []onnx.ValueInfo{tvi("out_hidden_states", f32, "b", "n", 64)})
			writeTestGraph(t, filepath.Join(dir, "text_encoder_2", "model.onnx"), []onnx.ValueInfo{tvi("input_ids", i64, "b", "s")},
				[]onnx.ValueInfo{tvi("last_hidden_state", f32, "b", "s", 65)})
		}, tr, "encoder_hidden_states takes width 64 but text_encoder_2 (T5) gives 65"},
		{"guidance_embeds without guidance", fluxDev, func(t *testing.T, dir string) {
			writeTestGraph(t, filepath.Join(dir, tr), fluxInputs(i64, nil, "n", false), []onnx.ValueInfo{tvi("out_hidden_states", f32, "b", "n", 64)})
		}, tr, "no guidance input"},
		{"guidance without guidance_embeds", fluxSchnell, func(t *testing.T, dir string) {
			writeTestGraph(t, filepath.Join(dir, tr), fluxInputs(i64, nil, "n", true), []onnx.ValueInfo{tvi("out_hidden_states", f32, "b", "n", 64)})
		}, tr, "guidance_embeds false"},
	}
}

// Each breakage alone gives exactly one problem, about the right file, saying the right thing.
func TestInspectSingleProblems(t *testing.T) {
	for _, c := range append(fileProblemCases(), signatureProblemCases()...) {
		t.Run(c.name, func(t *testing.T) {
			dir := inspectFixture(t, c.o)
			c.brk(t, dir)
			rep := Inspect(dir)
			if len(rep.Problems) != 1 || rep.Problems[0].File != c.file || !strings.Contains(rep.Problems[0].Message, c.subst) {
				t.Fatalf("want one problem about %s saying %q, got %d:\n%v", c.file, c.subst, len(rep.Problems), rep.Problems)
			}
			if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), c.subst) {
				t.Fatalf("Open: %v", err)
			}
		})
	}
}

func TestInspectNotAFolder(t *testing.T) {
	for _, dir := range []string{filepath.Join(t.TempDir(), "nope"), filepath.Join(t.TempDir())} {
		rep := Inspect(dir)
		if len(rep.Problems) == 0 {
			t.Errorf("%s: no problem", dir)
		}
	}
	f := filepath.Join(t.TempDir(), "file")
	mustWrite(t, f, "x")
	if rep := Inspect(f); len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0].Message, "not a folder") {
		t.Errorf("file: %v", rep.Problems)
	}
}

func TestReportJSON(t *testing.T) {
	o := testmodels.Options{Kind: testmodels.KindFluxDev, Precision: onnx.Float16, ExternalData: true}
	rep := Inspect(testmodels.Cached(t, o))
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Family     string `json:"family"`
		ClassName  string `json:"class_name"`
		Components []struct {
			Name         string   `json:"name"`
			Present      bool     `json:"present"`
			ExternalData []string `json:"external_data"`
			Bytes        int64    `json:"bytes"`
			Inputs       []struct {
				Name, DType string
				Shape       []int64
				DimNames    []string `json:"dim_names"`
			} `json:"inputs"`
		} `json:"components"`
		Tokenizers map[string]string `json:"tokenizers"`
		Problems   []Problem         `json:"problems"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	tr := got.Components[2]
	if got.Family != "flux" || got.ClassName != "FluxPipeline" || got.Problems == nil || len(got.Problems) != 0 || len(got.Tokenizers) != 2 ||
		tr.Name != "transformer" || !tr.Present || tr.ExternalData[0] != "transformer/model.onnx_data" || tr.Bytes == 0 {
		t.Fatalf("report JSON: %s", data)
	}
	if in := tr.Inputs[0]; in.Name != "hidden_states" || in.DType != "float16" || !slices.Equal(in.Shape, []int64{-1, -1, 64}) || in.DimNames[0] != "batch_size" {
		t.Errorf("input JSON %+v", in)
	}
}
