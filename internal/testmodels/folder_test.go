package testmodels

import (
	"encoding/json"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/pipeline"
	"github.com/rflowrt/rflow/scheduler"
	"github.com/rflowrt/rflow/textenc"
)

// folderVariant is one way of writing each kind; together they cover every option value.
type folderVariant struct {
	name      string
	ids, prec onnx.DataType
	ext, gen  bool
}

var folderVariants = []folderVariant{
	{"base", onnx.Int64, onnx.Float, false, false},
	{"int32-generated-vocab", onnx.Int32, onnx.Float, false, true},
	{"fp16", onnx.Int64, onnx.Float16, false, false},
	{"external-data", onnx.Int64, onnx.Float, true, false},
}

func (v folderVariant) options(k Kind) Options {
	return Options{Kind: k, IDs: v.ids, Precision: v.prec, ExternalData: v.ext, GeneratedVocab: v.gen}
}

// TestFolders writes every kind in every variant once and checks the folder from each side: its
// files, what pipeline reads from it, its configs, its tokenizers, and one run of every model.
func TestFolders(t *testing.T) {
	root := t.TempDir()
	realTok := findSharedTokenizers() != ""
	if !realTok {
		t.Log("shared/tokenizers not found: every variant uses the generated vocabulary")
	}
	for _, k := range Kinds() {
		for _, v := range folderVariants {
			t.Run(string(k)+"/"+v.name, func(t *testing.T) {
				t.Parallel()
				o := v.options(k)
				dir := filepath.Join(root, string(k)+"-"+v.name)
				start := time.Now()
				if err := Write(dir, o); err != nil {
					t.Fatal(err)
				}
				t.Logf("wrote in %v", time.Since(start).Round(time.Millisecond))
				d, err := DimsFor(o)
				if err != nil {
					t.Fatal(err)
				}
				f := folder{t: t, dir: dir, k: k, o: o, d: d}
				t.Run("files", func(t *testing.T) { f.t = t; f.checkFiles(realTok && !v.gen) })
				t.Run("index", func(t *testing.T) { f.t = t; f.checkIndex() })
				t.Run("configs", func(t *testing.T) { f.t = t; f.checkConfigs() })
				t.Run("tokenizers", func(t *testing.T) { f.t = t; f.checkTokenizers() })
				t.Run("models", func(t *testing.T) { f.t = t; f.runModels() })
				t.Run("conditioning", func(t *testing.T) { f.t = t; f.runConditioning() })
				if v.name == "base" {
					t.Run("deterministic", func(t *testing.T) { f.t = t; f.checkDeterministic(root) })
				}
			})
		}
	}
}

// folder is one written folder under test.
type folder struct {
	t   *testing.T
	dir string
	k   Kind
	o   Options
	d   Dims
}

func (f folder) path(rel string) string { return filepath.Join(f.dir, filepath.FromSlash(rel)) }

// expectedFiles is the exact file list of a folder, sorted.
func expectedFiles(k Kind, ext, realTok bool) []string {
	files := []string{"model_index.json", "scheduler/scheduler_config.json"}
	add := func(dir string, names ...string) {
		for _, n := range names {
			files = append(files, path.Join(dir, n))
		}
	}
	clip := []string{"merges.txt", "special_tokens_map.json", "tokenizer_config.json", "vocab.json"}
	t5 := []string{"special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"}
	if realTok {
		clip, t5 = append(clip, "tokenizer.json"), append(t5, "spiece.model")
	}
	model := func(dir string, heavy bool) {
		add(dir, "config.json", "model.onnx")
		if heavy && ext {
			add(dir, "model.onnx_data")
		}
	}
	add("tokenizer", clip...)
	model("text_encoder", false)
	if k.IsFlux() {
		add("tokenizer_2", t5...)
		model("text_encoder_2", true)
	} else {
		add("tokenizer_2", clip...)
		model("text_encoder_2", false)
		if k.HasT5() {
			add("tokenizer_3", t5...)
			model("text_encoder_3", true)
		}
	}
	model("transformer", true)
	model("vae_decoder", false)
	model("vae_encoder", false)
	slices.Sort(files)
	return files
}

// listFiles lists the regular files under dir, slash-separated and sorted.
func listFiles(t testing.TB, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}

func (f folder) checkFiles(realTok bool) {
	want := expectedFiles(f.k, f.o.ExternalData, realTok)
	if got := listFiles(f.t, f.dir); !slices.Equal(got, want) {
		f.t.Errorf("files:\n got %q\nwant %q", got, want)
	}
	for _, name := range listFiles(f.t, f.dir) {
		if path.Base(name) != "model.onnx" {
			continue
		}
		info, err := onnx.ReadInfo(f.path(name))
		if err != nil {
			f.t.Fatal(err)
		}
		external := slices.Contains(want, path.Dir(name)+"/model.onnx_data")
		if info.ExternalData != external || (external && !slices.Equal(info.ExternalFiles, []string{"model.onnx_data"})) {
			f.t.Errorf("%s: external data %t %v, want %t", name, info.ExternalData, info.ExternalFiles, external)
		}
	}
}

func (f folder) checkIndex() {
	mi, err := pipeline.ReadModelIndex(f.dir)
	if err != nil {
		f.t.Fatal(err)
	}
	wantClass, wantFamily := "StableDiffusion3Pipeline", scheduler.FamilySD3
	want := []string{"scheduler", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "transformer", "vae"}
	if f.k.IsFlux() {
		wantClass, wantFamily = "FluxPipeline", scheduler.FamilyFLUX
	} else if f.k.HasT5() {
		want = append(want, "text_encoder_3", "tokenizer_3")
	}
	slices.Sort(want)
	if got := slices.Sorted(maps.Keys(mi.Components)); mi.ClassName != wantClass || mi.Family != wantFamily || !slices.Equal(got, want) {
		f.t.Errorf("model index: %s %v %v, want %s %v %v", mi.ClassName, mi.Family, got, wantClass, wantFamily, want)
	}
	cfg, err := pipeline.ReadSchedulerConfig(f.dir)
	if err != nil {
		f.t.Fatal(err)
	}
	wantShift, wantDynamic := 3.0, f.k == KindFluxDev
	if f.k == KindFluxSchnell {
		wantShift = 1
	}
	if cfg.Shift != wantShift || cfg.UseDynamicShifting != wantDynamic || cfg.NumTrainTimesteps != 1000 {
		f.t.Errorf("scheduler: shift %g dynamic %t steps %d, want %g %t 1000", cfg.Shift, cfg.UseDynamicShifting,
			cfg.NumTrainTimesteps, wantShift, wantDynamic)
	}
}

// readJSON reads a JSON object.
func readJSON(t testing.TB, p string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return m
}

// sizeKeys are the config keys a fixture may change from the real config, by component.
var sizeKeys = map[string][]string{
	"clip": {"hidden_act", "hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers", "projection_dim"},
	"t5":   {"d_ff", "d_kv", "d_model", "num_decoder_layers", "num_heads", "num_layers"},
	"transformer": {"attention_head_dim", "axes_dims_rope", "caption_projection_dim", "joint_attention_dim",
		"num_attention_heads", "num_layers", "num_single_layers", "pooled_projection_dim", "pos_embed_max_size", "sample_size"},
	"vae": {"block_out_channels", "layers_per_block", "norm_num_groups"},
}

// configKind is the sizeKeys entry of a component folder.
func configKind(k Kind, dir string) string {
	switch {
	case strings.HasPrefix(dir, "vae"):
		return "vae"
	case dir == "transformer":
		return "transformer"
	case dir == "text_encoder_3" || (k.IsFlux() && dir == "text_encoder_2"):
		return "t5"
	}
	return "clip"
}

func (f folder) checkConfigs() {
	cfg := map[string]map[string]any{}
	for _, c := range f.d.components(f.k) {
		got := readJSON(f.t, f.path(c.dir+"/config.json"))
		realPath := f.k.repo() + strings.Replace(c.dir, "vae_decoder", "vae", 1)
		real := readConfigJSON(f.t, f.o, strings.Replace(realPath, "vae_encoder", "vae", 1)+"/config.json")
		allowed := sizeKeys[configKind(f.k, c.dir)]
		for key, v := range got {
			if rv, ok := real[key]; (!ok || !reflect.DeepEqual(rv, v)) && !slices.Contains(allowed, key) {
				f.t.Errorf("%s/config.json: %s = %v, the real config has %v", c.dir, key, v, rv)
			}
		}
		for key := range real {
			if _, ok := got[key]; !ok {
				f.t.Errorf("%s/config.json lacks %s", c.dir, key)
			}
		}
		cfg[c.dir] = got
	}
	f.checkWidths(cfg)
}

// readConfigJSON reads a config from the source Write patched (shared/model-configs or the built-in ones).
func readConfigJSON(t testing.TB, o Options, p string) map[string]any {
	t.Helper()
	configs, _, err := o.configSource()
	if err != nil {
		t.Fatal(err)
	}
	data, err := fs.ReadFile(configs, p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// checkWidths checks, from the configs alone, the widths the pipelines join: SD3's CLIP-L and CLIP-G
// hidden states fit in the T5 width (= joint_attention_dim) and their projections make the pooled
// width; FLUX's T5 width is the joint width and CLIP's hidden size the pooled width.
func (f folder) checkWidths(cfg map[string]map[string]any) {
	num := func(dir, key string) int {
		v, ok := cfg[dir][key].(float64)
		if !ok {
			f.t.Fatalf("%s/config.json: %s is %v", dir, key, cfg[dir][key])
		}
		return int(v)
	}
	tr := "transformer"
	joint, pooled := num(tr, "joint_attention_dim"), num(tr, "pooled_projection_dim")
	vae := cfg["vae_decoder"]
	wantScale, wantShift := 1.5305, 0.0609
	if f.k.IsFlux() {
		wantScale, wantShift = 0.3611, 0.1159
		if joint != num("text_encoder_2", "d_model") || pooled != num("text_encoder", "hidden_size") {
			f.t.Errorf("flux widths: joint %d, T5 %d; pooled %d, CLIP %d", joint, num("text_encoder_2", "d_model"),
				pooled, num("text_encoder", "hidden_size"))
		}
		if cfg[tr]["guidance_embeds"] != (f.k == KindFluxDev) {
			f.t.Errorf("guidance_embeds %v for %s", cfg[tr]["guidance_embeds"], f.k)
		}
	} else {
		l, g := num("text_encoder", "hidden_size"), num("text_encoder_2", "hidden_size")
		if l == g || l+g >= joint || pooled != num("text_encoder", "projection_dim")+num("text_encoder_2", "projection_dim") {
			f.t.Errorf("sd3 widths: CLIP %d+%d vs joint %d; pooled %d", l, g, joint, pooled)
		}
		if f.k.HasT5() && joint != num("text_encoder_3", "d_model") {
			f.t.Errorf("sd3 joint %d ≠ T5 %d", joint, num("text_encoder_3", "d_model"))
		}
	}
	if vae["scaling_factor"] != wantScale || vae["shift_factor"] != wantShift || !reflect.DeepEqual(vae, cfg["vae_encoder"]) {
		f.t.Errorf("vae configs: scaling %v shift %v, want %v %v (encoder and decoder equal)", vae["scaling_factor"],
			vae["shift_factor"], wantScale, wantShift)
	}
}

// loadTokenizers loads the folder's tokenizers: CLIP-L, then CLIP-G (SD3) and T5 (nil without).
func (f folder) loadTokenizers() (clipL, clipG *textenc.CLIPTokenizer, t5 *textenc.T5Tokenizer) {
	var err error
	if clipL, err = textenc.LoadCLIPTokenizer(f.path("tokenizer"), textenc.CLIPOptions{}); err != nil {
		f.t.Fatal(err)
	}
	t5Dir := "tokenizer_2"
	if !f.k.IsFlux() {
		if clipG, err = textenc.LoadCLIPTokenizer(f.path("tokenizer_2"), textenc.CLIPOptions{}); err != nil {
			f.t.Fatal(err)
		}
		t5Dir = "tokenizer_3"
	}
	if f.k.HasT5() {
		if t5, err = textenc.LoadT5Tokenizer(f.path(t5Dir), textenc.T5Options{}); err != nil {
			f.t.Fatal(err)
		}
	}
	return clipL, clipG, t5
}

func (f folder) checkTokenizers() {
	clipL, clipG, t5 := f.loadTokenizers()
	const prompt = "a photo of a cat"
	ids := clipL.Encode(prompt)
	if clipL.BOS() != 49406 || clipL.EOS() != 49407 || clipL.PadID() != 49407 || clipL.MaxLength() != 77 ||
		ids[0] != 49406 || ids[len(ids)-1] != 49407 {
		f.t.Errorf("CLIP-L: bos %d eos %d pad %d max %d, ids %v", clipL.BOS(), clipL.EOS(), clipL.PadID(), clipL.MaxLength(), ids)
	}
	var text strings.Builder
	for _, id := range ids[1 : len(ids)-1] {
		text.WriteString(strings.TrimSuffix(clipL.Token(id), "</w>"))
	}
	if text.String() != "aphotoofacat" || len(ids) != 7 { // one token per word, real or generated
		f.t.Errorf("CLIP-L ids %v spell %q", ids, text.String())
	}
	if clipG != nil && (clipG.PadID() != 0 || !slices.Equal(clipG.Encode(prompt), ids)) {
		f.t.Errorf("CLIP-G: pad %d, ids %v (CLIP-L %v)", clipG.PadID(), clipG.Encode(prompt), ids)
	}
	if t5 != nil {
		ids := t5.Encode(prompt)
		if len(ids) < 2 || ids[len(ids)-1] != 1 || t5.PadID() != 0 || slices.Contains(ids, 2) {
			f.t.Errorf("T5: ids %v pad %d", ids, t5.PadID())
		}
	}
	vocab := clipL.VocabSize()
	if clipG != nil {
		vocab = max(vocab, clipG.VocabSize())
	}
	if vocab > f.d.CLIPL.Vocab || vocab > f.d.CLIPG.Vocab && clipG != nil {
		f.t.Errorf("CLIP tokenizer ids up to %d exceed the encoders' vocabularies %d, %d", vocab, f.d.CLIPL.Vocab, f.d.CLIPG.Vocab)
	}
	if t5 != nil && t5.VocabSize() > f.d.T5.Vocab {
		f.t.Errorf("T5 tokenizer ids up to %d exceed the encoder's vocabulary %d", t5.VocabSize(), f.d.T5.Vocab)
	}
}
