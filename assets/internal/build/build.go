package build

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Names are the demo model folders.
var Names = []string{"demo-sd3", "demo-flux"}

// Files returns the files of one demo folder, by slash-separated path.
func Files(name string) (map[string][]byte, error) {
	switch name {
	case "demo-sd3":
		return sd3Files()
	case "demo-flux":
		return fluxFiles()
	}
	return nil, fmt.Errorf("build: unknown demo model %q", name)
}

type fileSet struct {
	files map[string][]byte
	err   error
}

func (f *fileSet) add(path string, data []byte) { f.files[path] = data }

func (f *fileSet) model(path string, build func() ([]byte, error)) {
	data, err := build()
	if err != nil && f.err == nil {
		f.err = fmt.Errorf("build %s: %w", path, err)
	}
	f.files[path] = data
}

func (f *fileSet) dir(prefix string, files map[string][]byte) {
	for k, v := range files {
		f.files[prefix+"/"+k] = v
	}
}

func sd3Files() (map[string][]byte, error) {
	f := &fileSet{files: map[string][]byte{}}
	f.add("model_index.json", sd3ModelIndex())
	f.add("scheduler/scheduler_config.json", schedulerConfig("0.29.0.dev0"))
	f.dir("tokenizer", clipTokenizerFiles("<|endoftext|>"))
	f.dir("tokenizer_2", clipTokenizerFiles("!"))
	f.model("text_encoder/model.onnx", func() ([]byte, error) { return CLIPEncoder(clipWithProjection) })
	f.add("text_encoder/config.json", clipConfig("CLIPTextModelWithProjection"))
	f.model("text_encoder_2/model.onnx", func() ([]byte, error) { return CLIPEncoder(clipZeros) })
	f.add("text_encoder_2/config.json", clipConfig("CLIPTextModelWithProjection"))
	f.model("transformer/model.onnx", SD3Transformer)
	f.add("transformer/config.json", sd3TransformerConfig())
	addVAE(f)
	return f.files, f.err
}

func fluxFiles() (map[string][]byte, error) {
	f := &fileSet{files: map[string][]byte{}}
	f.add("model_index.json", fluxModelIndex())
	f.add("scheduler/scheduler_config.json", schedulerConfig("0.30.0.dev0"))
	f.dir("tokenizer", clipTokenizerFiles("<|endoftext|>"))
	f.dir("tokenizer_2", t5TokenizerFiles())
	f.model("text_encoder/model.onnx", func() ([]byte, error) { return CLIPEncoder(clipPlain) })
	f.add("text_encoder/config.json", clipConfig("CLIPTextModel"))
	f.model("text_encoder_2/model.onnx", T5Encoder)
	f.add("text_encoder_2/config.json", t5Config())
	f.model("transformer/model.onnx", FluxTransformer)
	f.add("transformer/config.json", fluxTransformerConfig())
	addVAE(f)
	return f.files, f.err
}

func addVAE(f *fileSet) {
	f.model("vae_decoder/model.onnx", VAEDecoder)
	f.add("vae_decoder/config.json", vaeConfig())
	f.model("vae_encoder/model.onnx", VAEEncoder)
	f.add("vae_encoder/config.json", vaeConfig())
}

// Write replaces dir/<name> for every demo model with freshly generated files.
func Write(dir string) error {
	for _, name := range Names {
		files, err := Files(name)
		if err != nil {
			return err
		}
		root := filepath.Join(dir, name)
		if err := os.RemoveAll(root); err != nil {
			return err
		}
		paths := make([]string, 0, len(files))
		for p := range files {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, p := range paths {
			full := filepath.Join(root, filepath.FromSlash(p))
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(full, files[p], 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}
