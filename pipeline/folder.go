// Package pipeline runs SD3- and FLUX-family text-to-image generation over a model folder in the
// diffusers/Optimum layout.
package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rflowrt/rflow/scheduler"
)

// pipelineFamilies maps model_index.json's _class_name to the family rflow runs it as.
var pipelineFamilies = map[string]scheduler.Family{
	"StableDiffusion3Pipeline":        scheduler.FamilySD3,
	"StableDiffusion3Img2ImgPipeline": scheduler.FamilySD3,
	"FluxPipeline":                    scheduler.FamilyFLUX,
	"FluxImg2ImgPipeline":             scheduler.FamilyFLUX,
	// the edit pipelines' folders (the transformer tells Fill apart; Kontext is known by its class)
	"StableDiffusion3InpaintPipeline": scheduler.FamilySD3,
	"FluxInpaintPipeline":             scheduler.FamilyFLUX,
	"FluxFillPipeline":                scheduler.FamilyFLUX,
	"FluxKontextPipeline":             scheduler.FamilyFLUX,
}

// ErrUnsupportedPipeline is wrapped by ReadModelIndex's error for a _class_name rflow does not run.
var ErrUnsupportedPipeline = errors.New("unsupported pipeline")

// ModelIndex is what model_index.json says about a folder.
type ModelIndex struct {
	ClassName string
	Family    scheduler.Family
	// Components maps a component name (transformer, text_encoder_3, …) to its [library, class];
	// a component listed as [null, null] (e.g. SD3 without T5) is absent from the map.
	Components map[string][2]string
	// Disabled holds the components listed as [null, null]: the pipeline runs without them even when
	// their folder exists (diffusers does the same).
	Disabled map[string]bool
}

// ReadModelIndex reads dir/model_index.json.
func ReadModelIndex(dir string) (ModelIndex, error) {
	mi, err := readModelIndex(dir)
	if err != nil {
		return ModelIndex{}, err
	}
	return mi, nil
}

// readModelIndex is ReadModelIndex, but keeps ClassName (and the components) when the pipeline class
// is unsupported, so Inspect can report what the folder is.
func readModelIndex(dir string) (ModelIndex, error) {
	path := filepath.Join(dir, "model_index.json")
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return ModelIndex{}, fmt.Errorf("%s is not a diffusers model folder: %s is missing; export the model with "+
				"`optimum-cli export onnx --task text-to-image` or copy model_index.json from its diffusers repository", dir, path)
		}
		return ModelIndex{}, fmt.Errorf("read %s: %w", path, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return ModelIndex{}, fmt.Errorf("read %s: %w (the file is damaged: copy it again from the model's repository)", path, err)
	}
	mi := ModelIndex{Components: map[string][2]string{}, Disabled: map[string]bool{}}
	if err := json.Unmarshal(raw["_class_name"], &mi.ClassName); err != nil || mi.ClassName == "" {
		return ModelIndex{}, fmt.Errorf("read %s: no _class_name (the file is damaged: copy it again from the model's repository)", path)
	}
	for k, v := range raw {
		if strings.HasPrefix(k, "_") {
			continue
		}
		var pair []*string
		if json.Unmarshal(v, &pair) != nil || len(pair) != 2 {
			continue
		}
		if pair[0] == nil || pair[1] == nil {
			mi.Disabled[k] = true
			continue
		}
		mi.Components[k] = [2]string{*pair[0], *pair[1]}
	}
	fam, ok := pipelineFamilies[mi.ClassName]
	if !ok {
		known := make([]string, 0, len(pipelineFamilies))
		for k := range pipelineFamilies {
			known = append(known, k)
		}
		sort.Strings(known)
		return mi, fmt.Errorf("read %s: %w %q (supported: %s)", path, ErrUnsupportedPipeline, mi.ClassName, strings.Join(known, ", "))
	}
	mi.Family = fam
	return mi, nil
}

// ReadSchedulerConfig reads dir/scheduler/scheduler_config.json.
func ReadSchedulerConfig(dir string) (scheduler.FlowMatchConfig, error) {
	path := filepath.Join(dir, "scheduler", "scheduler_config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return scheduler.FlowMatchConfig{}, fmt.Errorf("scheduler config: %w", err)
	}
	cfg, err := scheduler.ParseFlowMatchConfig(data)
	if err != nil {
		return scheduler.FlowMatchConfig{}, fmt.Errorf("read %s: %w", path, err)
	}
	return cfg, nil
}

// Component names of the Optimum layout (flow-sampling.md §5.1), in the order rflow reports them.
const (
	compTextEncoder  = "text_encoder"
	compTextEncoder2 = "text_encoder_2"
	compTextEncoder3 = "text_encoder_3"
	compTransformer  = "transformer"
	compVAEDecoder   = "vae_decoder"
	compVAEEncoder   = "vae_encoder"
)

var componentOrder = []string{compTextEncoder, compTextEncoder2, compTextEncoder3, compTransformer, compVAEDecoder, compVAEEncoder}

// componentFile returns the directory and model path of a component. The transformer falls back to
// unet/model.onnx when transformer/model.onnx is absent (OnnxStack folders, peers-and-conventions.md §4.2).
func componentFile(root, name string) (dir, path string) {
	dir = filepath.Join(root, name)
	path = filepath.Join(dir, "model.onnx")
	if name != compTransformer {
		return dir, path
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		alt := filepath.Join(root, "unet")
		if st, err := os.Stat(filepath.Join(alt, "model.onnx")); err == nil && st.Mode().IsRegular() {
			return alt, filepath.Join(alt, "model.onnx")
		}
	}
	return dir, path
}

// readJSONObject reads a JSON object file; (nil, nil) when the file does not exist.
func readJSONObject(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var obj map[string]any
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if obj == nil {
		return nil, errors.New("not a JSON object: null")
	}
	return obj, nil
}

// configInt returns an integer key of a config (JSON numbers decode as float64); 0 when absent or not
// a positive whole number.
func configInt(cfg map[string]any, key string) int {
	v, ok := cfg[key].(float64)
	if !ok || v <= 0 || v != float64(int(v)) {
		return 0
	}
	return int(v)
}

// configBool returns a boolean key of a config and whether it is set.
func configBool(cfg map[string]any, key string) (value, ok bool) {
	value, ok = cfg[key].(bool)
	return value, ok
}

// tokenizerKind says which files a tokenizer folder needs.
type tokenizerKind int

const (
	tokenizerCLIP tokenizerKind = iota // tokenizer.json, or vocab.json + merges.txt
	tokenizerT5                        // tokenizer.json, or spiece.model
)

// tokenizerProblem checks that dir has the files of a tokenizer of the given kind. It returns "" when
// it does, else the file to name and a message saying what is missing.
func tokenizerProblem(dir string, kind tokenizerKind) (file, msg string) {
	has := func(name string) bool {
		st, err := os.Stat(filepath.Join(dir, name))
		return err == nil && st.Mode().IsRegular()
	}
	if has("tokenizer.json") {
		return "", ""
	}
	const fix = ": copy the tokenizer folder from the model's diffusers repository"
	if kind == tokenizerT5 {
		if has("spiece.model") {
			return "", ""
		}
		return "", "missing tokenizer files: a T5 tokenizer needs tokenizer.json or spiece.model" + fix
	}
	vocab, merges := has("vocab.json"), has("merges.txt")
	switch {
	case vocab && merges:
		return "", ""
	case vocab:
		return "merges.txt", "missing tokenizer file merges.txt: a CLIP tokenizer needs tokenizer.json, or vocab.json with merges.txt" + fix
	case merges:
		return "vocab.json", "missing tokenizer file vocab.json: a CLIP tokenizer needs tokenizer.json, or vocab.json with merges.txt" + fix
	}
	return "", "missing tokenizer files: a CLIP tokenizer needs tokenizer.json, or vocab.json with merges.txt" + fix
}
