package testmodels

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sync"

	"github.com/rflowrt/rflow/internal/onnx"
)

// Options select the model folder Write produces. The zero value (with a Kind) is a tiny fp32 folder
// with int64 ids and inline weights.
type Options struct {
	Kind Kind
	// Size is SizeTiny ("" too) or SizeBench.
	Size Size
	// IDs is the element type of the CLIP encoders' input_ids: Int64 (0 too; current Optimum) or Int32
	// (Optimum before Nov 2024). T5's input_ids are always Int64, as Optimum exports them.
	IDs onnx.DataType
	// Precision is the element type of every float input and output: Float (0 too) or Float16 (as
	// ORT's fp16 optimizer leaves them). Weights stay float32.
	Precision onnx.DataType
	// ExternalData writes the transformer's and the T5 encoder's weights to model.onnx_data. A model
	// whose weights exceed 100 MB always gets external data, as Optimum's export does for big models.
	ExternalData bool
	// Seed selects the random weights; the same Options always give byte-identical folders.
	Seed uint64
	// BF16Weights rounds every weight to the nearest bfloat16 (the graphs still store float32), so
	// that WriteCheckpoint with the same options stores exactly these weights as BF16.
	BF16Weights bool
	// SharedDir is shared/tokenizers, whose real CLIP and T5 files are copied into the tokenizer
	// folders. "" looks for ../shared/tokenizers beside the module root and, when it is not there,
	// writes a small generated vocabulary in the same formats instead.
	SharedDir string
	// GeneratedVocab writes the generated vocabulary even when shared/tokenizers is available.
	GeneratedVocab bool
	// Edit makes a FLUX folder an editing model: EditFill (FLUX.1-Fill: 384 input channels, 64 out,
	// model_index class FluxFillPipeline) or EditKontext (FLUX.1-Kontext: FLUX.1-dev's transformer under
	// the class FluxKontextPipeline). "" is a text-to-image folder.
	Edit Edit
	// Layout writes the folder in a layout found in the wild (LayoutAMD, LayoutOnnxStack,
	// LayoutTensorRT, LayoutOpt); "" is Optimum's.
	Layout Layout
}

// externalLimit is the weight size above which a model always gets external data.
const externalLimit = 100 << 20

// dataName is the external data file of every model, as Optimum names it.
const dataName = "model.onnx_data"

// normalized fills in defaults and rejects invalid options.
func (o Options) normalized() (Options, error) {
	if _, err := ParseKind(string(o.Kind)); err != nil {
		return o, fmt.Errorf("testmodels: %w", err)
	}
	if o.Size == "" {
		o.Size = SizeTiny
	}
	if o.IDs == 0 {
		o.IDs = onnx.Int64
	}
	if o.Precision == 0 {
		o.Precision = onnx.Float
	}
	switch {
	case o.Size != SizeTiny && o.Size != SizeBench && o.Size != SizeLarge:
		return o, fmt.Errorf("testmodels: unknown size %q (valid: tiny, bench, large)", o.Size)
	case o.IDs != onnx.Int64 && o.IDs != onnx.Int32:
		return o, fmt.Errorf("testmodels: ids type %v, want int32 or int64", o.IDs)
	case o.Precision != onnx.Float && o.Precision != onnx.Float16:
		return o, fmt.Errorf("testmodels: precision %v, want float32 or float16", o.Precision)
	case o.Edit != "" && o.Edit != EditFill && o.Edit != EditKontext:
		return o, fmt.Errorf("testmodels: edit %q, want %q or %q", o.Edit, EditFill, EditKontext)
	case !o.Layout.valid():
		return o, fmt.Errorf("testmodels: unknown layout %q", o.Layout)
	case o.Edit != "" && !o.Kind.IsFlux():
		return o, fmt.Errorf("testmodels: edit %q needs a FLUX kind, not %s", o.Edit, o.Kind)
	}
	return o, nil
}

// Write writes a complete model folder in the Optimum ONNX layout (flow-sampling.md §5.1) to dir,
// creating it if needed: model_index.json, scheduler/, the tokenizer folders, and each model
// component's model.onnx (+ model.onnx_data) and config.json (the real config with the fixture's
// sizes). Each subfolder it writes is replaced whole; other entries of dir are left alone (so a
// folder of another kind written there before can leave, e.g., its text_encoder_3 behind).
func Write(dir string, o Options) error {
	if o.Layout != "" {
		return writeLayout(dir, o)
	}
	o, d, configs, err := writeFolderFiles(dir, o)
	if err != nil {
		return err
	}
	return writeComponents(dir, configs, o.Kind.repo(), d.components(o.Kind), o.ExternalData)
}

// writeFolderFiles writes what every form of the folder has besides the models — model_index.json,
// scheduler/ and the tokenizer folders — and returns the normalized options, the sizes and the config
// source.
func writeFolderFiles(dir string, o Options) (Options, Dims, fs.FS, error) {
	o, err := o.normalized()
	if err != nil {
		return o, Dims{}, nil, err
	}
	d, err := DimsFor(o)
	if err != nil {
		return o, d, nil, err
	}
	src, err := o.tokenizerSource()
	if err != nil {
		return o, d, nil, err
	}
	configs, _, err := o.configSource()
	if err != nil {
		return o, d, nil, err
	}
	repo := o.Kind.repo()
	index, err := fs.ReadFile(configs, path.Join(repo, "model_index.json"))
	if err != nil {
		return o, d, nil, err
	}
	if !o.Kind.HasT5() {
		null := [2]any{nil, nil}
		if index, err = patchJSON(index, []kv{{"text_encoder_3", null}, {"tokenizer_3", null}}); err != nil {
			return o, d, nil, err
		}
	}
	if class := o.Edit.pipelineClass(); class != "" {
		if index, err = patchJSON(index, []kv{{"_class_name", class}}); err != nil {
			return o, d, nil, err
		}
	}
	if err := writeFile(dir, "model_index.json", index); err != nil {
		return o, d, nil, err
	}
	sched, err := fs.ReadFile(configs, path.Join(repo, "scheduler/scheduler_config.json"))
	if err != nil {
		return o, d, nil, err
	}
	if err := resetDir(dir, "scheduler"); err != nil {
		return o, d, nil, err
	}
	if err := writeFile(dir, "scheduler/scheduler_config.json", sched); err != nil {
		return o, d, nil, err
	}
	if err := writeTokenizers(dir, o.Kind, src); err != nil {
		return o, d, nil, err
	}
	return o, d, configs, nil
}

// writeComponents builds and writes the model components concurrently (each has its own seeded
// generator, so the bytes do not depend on scheduling).
func writeComponents(dir string, configs fs.FS, repo string, cs []component, external bool) error {
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() { errs[i] = writeComponent(dir, configs, repo, c, external) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func writeComponent(dir string, configs fs.FS, repo string, c component, external bool) error {
	cfg, err := fs.ReadFile(configs, path.Join(repo, c.config))
	if err != nil {
		return err
	}
	if cfg, err = patchJSON(cfg, c.set); err != nil {
		return fmt.Errorf("testmodels: %s config: %w", c.dir, err)
	}
	if err := resetDir(dir, c.dir); err != nil {
		return err
	}
	if err := writeFile(dir, c.dir+"/config.json", cfg); err != nil {
		return err
	}
	m, err := c.build()
	if err != nil {
		return fmt.Errorf("testmodels: build %s: %w", c.dir, err)
	}
	ext := (external && c.heavy) || weightBytes(m) > externalLimit
	return m.WriteFile(filepath.Join(dir, c.dir, "model.onnx"), onnx.WriteOptions{ExternalData: ext, DataName: dataName})
}

// weightBytes is the size of a model's initializers.
func weightBytes(m *onnx.Model) int64 {
	var n int64
	for _, t := range m.Graph.Initializers {
		n += t.RawSize() // streamed parameters have no Raw yet
	}
	return n
}

// resetDir replaces dir/name by an empty folder.
func resetDir(dir, name string) error {
	p := filepath.Join(dir, name)
	if err := os.RemoveAll(p); err != nil {
		return err
	}
	return os.MkdirAll(p, 0o755)
}

// writeFile writes data to dir/rel (slash-separated), creating the parent folder.
func writeFile(dir, rel string, data []byte) error {
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, data, 0o644)
}

// patchJSON sets top-level keys of a JSON object, keeping the other keys and their order (new keys go
// last), and writes it back as transformers does: two-space indent and a final newline. With no keys
// to set, a file in that format comes back byte-identical.
func patchJSON(src []byte, set []kv) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(src))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	var keys []string
	vals := map[string][]byte{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		keys = append(keys, tok.(string))
		vals[tok.(string)] = raw
	}
	for _, s := range set {
		if _, ok := vals[s.key]; !ok {
			keys = append(keys, s.key)
		}
		vals[s.key] = jsonValue(s.val)
	}
	var compact bytes.Buffer
	compact.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			compact.WriteByte(',')
		}
		compact.Write(jsonValue(k))
		compact.WriteByte(':')
		if err := json.Compact(&compact, vals[k]); err != nil {
			return nil, err
		}
	}
	compact.WriteByte('}')
	var out bytes.Buffer
	if err := json.Indent(&out, compact.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// FolderHash is a SHA-256 over every regular file under dir: its slash-separated relative path, size
// and content, in lexical path order. Two folders with the same hash have the same files.
func FolderHash(dir string) (string, error) {
	h := newHasher()
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		if !e.Type().IsRegular() {
			return fmt.Errorf("testmodels: hash %s: %s is not a regular file", dir, p)
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		return h.addFile(filepath.ToSlash(rel), p)
	})
	if err != nil {
		return "", err
	}
	return h.sum(), nil
}
