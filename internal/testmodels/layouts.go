package testmodels

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rflowrt/rflow/internal/onnx"
)

// Layout is an ONNX folder layout found in the wild (turn2-findings.md §5), written by Write with the
// signatures those exports have (Options.Layout).
type Layout string

const (
	// LayoutAMD is AMD's *_amdgpu repository: <kind>_io32/ (the folder with float32 I/O) and
	// <kind>_io16/ (the same weights with float16 I/O), each a diffusers layout.
	LayoutAMD Layout = "amd"
	// LayoutOnnxStack is TensorStack/OnnxStack's: the transformer in unet/ with its weights in
	// model.onnx.data.
	LayoutOnnxStack Layout = "onnxstack"
	// LayoutTensorRT is a transformer as NVIDIA's TensorRT demos export it, in a diffusers folder: the
	// prediction named latent, the timestep declared bfloat16 (cast to float in the graph) and, for SD3,
	// an unused block_controlnet_hidden_states input [layers, batch, image tokens, width] (Stability's
	// SD3.5 *-tensorrt transformers; rflow feeds zeros).
	LayoutTensorRT Layout = "tensorrt"
	// LayoutOpt is the *.opt/ folder set of BFL's FLUX.1-*-onnx and Stability's *-tensorrt repositories:
	// clip.opt/, t5.opt/, transformer.opt/bf16/, vae.opt/, no model_index.json, scheduler, tokenizers
	// or configs, with NVIDIA's TensorRT-demo signatures: CLIP input_ids → text_embeddings (last hidden
	// state) and pooled_embeddings (FLUX) or input_ids, attention_mask (int32, unused) → text_embeddings
	// (projected, [B, D]) and hidden_states (the penultimate layer; SD3), T5 input_ids → text_embeddings, the transformer as LayoutTensorRT's,
	// the VAE decoder latent → images (a plain decoder: scaling stays outside).
	LayoutOpt Layout = "opt"
)

func (l Layout) valid() bool {
	switch l {
	case "", LayoutAMD, LayoutOnnxStack, LayoutTensorRT, LayoutOpt:
		return true
	}
	return false
}

// writeLayout writes o's folder in its layout: the Optimum folder first, then rearranged.
func writeLayout(dir string, o Options) error {
	plain := o
	plain.Layout = ""
	switch o.Layout {
	case LayoutAMD:
		io16 := plain
		io16.Precision = onnx.Float16
		if err := Write(filepath.Join(dir, string(o.Kind)+"_io32"), plain); err != nil {
			return err
		}
		return Write(filepath.Join(dir, string(o.Kind)+"_io16"), io16)
	case LayoutOnnxStack:
		if err := Write(dir, plain); err != nil {
			return err
		}
		if err := os.RemoveAll(filepath.Join(dir, "unet")); err != nil {
			return err
		}
		if err := os.Rename(filepath.Join(dir, "transformer"), filepath.Join(dir, "unet")); err != nil {
			return err
		}
		return rewriteModel(filepath.Join(dir, "unet"), func(*onnx.Model) error { return nil }, "model.onnx.data")
	case LayoutTensorRT:
		if err := Write(dir, plain); err != nil {
			return err
		}
		d, err := DimsFor(plain)
		if err != nil {
			return err
		}
		return rewriteModel(filepath.Join(dir, "transformer"), func(m *onnx.Model) error { return tensorRTGraph(m, o.Kind, d) }, "")
	case LayoutOpt:
		if err := Write(dir, plain); err != nil {
			return err
		}
		if err := optSignatures(dir, plain); err != nil {
			return err
		}
		return optFolders(dir, o.Kind)
	}
	return fmt.Errorf("testmodels: unknown layout %q", o.Layout)
}

// rewriteModel reads dir/model.onnx, edits it and writes it back: inline, or with its weights in the
// external data file dataName.
func rewriteModel(dir string, edit func(*onnx.Model) error, dataName string) error {
	path := filepath.Join(dir, "model.onnx")
	m, err := onnx.ReadModel(path)
	if err != nil {
		return err
	}
	if err := edit(m); err != nil {
		return err
	}
	tmp := filepath.Join(dir, "rewritten.onnx")
	o := onnx.WriteOptions{}
	if dataName != "" {
		o = onnx.WriteOptions{ExternalData: true, DataName: dataName}
	}
	if err := m.WriteFile(tmp, o); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if dataName != "model.onnx_data" { // Optimum's data file, now unused
		_ = os.Remove(filepath.Join(dir, "model.onnx_data"))
	}
	return nil
}

// tensorRTGraph gives a transformer graph the TensorRT demos' signature: a bfloat16 timestep cast to
// float, the output named latent and, for SD3, an unused ControlNet residual input.
func tensorRTGraph(m *onnx.Model, k Kind, d Dims) error {
	g := &m.Graph
	found := false
	for i := range g.Inputs {
		if g.Inputs[i].Name == "timestep" {
			g.Inputs[i].Type, found = onnx.BFloat16, true
		}
	}
	if !found {
		return errors.New("testmodels: tensorrt layout: the transformer has no timestep input")
	}
	for i := range g.Nodes {
		for j, in := range g.Nodes[i].Inputs {
			if in == "timestep" {
				g.Nodes[i].Inputs[j] = "timestep_float"
			}
		}
	}
	cast := onnx.Node{Name: "timestep_cast", OpType: "Cast", Inputs: []string{"timestep"}, Outputs: []string{"timestep_float"},
		Attrs: []onnx.Attribute{onnx.AttrInt("to", int64(onnx.Float))}}
	g.Nodes = append([]onnx.Node{cast}, g.Nodes...)
	if len(g.Outputs) != 1 {
		return fmt.Errorf("testmodels: tensorrt layout: the transformer has %d outputs", len(g.Outputs))
	}
	old := g.Outputs[0].Name
	g.Outputs[0].Name = "latent"
	for i := range g.Nodes {
		for j, out := range g.Nodes[i].Outputs {
			if out == old {
				g.Nodes[i].Outputs[j] = "latent"
			}
		}
	}
	if k.IsFlux() {
		return nil
	}
	g.Inputs = append(g.Inputs, onnx.ValueInfo{Name: "block_controlnet_hidden_states", Type: onnx.Float,
		Dims: []onnx.Dim{onnx.Fixed(int64(d.SD3.Layers)), onnx.Sym("batch_size"), onnx.Sym("image_tokens"), onnx.Fixed(int64(d.SD3.Hidden))}})
	return nil
}

// optFolders turns an Optimum folder into the *.opt/ set: clip.opt/ (FLUX's CLIP; SD3's clip_l.opt/
// and clip_g.opt/), t5.opt/, transformer.opt/bf16/ and vae.opt/, with nothing else.
func optFolders(dir string, k Kind) error {
	moves := map[string]string{"transformer": "transformer.opt/bf16", "vae_decoder": "vae.opt"}
	if k.IsFlux() {
		moves["text_encoder"], moves["text_encoder_2"] = "clip.opt", "t5.opt"
	} else {
		moves["text_encoder"], moves["text_encoder_2"], moves["text_encoder_3"] = "clip_l.opt", "clip_g.opt", "t5.opt"
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		to, ok := moves[e.Name()]
		if strings.HasSuffix(e.Name(), ".opt") {
			continue
		}
		if !ok {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, to)), 0o755); err != nil {
			return err
		}
		if err := os.RemoveAll(filepath.Join(dir, to)); err != nil {
			return err
		}
		if err := os.Rename(filepath.Join(dir, e.Name()), filepath.Join(dir, to)); err != nil {
			return err
		}
		if err := os.Remove(filepath.Join(dir, to, "config.json")); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}

// optSignatures renames an Optimum folder's graph inputs and outputs to the TensorRT demo's (see
// LayoutOpt), dropping the outputs those exports do not have; the weights stay as they are.
func optSignatures(dir string, o Options) error {
	k := o.Kind
	d, err := DimsFor(o)
	if err != nil {
		return err
	}
	if err := rewriteModel(filepath.Join(dir, "transformer"), func(m *onnx.Model) error { return tensorRTGraph(m, k, d) }, ""); err != nil {
		return err
	}
	clip := func(pooled string, penultimate bool) func(*onnx.Model) error {
		return func(m *onnx.Model) error {
			g := &m.Graph
			last := -1
			for _, o := range g.Outputs {
				var n int
				if _, err := fmt.Sscanf(o.Name, "hidden_states.%d", &n); err == nil && n > last {
					last = n
				}
			}
			keep := map[string]string{pooled: map[bool]string{true: "text_embeddings", false: "pooled_embeddings"}[penultimate]}
			if penultimate { // CLIPWithProjModel also takes an attention mask the graph does not use
				keep[fmt.Sprintf("hidden_states.%d", last-1)] = "hidden_states"
				g.Inputs = append(g.Inputs, onnx.ValueInfo{Name: "attention_mask", Type: onnx.Int32,
					Dims: []onnx.Dim{onnx.Sym("batch_size"), onnx.Sym("sequence_length")}})
			} else {
				keep["last_hidden_state"] = "text_embeddings"
			}
			return selectOutputs(g, keep)
		}
	}
	edits := map[string]func(*onnx.Model) error{
		"vae_decoder": func(m *onnx.Model) error {
			if len(m.Graph.Inputs) != 1 || len(m.Graph.Outputs) != 1 {
				return errors.New("testmodels: opt layout: the VAE decoder is not one input, one output")
			}
			renameValue(&m.Graph, m.Graph.Inputs[0].Name, "latent")
			renameValue(&m.Graph, m.Graph.Outputs[0].Name, "images")
			return nil
		},
	}
	t5 := func(m *onnx.Model) error {
		return selectOutputs(&m.Graph, map[string]string{"last_hidden_state": "text_embeddings"})
	}
	if k.IsFlux() {
		edits["text_encoder"], edits["text_encoder_2"] = clip("pooler_output", false), t5
	} else {
		edits["text_encoder"], edits["text_encoder_2"], edits["text_encoder_3"] = clip("text_embeds", true), clip("text_embeds", true), t5
	}
	for comp, edit := range edits {
		if _, err := os.Stat(filepath.Join(dir, comp, "model.onnx")); os.IsNotExist(err) && comp == "text_encoder_3" {
			continue
		}
		data := ""
		if _, err := os.Stat(filepath.Join(dir, comp, "model.onnx_data")); err == nil {
			data = "model.onnx_data"
		}
		if err := rewriteModel(filepath.Join(dir, comp), edit, data); err != nil {
			return fmt.Errorf("testmodels: opt layout: %s: %w", comp, err)
		}
	}
	return nil
}

// selectOutputs keeps the graph outputs named in keep, renamed to its values, in the graph's order.
func selectOutputs(g *onnx.Graph, keep map[string]string) error {
	var outs []onnx.ValueInfo
	for _, o := range g.Outputs {
		if to, ok := keep[o.Name]; ok {
			outs = append(outs, o)
			delete(keep, o.Name)
			renameValue(g, o.Name, to)
			outs[len(outs)-1].Name = to
		}
	}
	if len(keep) > 0 {
		return fmt.Errorf("the graph has no outputs %v", keep)
	}
	g.Outputs = outs
	return nil
}

// renameValue renames a value everywhere the graph names it.
func renameValue(g *onnx.Graph, from, to string) {
	for i := range g.Inputs {
		if g.Inputs[i].Name == from {
			g.Inputs[i].Name = to
		}
	}
	for i := range g.Outputs {
		if g.Outputs[i].Name == from {
			g.Outputs[i].Name = to
		}
	}
	for i := range g.Nodes {
		for j := range g.Nodes[i].Inputs {
			if g.Nodes[i].Inputs[j] == from {
				g.Nodes[i].Inputs[j] = to
			}
		}
		for j := range g.Nodes[i].Outputs {
			if g.Nodes[i].Outputs[j] == from {
				g.Nodes[i].Outputs[j] = to
			}
		}
	}
}
