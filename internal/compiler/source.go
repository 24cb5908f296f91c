// Package compiler turns the checkpoints people download — diffusers folders of safetensors and single
// files (BFL FLUX, SAI SD3/SD3.5, LDM VAEs, transformers CLIP/T5, ComfyUI-prefixed variants) — into
// ONNX model folders in the diffusers/Optimum layout that the pipeline runs: it recognises each file
// (package checkpoint), builds each component's graph (package arch), streams the weights into the
// graph's external data one tensor at a time, and caches the result.
package compiler

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rflowrt/rflow/internal/compiler/arch"
	"github.com/rflowrt/rflow/internal/compiler/checkpoint"
	"github.com/rflowrt/rflow/internal/compiler/lora"
)

// Source is what the user named: Model is a diffusers checkpoint folder or a .safetensors file (also a
// sharded set's .safetensors.index.json); CLIPL, CLIPG, T5 and VAE are single files that supply (or
// replace) those components, as stable-diffusion.cpp's --clip_l/--clip_g/--t5xxl/--vae do.
type Source struct {
	Model, CLIPL, CLIPG, T5, VAE string
	// Config is a diffusers repository folder (model_index.json, scheduler/, <component>/config.json —
	// weights not needed) whose configs replace those inferred from a single file's shapes, as
	// diffusers' from_single_file(config=…) does: for models whose head counts, rope axes or norm groups
	// differ from the released models' (shapes cannot tell them).
	Config string
	// LoRAs are merged into the weights, in order, as they stream (see Checkpoint.LoRAs).
	LoRAs []LoRA
}

// roleName is how errors name a component file.
var roleName = map[checkpoint.Role]string{
	checkpoint.RoleCLIPL: "CLIP-L", checkpoint.RoleCLIPG: "CLIP-G", checkpoint.RoleT5: "T5",
	checkpoint.RoleVAE: "VAE", checkpoint.RoleTransformer: "transformer",
}

// MissingError is Open's error for a checkpoint that lacks components the pipeline needs.
type MissingError struct {
	Variant string
	Roles   []checkpoint.Role
}

func (e *MissingError) Error() string {
	names := make([]string, len(e.Roles))
	for i, r := range e.Roles {
		names[i] = roleName[r]
	}
	list := names[len(names)-1]
	if len(names) > 1 {
		list = strings.Join(names[:len(names)-1], ", ") + " or " + list
	}
	return fmt.Sprintf("the %s checkpoint has no %s", e.Variant, list)
}

// Part is one component of a checkpoint, ready to build.
type Part struct {
	Role    checkpoint.Role
	Class   string
	Config  arch.Config
	Weights arch.Weights
	// Format is what was recognised ("BFL FLUX transformer", "diffusers", …); File the file it came from.
	Format, File string
	// Unused lists source tensors no builder reads (reported by inspect); DType the dominant source dtype.
	Unused []string
	DType  string
	// identity is the fingerprint of the part's source file(s).
	identity string
}

// Checkpoint is an opened Source: the family, every component, and what the compiled folder needs
// besides the graphs (model index, scheduler config, tokenizer folders).
type Checkpoint struct {
	// Family is "sd3" or "flux"; Variant "sd3", "sd3.5-large", "sd3.5-medium", "flux-dev", "flux-schnell"
	// or VariantFluxKontext.
	Family, Variant string
	Parts           map[checkpoint.Role]*Part
	// Folder is the diffusers folder the checkpoint came from ("" for single files): its model_index.json,
	// scheduler config and tokenizer folders are used as they are.
	Folder string
	// Notes are things the user should know (a file that replaced a bundled component, …).
	Notes []string
	// LoRAs are the LoRAs merged into the weights and what each patched.
	LoRAs     []AppliedLoRA
	files     []tensorFile
	loras     []*lora.File
	configDir string
}

// Close releases the open files.
func (c *Checkpoint) Close() error {
	var errs []error
	for _, f := range c.files {
		errs = append(errs, f.Close())
	}
	c.files = nil
	errs = append(errs, c.closeLoRAs())
	return errors.Join(errs...)
}

// IsCheckpoint reports whether path names a checkpoint rather than an ONNX export folder: a
// .safetensors/.sft file or sharded index, or a folder with model_index.json whose components hold
// safetensors weights and no model.onnx.
func IsCheckpoint(path string) bool {
	st, err := os.Stat(path)
	if err != nil || !st.IsDir() {
		return isSafetensorsName(path) // a missing .safetensors is still meant as a checkpoint
	}
	if _, err := os.Stat(filepath.Join(path, "model_index.json")); err != nil {
		return false
	}
	for _, comp := range []string{"transformer", "unet"} {
		if _, err := os.Stat(filepath.Join(path, comp, "model.onnx")); err == nil {
			return false
		}
	}
	w, _ := componentWeights(filepath.Join(path, "transformer"))
	return w != ""
}

func isSafetensorsName(p string) bool {
	p = strings.ToLower(p)
	return strings.HasSuffix(p, ".safetensors") || strings.HasSuffix(p, ".sft") ||
		strings.HasSuffix(p, ".safetensors.index.json")
}

// Open reads a Source's headers (no weights), recognises every component and checks that the pipeline
// has what it needs. The returned Checkpoint keeps the files open (memory-mapped) until Close.
func Open(src Source) (*Checkpoint, error) {
	c := &Checkpoint{Parts: map[checkpoint.Role]*Part{}, configDir: src.Config}
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	if src.Model == "" {
		return nil, errors.New("no checkpoint given")
	}
	st, err := os.Stat(src.Model)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		err = c.addFolder(src.Model)
	} else {
		err = c.addFile(src.Model, "")
	}
	if err != nil {
		return nil, err
	}
	for _, extra := range []struct {
		path string
		role checkpoint.Role
	}{{src.CLIPL, checkpoint.RoleCLIPL}, {src.CLIPG, checkpoint.RoleCLIPG}, {src.T5, checkpoint.RoleT5}, {src.VAE, checkpoint.RoleVAE}} {
		if extra.path == "" {
			continue
		}
		if err := c.addFile(extra.path, extra.role); err != nil {
			return nil, err
		}
	}
	if err := c.resolveFamily(); err != nil {
		return nil, err
	}
	if err := c.applyLoRAs(src.LoRAs); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// addFile detects the components in one file. With role set (a file given for one component), the file
// must hold that component, which replaces any bundled one.
func (c *Checkpoint) addFile(path string, role checkpoint.Role) error {
	f, err := openTensors(path)
	if err != nil {
		return err
	}
	c.files = append(c.files, f)
	hints, err := c.hints(role)
	if err != nil {
		return err
	}
	comps, err := checkpoint.DetectWith(f, hints)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	found := false
	for _, comp := range comps {
		if role != "" && comp.Role != role {
			if role == checkpoint.RoleCLIPG && comp.Role == checkpoint.RoleCLIPL || role == checkpoint.RoleCLIPL && comp.Role == checkpoint.RoleCLIPG {
				comp.Role = role // a CLIP named by its flag fills that slot whatever its width
			} else {
				return fmt.Errorf("%s, given as the %s file, holds a %s (%s)", path, roleName[role], roleName[comp.Role], comp.Format)
			}
		}
		found = true
		if old := c.Parts[comp.Role]; old != nil {
			c.Notes = append(c.Notes, fmt.Sprintf("%s from %s replaces the one in %s", comp.Role, path, old.File))
		}
		if comp.Role == checkpoint.RoleTransformer && c.Family == "" {
			c.Family = familyOfClass(comp.Class)
		}
		cfg, err := c.overrideConfig(comp.Role, arch.Config(comp.Config))
		if err != nil {
			return err
		}
		c.Parts[comp.Role] = &Part{Role: comp.Role, Class: comp.Class, Config: cfg,
			Weights: recipeWeights{src: f, recipes: comp.Tensors}, Format: comp.Format, File: path,
			Unused: comp.Unused, DType: dominantDType(comp.Tensors), identity: f.Fingerprint()}
	}
	if role != "" && !found {
		return fmt.Errorf("%s, given as the %s file, holds no %s", path, roleName[role], roleName[role])
	}
	return nil
}

// hints are what the detector cannot read from shapes: the family known so far, the role a file was
// given for, and — with a config folder — the head sizes, rope axes, norm groups and sample size its
// configs say.
func (c *Checkpoint) hints(role checkpoint.Role) (checkpoint.Hints, error) {
	h := checkpoint.Hints{Family: c.Family, Role: role}
	if c.configDir == "" {
		return h, nil
	}
	var index map[string]any
	b, err := os.ReadFile(filepath.Join(c.configDir, "model_index.json"))
	if err != nil {
		return h, fmt.Errorf("config folder: %w", err)
	}
	if err := json.Unmarshal(b, &index); err != nil {
		return h, fmt.Errorf("config folder: %s: %w", filepath.Join(c.configDir, "model_index.json"), err)
	}
	class, _ := index["_class_name"].(string)
	fam := familyOfPipeline(class)
	if h.Family == "" {
		h.Family = fam
	}
	h.HeadDim = map[checkpoint.Role]int{}
	for sub, r := range folderParts[fam] {
		cfg, err := arch.ReadConfig(filepath.Join(c.configDir, sub, "config.json"))
		if err != nil {
			continue
		}
		num := func(k string) int { v, _ := cfg[k].(float64); return int(v) }
		switch r {
		case checkpoint.RoleTransformer:
			h.HeadDim[r] = num("attention_head_dim")
			h.SampleSize = num("sample_size")
			if axes, ok := cfg["axes_dims_rope"].([]any); ok {
				for _, a := range axes {
					v, _ := a.(float64)
					h.AxesDimsRope = append(h.AxesDimsRope, int(v))
				}
			}
		case checkpoint.RoleCLIPL, checkpoint.RoleCLIPG:
			if heads := num("num_attention_heads"); heads > 0 {
				h.HeadDim[r] = num("hidden_size") / heads
			}
		case checkpoint.RoleVAE:
			h.NormNumGroups = num("norm_num_groups")
		}
	}
	return h, nil
}

// overrideConfig returns the config folder's config.json for a role when Source.Config has one, else
// the inferred config.
func (c *Checkpoint) overrideConfig(role checkpoint.Role, inferred arch.Config) (arch.Config, error) {
	if c.configDir == "" {
		return inferred, nil
	}
	for sub, r := range folderParts[c.Family] {
		if r != role {
			continue
		}
		path := filepath.Join(c.configDir, sub, "config.json")
		if _, err := os.Stat(path); err != nil {
			return inferred, nil
		}
		return arch.ReadConfig(path)
	}
	return inferred, nil
}

// folderParts are the diffusers folder's weight components and their roles.
var folderParts = map[string]map[string]checkpoint.Role{
	"sd3": {"transformer": checkpoint.RoleTransformer, "text_encoder": checkpoint.RoleCLIPL,
		"text_encoder_2": checkpoint.RoleCLIPG, "text_encoder_3": checkpoint.RoleT5, "vae": checkpoint.RoleVAE},
	"flux": {"transformer": checkpoint.RoleTransformer, "text_encoder": checkpoint.RoleCLIPL,
		"text_encoder_2": checkpoint.RoleT5, "vae": checkpoint.RoleVAE},
}

// addFolder reads a diffusers checkpoint folder: model_index.json names the pipeline; each component's
// config.json is used as it is and its safetensors (sharded or not) hold the canonical names.
func (c *Checkpoint) addFolder(dir string) error {
	var index map[string]any
	data, err := os.ReadFile(filepath.Join(dir, "model_index.json"))
	if err != nil {
		return fmt.Errorf("%s is not a diffusers checkpoint folder: %w", dir, err)
	}
	if err := json.Unmarshal(data, &index); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, "model_index.json"), err)
	}
	class, _ := index["_class_name"].(string)
	if c.Family = familyOfPipeline(class); c.Family == "" {
		return fmt.Errorf("%s: pipeline %q is not SD3 or FLUX (supported: StableDiffusion3Pipeline, FluxPipeline)", dir, class)
	}
	c.Folder = dir
	names := make([]string, 0, len(folderParts[c.Family]))
	for name := range folderParts[c.Family] {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		role := folderParts[c.Family][name]
		if pair, ok := index[name].([]any); !ok || len(pair) != 2 || pair[0] == nil {
			continue // absent, or [null, null] (SD3 without T5)
		}
		compDir := filepath.Join(dir, name)
		weights, err := componentWeights(compDir)
		if err != nil {
			return err
		}
		if weights == "" {
			return fmt.Errorf("%s: no *.safetensors weights (pytorch .bin files are not supported: convert them to safetensors)", compDir)
		}
		cfg, err := arch.ReadConfig(filepath.Join(compDir, "config.json"))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		f, err := openTensors(weights)
		if err != nil {
			return err
		}
		c.files = append(c.files, f)
		recipes := map[string]checkpoint.Recipe{}
		for _, n := range f.Names() {
			m, _ := f.Meta(n)
			recipes[n] = checkpoint.Recipe{Pieces: []checkpoint.Piece{{Tensor: n, Start: 0, End: -1}}, Shape: m.Shape, DType: m.DType}
		}
		aliasTiedWeights(recipes)
		classOf, _ := index[name].([]any)
		cls, _ := classOf[1].(string)
		c.Parts[role] = &Part{Role: role, Class: cls, Config: cfg, Weights: recipeWeights{src: f, recipes: recipes},
			Format: "diffusers folder", File: weights, DType: dominantDType(recipes), identity: f.Fingerprint()}
	}
	return nil
}

// aliasTiedWeights adds the names transformers ties to another: T5's encoder.embed_tokens.weight is
// shared.weight (files keep one of the two).
func aliasTiedWeights(r map[string]checkpoint.Recipe) {
	for _, pair := range [][2]string{{"shared.weight", "encoder.embed_tokens.weight"}} {
		a, aok := r[pair[0]]
		b, bok := r[pair[1]]
		switch {
		case aok && !bok:
			r[pair[1]] = a
		case bok && !aok:
			r[pair[0]] = b
		}
	}
}

// componentWeights finds a diffusers component folder's weights: the sharded index, else the single
// safetensors file (diffusion_pytorch_model.safetensors, model.safetensors); "" when there is none.
func componentWeights(dir string) (string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var index, single []string
	for _, e := range ents {
		n := e.Name()
		switch {
		case strings.HasSuffix(n, ".safetensors.index.json"):
			index = append(index, n)
		case strings.HasSuffix(n, ".safetensors") && !strings.Contains(n, "-of-"):
			single = append(single, n)
		}
	}
	// Prefer full-precision files over .fp16 variants, as diffusers does without variant="fp16".
	pick := func(names []string) string {
		isFP16 := func(n string) bool { return strings.Contains(n, ".fp16.") }
		sort.Slice(names, func(i, j int) bool {
			if isFP16(names[i]) != isFP16(names[j]) {
				return !isFP16(names[i])
			}
			return names[i] < names[j]
		})
		return filepath.Join(dir, names[0])
	}
	switch {
	case len(index) > 0:
		return pick(index), nil
	case len(single) > 0:
		return pick(single), nil
	}
	return "", nil
}

// resolveFamily settles the family and variant and checks that every component the pipeline needs is
// there, naming the option that supplies a missing one.
func (c *Checkpoint) resolveFamily() error {
	t := c.Parts[checkpoint.RoleTransformer]
	if t == nil {
		return errors.New("the checkpoint has no SD3 or FLUX transformer: the model file must be the transformer or bundle one")
	}
	c.Family = familyOfClass(t.Class)
	var need []checkpoint.Role
	switch c.Family {
	case "flux":
		c.Variant = "flux-schnell"
		if g, _ := t.Config["guidance_embeds"].(bool); g {
			c.Variant = "flux-dev"
			if why := c.kontextHint(t.File); why != "" {
				c.Variant = VariantFluxKontext
				c.Notes = append(c.Notes, fmt.Sprintf("FLUX.1 Kontext (%s): the compiled model takes reference pictures (--ref-image)", why))
			}
		}
		need = []checkpoint.Role{checkpoint.RoleCLIPL, checkpoint.RoleT5, checkpoint.RoleVAE}
	case "sd3":
		c.Variant = "sd3"
		if q, _ := t.Config["qk_norm"].(string); q != "" {
			c.Variant = "sd3.5-large"
			if d, _ := t.Config["dual_attention_layers"].([]any); len(d) > 0 {
				c.Variant = "sd3.5-medium"
			}
		}
		need = []checkpoint.Role{checkpoint.RoleCLIPL, checkpoint.RoleCLIPG, checkpoint.RoleVAE}
	default:
		return fmt.Errorf("transformer class %q is not SD3 or FLUX", t.Class)
	}
	var missing []checkpoint.Role
	for _, r := range need {
		if c.Parts[r] == nil {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		return &MissingError{Variant: c.Variant, Roles: missing}
	}
	return nil
}

// familyOfPipeline is the family of a model_index.json _class_name.
func familyOfPipeline(class string) string {
	switch {
	case strings.HasPrefix(class, "StableDiffusion3"):
		return "sd3"
	case strings.HasPrefix(class, "Flux"):
		return "flux"
	}
	return ""
}

func familyOfClass(class string) string {
	switch {
	case strings.HasPrefix(class, "SD3"):
		return "sd3"
	case strings.HasPrefix(class, "Flux"):
		return "flux"
	}
	return ""
}

// dominantDType is the dtype holding most of a component's tensors.
func dominantDType(r map[string]checkpoint.Recipe) string {
	count := map[string]int{}
	best := ""
	for _, rec := range r {
		count[rec.DType]++
		if best == "" || count[rec.DType] > count[best] || count[rec.DType] == count[best] && rec.DType < best {
			best = rec.DType
		}
	}
	return best
}

// VariantFluxKontext is a FLUX.1 Kontext checkpoint: FLUX.1-dev's architecture (Kontext's reference
// tokens are more rows of the same transformer), so its tensors cannot tell it from dev. A single file
// is taken for Kontext when --model-config's model_index.json names FluxKontextPipeline (diffusers'
// from_single_file(config=…)) or its file name says "kontext" (flux1-kontext-dev.safetensors, as BFL
// and ComfyUI name it); its compiled folder then gets a FluxKontextPipeline model index. Without
// reference pictures Kontext draws as FLUX.1-dev does, so a file taken for Kontext loses nothing. A
// diffusers folder keeps its own model_index.json.
const VariantFluxKontext = "flux-kontext-dev"

// fluxKontextIndex is FLUX.1-Kontext-dev's model_index.json: FLUX.1-dev's components under another class.
var fluxKontextIndex = strings.Replace(fluxIndex, `"FluxPipeline"`, `"FluxKontextPipeline"`, 1)

// kontextHint says why a single-file FLUX dev-type transformer is Kontext ("" when it is not).
func (c *Checkpoint) kontextHint(file string) string {
	if c.Folder != "" {
		return ""
	}
	if c.configDir != "" {
		var mi struct {
			Class string `json:"_class_name"`
		}
		if b, err := os.ReadFile(filepath.Join(c.configDir, "model_index.json")); err == nil && json.Unmarshal(b, &mi) == nil {
			if mi.Class == "FluxKontextPipeline" {
				return "--model-config's model_index.json names FluxKontextPipeline"
			}
		}
	}
	if strings.Contains(strings.ToLower(filepath.Base(file)), "kontext") {
		return fmt.Sprintf("the file name %s says so", filepath.Base(file))
	}
	return ""
}
