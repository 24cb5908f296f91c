package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/scheduler"
	"github.com/rflowrt/rflow/textenc"
	"github.com/rflowrt/rflow/vae"
)

// Problem is one thing wrong with a model folder.
type Problem struct {
	// Component is the component, tokenizer or file group the problem belongs to ("transformer",
	// "tokenizer_2", "model_index", "scheduler").
	Component string `json:"component"`
	// File is the file concerned, relative to the folder and slash-separated ("transformer/model.onnx").
	File string `json:"file"`
	// Message says what is wrong and what to do about it.
	Message string `json:"message"`
}

func (p Problem) String() string {
	switch {
	case p.File != "":
		return p.File + ": " + p.Message
	case p.Component != "":
		return p.Component + ": " + p.Message
	}
	return p.Message
}

// ComponentReport describes one component of a folder.
type ComponentReport struct {
	Name string `json:"name"`
	// Path is model.onnx relative to the folder ("transformer/model.onnx", "unet/model.onnx").
	Path string `json:"path"`
	// Present is false for a component the pipeline expects whose model.onnx is missing.
	Present         bool         `json:"present"`
	Inputs, Outputs []TensorInfo `json:"-"`
	// ExternalData lists the external data files model.onnx refers to, relative to the folder.
	ExternalData []string `json:"external_data"`
	// Bytes is the size of model.onnx and its external data.
	Bytes int64 `json:"bytes"`
}

// tensorJSON is how a declared input or output is written in JSON.
type tensorJSON struct {
	Name     string   `json:"name"`
	DType    string   `json:"dtype"`
	Shape    []int64  `json:"shape"`
	DimNames []string `json:"dim_names,omitempty"`
}

// MarshalJSON writes inputs and outputs with their element types by name ("float16").
func (c ComponentReport) MarshalJSON() ([]byte, error) {
	conv := func(ts []ort.TensorInfo) []tensorJSON {
		out := make([]tensorJSON, len(ts))
		for i, t := range ts {
			out[i] = tensorJSON{Name: t.Name, DType: t.Type.String(), Shape: t.Shape}
			if slices.ContainsFunc(t.DimNames, func(s string) bool { return s != "" }) {
				out[i].DimNames = t.DimNames
			}
		}
		return out
	}
	type plain ComponentReport
	return json.Marshal(struct {
		plain
		Inputs  []tensorJSON `json:"inputs"`
		Outputs []tensorJSON `json:"outputs"`
	}{plain(c), conv(c.Inputs), conv(c.Outputs)})
}

// Report is what Inspect found in a model folder.
type Report struct {
	Dir       string           `json:"dir"`
	ClassName string           `json:"class_name"`
	Family    scheduler.Family `json:"family"`
	// Components are the expected and the present components, in the layout's order.
	Components []ComponentReport `json:"components"`
	// Tokenizers maps each usable tokenizer folder name to its path.
	Tokenizers map[string]string `json:"tokenizers"`
	// Problems lists everything that keeps Open from accepting the folder; empty when it does.
	Problems []Problem `json:"problems"`
	// Layout names the ONNX layout recognised (LayoutOptimum, LayoutOnnxStack, LayoutAMDIO32, …) and
	// LayoutNote what that meant (which AMD subfolder was taken).
	Layout     string `json:"layout"`
	LayoutNote string `json:"layout_note,omitempty"`
}

// Inspect reads a model folder in one pass and collects every problem: a missing or unreadable
// model_index.json, an unsupported pipeline class, missing component models, files that are not ONNX,
// missing external data, signatures the pipeline cannot feed, unsupported element types, missing
// tokenizer files, inconsistent widths between components, unreadable configs. It loads no session.
func Inspect(dir string) Report {
	_, rep := scan(dir)
	return rep
}

// scanner is one pass over a folder; it fills the report and the model together.
type scanner struct {
	dir string
	rep Report
	m   *Model
	// required holds the components the pipeline needs; supported is false for an unsupported class.
	required  map[string]bool
	supported bool
}

func scan(dir string) (*Model, Report) {
	name := filepath.Base(filepath.Clean(dir))
	dir, layout, note := resolveLayoutDir(dir) // an AMD repository's _io32/ or _io16/ folder
	s := &scanner{
		dir: dir,
		rep: Report{Dir: dir, Tokenizers: map[string]string{}, Problems: []Problem{}, LayoutNote: note},
		m: &Model{Dir: dir, Name: name, Components: map[string]*Component{},
			Tokenizers: map[string]string{}},
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		msg := fmt.Sprintf("%s is not a folder: give the folder of an ONNX export in the diffusers layout", dir)
		if err != nil {
			msg = fmt.Sprintf("cannot open the model folder: %v", err)
		}
		s.problem("", "", "%s", msg)
		return s.m, s.rep
	}
	if opt := optFolders(dir); len(opt) > 0 {
		if _, err := os.Stat(filepath.Join(dir, "model_index.json")); err != nil {
			s.rep.Layout, s.m.Layout = LayoutOpt, LayoutOpt
			s.problem("", "", "%s", layoutOptProblem(dir, opt))
			return s.m, s.rep
		}
	}
	s.readIndex()
	s.readScheduler()
	for _, name := range componentOrder {
		s.readComponent(name)
	}
	if s.supported && s.rep.Family == "" {
		s.inferFamily()
	}
	s.m.Family = s.rep.Family
	if s.rep.Family != "" {
		s.checkSignatures()
		s.checkWidths()
		s.readTokenizers()
	}
	s.readVAE()
	s.rep.Layout = s.detectLayout(layout)
	s.m.Layout = s.rep.Layout
	return s.m, s.rep
}

func (s *scanner) problem(component, file, format string, args ...any) {
	s.rep.Problems = append(s.rep.Problems, Problem{Component: component, File: file, Message: fmt.Sprintf(format, args...)})
}

// rel returns path relative to the folder, slash-separated.
func (s *scanner) rel(path string) string {
	if r, err := filepath.Rel(s.dir, path); err == nil {
		return filepath.ToSlash(r)
	}
	return path
}

// readIndex reads model_index.json and decides which components are required.
func (s *scanner) readIndex() {
	s.supported = true
	s.required = map[string]bool{compTextEncoder: true, compTextEncoder2: true, compTransformer: true, compVAEDecoder: true}
	mi, err := readModelIndex(s.dir)
	s.m.Index, s.rep.ClassName, s.rep.Family = mi, mi.ClassName, mi.Family
	switch {
	case errors.Is(err, ErrUnsupportedPipeline):
		s.supported, s.required = false, map[string]bool{}
		s.problem("model_index", "model_index.json", "%v: rflow runs SD3/SD3.5 and FLUX.1 pipelines", err)
	case err != nil:
		s.problem("model_index", "model_index.json", "%v", err)
	}
	if _, ok := mi.Components[compTextEncoder3]; ok {
		s.required[compTextEncoder3] = s.supported
	}
}

func (s *scanner) readScheduler() {
	cfg, err := ReadSchedulerConfig(s.dir)
	if err != nil {
		msg := fmt.Sprintf("%v: copy scheduler/scheduler_config.json from the model's diffusers repository", err)
		if errors.Is(err, fs.ErrNotExist) {
			msg = "missing: the folder must contain scheduler/scheduler_config.json; copy it from the model's diffusers repository"
		}
		s.problem("scheduler", "scheduler/scheduler_config.json", "%s", msg)
		return
	}
	s.m.Scheduler = cfg
}

// readComponent reads one component's model signature, external data and config.json.
func (s *scanner) readComponent(name string) {
	if s.m.Index.Disabled[name] || (name == compTextEncoder3 && s.rep.Family == scheduler.FamilyFLUX) {
		return
	}
	dir, path := componentFile(s.dir, name)
	cr := ComponentReport{Name: name, Path: s.rel(path), ExternalData: []string{}}
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() {
		if s.required[name] || (name == compVAEEncoder && s.supported) {
			s.rep.Components = append(s.rep.Components, cr)
		}
		switch {
		case s.required[name] && (err == nil || errors.Is(err, fs.ErrNotExist)):
			s.problem(name, cr.Path, "missing: the export must contain %s%s", cr.Path, missingModelHint(dir))
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			s.problem(name, cr.Path, "cannot read: %v", err)
		}
		return
	}
	cr.Present, cr.Bytes = true, st.Size()
	defer func() { s.rep.Components = append(s.rep.Components, cr) }()
	info, err := onnx.ReadInfo(path)
	if err != nil {
		if errors.Is(err, onnx.ErrNotONNX) {
			_, detail, _ := strings.Cut(err.Error(), onnx.ErrNotONNX.Error()) // the reader's reason, without the path
			s.problem(name, cr.Path, "not an ONNX model%s: the file is damaged or is something else; export or download it again", detail)
		} else {
			s.problem(name, cr.Path, "cannot read: %v", err)
		}
		return
	}
	s.checkExternalData(name, dir, info, &cr)
	c := &Component{Name: name, Dir: dir, Path: path}
	if c.Inputs, c.Outputs, err = ort.Signature(path); err != nil {
		s.problem(name, cr.Path, "cannot read the signature: %v", err)
		return
	}
	cr.Inputs, cr.Outputs = c.Inputs, c.Outputs
	s.checkTypes(c, cr.Path)
	cfgPath := filepath.Join(dir, "config.json")
	if c.Config, err = readJSONObject(cfgPath); err != nil {
		s.problem(name, s.rel(cfgPath), "unreadable config (%v): copy the component's config.json again", err)
	}
	s.m.Components[name] = c
}

// missingModelHint says how to get a missing model.onnx, spotting PyTorch weights in its place.
func missingModelHint(dir string) string {
	for _, pat := range []string{"*.safetensors", "*.bin", "*.pt"} {
		if m, _ := filepath.Glob(filepath.Join(dir, pat)); len(m) > 0 {
			return fmt.Sprintf("; %s holds PyTorch weights (%s): convert the model with "+
				"`optimum-cli export onnx --model MODEL --task text-to-image OUT_DIR`", filepath.Base(dir), filepath.Base(m[0]))
		}
	}
	return " (copy it from the export, or export the model again)"
}

// checkExternalData sums the external data files and reports the missing ones.
func (s *scanner) checkExternalData(name, dir string, info *onnx.Info, cr *ComponentReport) {
	for _, f := range info.ExternalFiles {
		p := filepath.Join(dir, filepath.FromSlash(f))
		cr.ExternalData = append(cr.ExternalData, s.rel(p))
		st, err := os.Stat(p)
		if err != nil {
			s.problem(name, s.rel(p), "missing external data: %s keeps its weights in %s; copy that file next to model.onnx (the export wrote both)", cr.Path, f)
			continue
		}
		cr.Bytes += st.Size()
	}
	if info.ExternalData && len(info.ExternalFiles) == 0 {
		s.problem(name, cr.Path, "has external weights without a file location: export it again")
	}
}

// checkTypes reports inputs and outputs whose element type rflow cannot feed or read.
func (s *scanner) checkTypes(c *Component, rel string) {
	for _, list := range []struct {
		kind string
		ts   []ort.TensorInfo
	}{{"input", c.Inputs}, {"output", c.Outputs}} {
		for _, t := range list.ts {
			if !supportedType(t.Type) {
				s.problem(c.Name, rel, "%s %s has an unsupported element type %v: rflow handles float32, float16, bfloat16, int32 and int64; "+
					"export with those types (e.g. optimum-cli's fp32 export or onnxruntime's fp16 optimizer)", list.kind, t.Name, t.Type)
			}
		}
	}
}

// inferFamily guesses the family from the transformer when model_index.json is missing, so that the
// signature checks still run: FLUX transformers take packed [B, N, C] latents and position ids.
func (s *scanner) inferFamily() {
	c := s.m.Components[compTransformer]
	if c == nil || len(c.Inputs) == 0 {
		return
	}
	s.rep.Family = scheduler.FamilySD3
	_, img := c.Input("img_ids")
	if img || len(c.Inputs[0].Shape) == 3 {
		s.rep.Family = scheduler.FamilyFLUX
	}
}

// transformerFix ends every transformer signature problem.
const transformerFix = "; rflow feeds Optimum exports (`optimum-cli export onnx --task text-to-image`) and the NVIDIA, BFL and OnnxStack variants"

// checkSignatures checks each component against what the family's pipeline feeds and reads.
func (s *scanner) checkSignatures() {
	for _, name := range componentOrder {
		c := s.m.Components[name]
		if c == nil {
			continue
		}
		var msgs []string
		switch name {
		case compTransformer:
			msgs = s.adaptTransformer(c)
		case compVAEDecoder, compVAEEncoder:
			msgs = checkVAEModel(c)
		default:
			if kind, ok := encoderKindOf(s.rep.Family, name); ok {
				msgs = checkEncoder(kind, c)
			}
		}
		for _, msg := range msgs {
			s.problem(name, s.rel(c.Path), "%s", msg)
		}
	}
}

// adaptTransformer fills the model's TransformerIO, guidance flag and widths.
func (s *scanner) adaptTransformer(c *Component) []string {
	io, msgs := adaptTransformer(s.rep.Family, c.Inputs, c.Outputs)
	for i := range msgs {
		msgs[i] += transformerFix
	}
	if len(msgs) > 0 {
		return msgs
	}
	m := s.m
	m.Transformer, m.GuidanceEmbeds = io, io.Guidance != ""
	m.JointDim, m.PooledDim, m.InChannels = transformerDims(s.rep.Family, c, io)
	if s.rep.Family == scheduler.FamilyFLUX {
		if msg := guidanceProblem(c, io); msg != "" {
			msgs = append(msgs, msg)
		}
	}
	return msgs
}

// checkWidths compares the text encoders' widths with the transformer's (flow-sampling.md §3.2, §4.2):
// SD3 zero-pads the CLIP-L‖CLIP-G hidden states to the joint width and concatenates their pooled
// outputs; FLUX feeds T5's states and CLIP's pooled output directly.
func (s *scanner) checkWidths() {
	m := s.m
	tr := m.Components[compTransformer]
	if tr == nil || m.Transformer.HiddenStates == "" {
		return
	}
	rel := s.rel(tr.Path)
	const fix = ": the components come from different models; use one export of one model"
	t5 := compTextEncoder3
	if m.Family == scheduler.FamilyFLUX {
		t5 = compTextEncoder2
		if te := m.Components[compTextEncoder]; te != nil {
			if _, p := clipWidths(te); p > 0 && m.PooledDim > 0 && p != m.PooledDim {
				s.problem(compTransformer, rel, "pooled_projections takes %d values but text_encoder's pooled output has %d%s", m.PooledDim, p, fix)
			}
		}
	} else if l, g := m.Components[compTextEncoder], m.Components[compTextEncoder2]; l != nil && g != nil {
		lh, lp := clipWidths(l)
		gh, gp := clipWidths(g)
		if lh > 0 && gh > 0 && m.JointDim > 0 && lh+gh > m.JointDim {
			s.problem(compTransformer, rel, "the CLIP hidden widths %d (text_encoder) + %d (text_encoder_2) exceed the joint width %d of encoder_hidden_states%s",
				lh, gh, m.JointDim, fix)
		}
		if lp > 0 && gp > 0 && m.PooledDim > 0 && lp+gp != m.PooledDim {
			s.problem(compTransformer, rel, "pooled_projections takes %d values but the CLIP pooled outputs give %d + %d%s", m.PooledDim, lp, gp, fix)
		}
	}
	if te := m.Components[t5]; te != nil {
		if w := t5Width(te); w > 0 && m.JointDim > 0 && w != m.JointDim {
			s.problem(compTransformer, rel, "encoder_hidden_states takes width %d but %s (T5) gives %d%s", m.JointDim, t5, w, fix)
		}
	}
}

// readTokenizers finds the family's tokenizer folders, checks their files and loads each tokenizer as
// the pipeline will (so a truncated or garbage file is a problem now, not an error after Open).
func (s *scanner) readTokenizers() {
	withT5 := s.required[compTextEncoder3] || s.m.Components[compTextEncoder3] != nil
	for _, t := range familyTokenizers(s.rep.Family, withT5) {
		if s.m.Index.Disabled[t.name] {
			continue
		}
		dir := filepath.Join(s.dir, t.name)
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			s.problem(t.name, t.name, "missing: the folder must contain %s/ with the tokenizer files; copy it from the model's diffusers repository", t.name)
			continue
		}
		if file, msg := tokenizerProblem(dir, t.kind); msg != "" {
			s.problem(t.name, pathJoinSlash(t.name, file), "%s", msg)
			continue
		}
		tok, err := loadTokenizer(dir, t.kind, s.m.Index.Components[t.name][1])
		if err != nil {
			s.tokenizerLoadProblem(t.name, dir, err)
			continue
		}
		s.m.Tokenizers[t.name], s.rep.Tokenizers[t.name] = dir, dir
		if s.m.loadedTokenizers == nil {
			s.m.loadedTokenizers = map[string]textenc.Tokenizer{}
		}
		s.m.loadedTokenizers[t.name] = tok
	}
}

func pathJoinSlash(dir, file string) string {
	if file == "" {
		return dir
	}
	return dir + "/" + file
}

// readVAE reads the VAE config and checks the latent width against the decoder and the transformer.
func (s *scanner) readVAE() {
	if s.rep.Family == "" {
		return
	}
	found := false
	for _, sub := range []string{compVAEDecoder, compVAEEncoder, "vae"} {
		cfg, err := vae.ReadConfig(filepath.Join(s.dir, sub))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if file := sub + "/config.json"; err != nil && !s.hasProblem(file) {
			s.problem(sub, file, "%v: copy the VAE's config.json again from the model's diffusers repository", err)
		}
		s.m.VAE, found = cfg, true
		break
	}
	if !found {
		s.problem(compVAEDecoder, compVAEDecoder+"/config.json", "missing: the VAE config (AutoencoderKL config.json with scaling_factor "+
			"and shift_factor) is needed to decode latents; copy vae/config.json from the model's diffusers repository into vae_decoder/")
		return
	}
	latent := s.m.VAE.LatentChannels // the decoder's own width, when it declares one, is what counts
	if dec := s.m.Components[compVAEDecoder]; dec != nil {
		if ch := latentChannelsOf(dec); ch > 0 {
			if latent > 0 && ch != latent {
				s.problem(compVAEDecoder, s.rel(dec.Path), "takes %d latent channels but the VAE config says latent_channels %d: "+
					"re-export, or copy the matching config.json", ch, latent)
			}
			latent = ch
		}
	}
	want := latent
	if s.rep.Family == scheduler.FamilyFLUX {
		want *= 4 // 2×2 patches packed into channels
	}
	fill := s.rep.Family == scheduler.FamilyFLUX && s.m.InChannels == 2*want+4*s.m.VAE.ScaleFactor*s.m.VAE.ScaleFactor // FLUX Fill
	if tr := s.m.Components[compTransformer]; tr != nil && s.m.InChannels > 0 && want > 0 && s.m.InChannels != want && !fill {
		s.problem(compTransformer, s.rel(tr.Path), "takes %d latent channels but the VAE's %d latent channels make %d for this family: "+
			"the components come from different models", s.m.InChannels, latent, want)
	}
}

func (s *scanner) hasProblem(file string) bool {
	return slices.ContainsFunc(s.rep.Problems, func(p Problem) bool { return p.File == file })
}
