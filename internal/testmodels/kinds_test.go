package testmodels

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/pipeline"
	"github.com/rflowrt/rflow/scheduler"
	"github.com/rflowrt/rflow/textenc"
)

func TestKinds(t *testing.T) {
	var names []string
	for _, k := range Kinds() {
		names = append(names, string(k))
		if got, err := ParseKind(string(k)); err != nil || got != k {
			t.Errorf("ParseKind(%q) = %q, %v", k, got, err)
		}
	}
	if want := []string{"sd3", "sd3-no-t5", "flux-dev", "flux-schnell"}; !slices.Equal(names, want) {
		t.Errorf("Kinds() = %v, want %v", names, want)
	}
	if _, err := ParseKind("sdxl"); err == nil || !strings.Contains(err.Error(), "flux-schnell") {
		t.Errorf("ParseKind(sdxl): %v, want an error listing the kinds", err)
	}
	if KindSD3NoT5.HasT5() || !KindFluxSchnell.HasT5() || KindSD3.IsFlux() || !KindFluxDev.IsFlux() {
		t.Error("HasT5/IsFlux wrong")
	}
	for k, n := range map[Kind]int{KindSD3: 256, KindSD3NoT5: 0, KindFluxDev: 512, KindFluxSchnell: 256} {
		if k.T5Length() != n {
			t.Errorf("%s T5Length %d, want %d", k, k.T5Length(), n)
		}
	}
}

// TestDimsConsistent checks the joined widths for every kind and size: T5 = joint width; SD3's CLIP-L
// and CLIP-G (different widths) fit in it with room for padding and their projections make the
// pooled width; FLUX's pooled width is CLIP's hidden size. It also checks the check catches mistakes.
func TestDimsConsistent(t *testing.T) {
	for _, k := range Kinds() {
		for _, s := range []Size{SizeTiny, SizeBench} {
			d, err := DimsFor(Options{Kind: k, Size: s})
			if err != nil {
				t.Fatalf("%s %s: %v", k, s, err)
			}
			if d.CLIPL.Vocab != 49408 || d.T5.Vocab != 32128 || d.CLIPL.MaxPositions != 77 {
				t.Errorf("%s %s: vocabularies %d/%d, positions %d", k, s, d.CLIPL.Vocab, d.T5.Vocab, d.CLIPL.MaxPositions)
			}
			if k.IsFlux() {
				if d.Flux.JointDim != d.T5.DModel || d.Flux.PooledDim != d.CLIPL.Hidden || d.CLIPL.Projection != 0 ||
					d.Flux.Guidance != (k == KindFluxDev) {
					t.Errorf("%s %s: %+v", k, s, d)
				}
				continue
			}
			l, g := d.CLIPL, d.CLIPG
			if d.SD3.JointDim != d.T5.DModel || l.Hidden == g.Hidden || l.Hidden+g.Hidden >= d.SD3.JointDim ||
				d.SD3.PooledDim != l.Projection+g.Projection || l.Projection == 0 || g.Projection == 0 {
				t.Errorf("%s %s: CLIP %d(%d)+%d(%d), T5 %d, joint %d, pooled %d", k, s, l.Hidden, l.Projection,
					g.Hidden, g.Projection, d.T5.DModel, d.SD3.JointDim, d.SD3.PooledDim)
			}
		}
	}
	sd3, _ := DimsFor(Options{Kind: KindSD3})
	flux, _ := DimsFor(Options{Kind: KindFluxDev})
	for name, broken := range map[string]func() (Dims, Kind){
		"sd3 joint≠T5":      func() (Dims, Kind) { d := sd3; d.SD3.JointDim++; return d, KindSD3 },
		"sd3 CLIP too wide": func() (Dims, Kind) { d := sd3; d.CLIPG.Hidden = d.SD3.JointDim; return d, KindSD3 },
		"sd3 pooled": func() (Dims, Kind) {
			d := sd3
			d.SD3.PooledDim = d.CLIPL.Hidden
			d.CLIPG.Projection = 0
			return d, KindSD3
		},
		"flux joint≠T5":       func() (Dims, Kind) { d := flux; d.T5.DModel++; return d, KindFluxDev },
		"flux pooled≠CLIP":    func() (Dims, Kind) { d := flux; d.Flux.PooledDim++; return d, KindFluxDev },
		"flux projected CLIP": func() (Dims, Kind) { d := flux; d.CLIPL.Projection = 8; return d, KindFluxDev },
	} {
		if d, k := broken(); d.check(k) == nil {
			t.Errorf("%s: check passed", name)
		}
	}
}

func TestOptionsErrors(t *testing.T) {
	for _, o := range []Options{
		{},
		{Kind: "sdxl"},
		{Kind: KindSD3, Size: "huge"},
		{Kind: KindSD3, IDs: onnx.Float},
		{Kind: KindSD3, Precision: onnx.BFloat16},
		{Kind: KindSD3, SharedDir: t.TempDir()},
	} {
		if err := Write(t.TempDir(), o); err == nil {
			t.Errorf("Write(%+v): no error", o)
		}
	}
}

// TestConfigSources: patchJSON with nothing to set gives every shared config back byte for byte (the
// format is kept), and the built-in stand-ins give what rflow reads from the real ones — the pipeline
// family, components, scheduler config and VAE factors.
func TestConfigSources(t *testing.T) {
	tok := findSharedTokenizers()
	if tok == "" {
		t.Skip("shared/ not found beside the module root: cannot compare the built-in configs with shared/model-configs")
	}
	shared := os.DirFS(filepath.Join(filepath.Dir(tok), "model-configs"))
	for p := range builtinConfigs {
		data, err := fs.ReadFile(shared, p)
		if err != nil {
			t.Fatalf("shared/model-configs lacks %s: %v", p, err)
		}
		if again, err := patchJSON(data, nil); err != nil || !bytes.Equal(again, data) {
			t.Errorf("%s: patchJSON without changes: %v\n%s", p, err, again)
		}
		var real, builtin map[string]any
		_ = json.Unmarshal(data, &real)
		if err := json.Unmarshal(builtinConfigs[p].Data, &builtin); err != nil {
			t.Fatalf("built-in %s: %v", p, err)
		}
		for key, v := range builtin {
			if !reflect.DeepEqual(real[key], v) {
				t.Errorf("built-in %s: %s = %v, the real config has %v", p, key, v, real[key])
			}
		}
		if strings.HasSuffix(p, "model_index.json") || strings.Contains(p, "scheduler") {
			for key := range real {
				if _, ok := builtin[key]; !ok && !strings.HasPrefix(key, "_diffusers") {
					t.Errorf("built-in %s lacks %s", p, key)
				}
			}
		}
	}
}

func TestPatchJSON(t *testing.T) {
	got, err := patchJSON([]byte(`{"b": 1, "a": [1, 2], "c": {"x": 1.50}}`), []kv{{"a", []int{3}}, {"z", nil}, {"b", "s<t>"}})
	want := "{\n  \"b\": \"s<t>\",\n  \"a\": [\n    3\n  ],\n  \"c\": {\n    \"x\": 1.50\n  },\n  \"z\": null\n}\n"
	if err != nil || string(got) != want {
		t.Errorf("patchJSON = %q, %v; want %q", got, err, want)
	}
	for _, bad := range []string{`[1]`, `{"a": }`, ``} {
		if _, err := patchJSON([]byte(bad), nil); err == nil {
			t.Errorf("patchJSON(%q): no error", bad)
		}
	}
}

// TestGeneratedTokenizers checks the generated vocabulary: every known word is one CLIP token (the
// merges are complete) and one T5 piece, other text still encodes, and the files are the same every
// time.
func TestGeneratedTokenizers(t *testing.T) {
	dir := t.TempDir()
	if err := writeTokenizers(dir, KindSD3, ""); err != nil {
		t.Fatal(err)
	}
	clip, err := textenc.LoadCLIPTokenizer(filepath.Join(dir, "tokenizer"), textenc.CLIPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t5, err := textenc.LoadT5Tokenizer(filepath.Join(dir, "tokenizer_3"), textenc.T5Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range vocabWords {
		if ids := clip.Encode(w); len(ids) != 3 || clip.Token(ids[1]) != w+"</w>" {
			t.Errorf("CLIP %q → %v, want BOS, %q, EOS", w, ids, w+"</w>")
		}
		if ids := t5.Encode(w); len(ids) != 2 || ids[1] != 1 {
			t.Errorf("T5 %q → %v, want one piece and </s>", w, ids)
		}
	}
	if ids := clip.Encode("Zebra!? ünï"); ids[0] != 49406 || ids[len(ids)-1] != 49407 || len(ids) < 6 {
		t.Errorf("CLIP unknown text → %v", ids)
	}
	if ids := t5.Encode("Zebra 42"); len(ids) < 4 || slices.Contains(ids, 2) {
		t.Errorf("T5 printable text → %v (2 is <unk>)", ids)
	}
	dir2 := t.TempDir()
	if err := writeTokenizers(dir2, KindSD3, ""); err != nil {
		t.Fatal(err)
	}
	if h1, _ := FolderHash(dir); h1 != must(FolderHash(dir2)) {
		t.Error("generated tokenizers differ between writes")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestSharedTokenizers checks the real files are copied unchanged, with CLIP-G's configs in SD3's
// tokenizer_2 and the FLUX T5 files in FLUX's tokenizer_2.
func TestSharedTokenizers(t *testing.T) {
	shared := findSharedTokenizers()
	if shared == "" {
		t.Skip("shared/tokenizers not found beside the module root")
	}
	for _, k := range []Kind{KindSD3, KindFluxDev} {
		dir := t.TempDir()
		if err := writeTokenizers(dir, k, shared); err != nil {
			t.Fatal(err)
		}
		for _, td := range tokenizerDirs(k) {
			for _, f := range td.shared {
				got, _ := os.ReadFile(filepath.Join(dir, td.dir, f.name))
				want, _ := os.ReadFile(filepath.Join(shared, f.from))
				if len(want) == 0 || !bytes.Equal(got, want) {
					t.Errorf("%s %s/%s is not a copy of %s", k, td.dir, f.name, f.from)
				}
			}
		}
		tok2, _ := os.ReadFile(filepath.Join(dir, "tokenizer_2", "tokenizer_config.json"))
		if want := map[Kind]string{KindSD3: `"pad_token": "!"`, KindFluxDev: `"legacy": false`}[k]; !bytes.Contains(tok2, []byte(want)) {
			t.Errorf("%s tokenizer_2/tokenizer_config.json lacks %s", k, want)
		}
	}
}

// TestWriteReplaces writes a folder over another of the same kind with other options: the result is
// the same as a fresh write (no stale external data or tokenizer files).
func TestWriteReplaces(t *testing.T) {
	dir, fresh := t.TempDir(), t.TempDir()
	first := Options{Kind: KindFluxSchnell, ExternalData: true, Seed: 3}
	second := Options{Kind: KindFluxSchnell, GeneratedVocab: true}
	if err := Write(dir, first); err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, second); err != nil {
		t.Fatal(err)
	}
	if err := Write(fresh, second); err != nil {
		t.Fatal(err)
	}
	if must(FolderHash(dir)) != must(FolderHash(fresh)) {
		t.Errorf("rewritten folder %q, fresh %q", listFiles(t, dir), listFiles(t, fresh))
	}
}

func TestFolderHash(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, s string) {
		if err := writeFile(dir, rel, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	write("a/x.json", "1")
	write("b", "22")
	h0 := must(FolderHash(dir))
	seen := map[string]string{h0: "start"}
	for _, step := range []struct {
		name   string
		change func()
	}{
		{"content", func() { write("a/x.json", "2") }},
		{"rename", func() { os.Rename(filepath.Join(dir, "b"), filepath.Join(dir, "c")) }},
		{"split", func() { write("c", "2"); write("a/x.json", "22") }}, // same bytes, moved between files
		{"added", func() { write("a/y", "") }},
	} {
		step.change()
		h := must(FolderHash(dir))
		if prev, ok := seen[h]; ok {
			t.Errorf("after %s the hash equals the one after %s", step.name, prev)
		}
		seen[h] = step.name
	}
	if _, err := FolderHash(filepath.Join(dir, "missing")); err == nil {
		t.Error("FolderHash of a missing folder: no error")
	}
}

// TestWriteWithoutShared: away from shared/, Write uses the generated vocabulary and the built-in
// configs, and the folder still reads as the right pipeline with the real scheduler and VAE factors.
func TestWriteWithoutShared(t *testing.T) {
	t.Chdir(t.TempDir()) // no go.mod above: shared/ is not found
	for _, k := range []Kind{KindSD3NoT5, KindFluxSchnell} {
		dir := filepath.Join(t.TempDir(), string(k))
		if err := Write(dir, Options{Kind: k, Size: SizeTiny, GeneratedVocab: true}); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		mi, err := pipeline.ReadModelIndex(dir)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := pipeline.ReadSchedulerConfig(dir)
		if err != nil {
			t.Fatal(err)
		}
		var vae map[string]any
		data, _ := os.ReadFile(filepath.Join(dir, "vae_decoder", "config.json"))
		if err := json.Unmarshal(data, &vae); err != nil {
			t.Fatal(err)
		}
		wantFamily, wantShift, wantScale := scheduler.FamilySD3, 3.0, 1.5305
		if k.IsFlux() {
			wantFamily, wantShift, wantScale = scheduler.FamilyFLUX, 1.0, 0.3611
		}
		if mi.Family != wantFamily || cfg.Shift != wantShift || vae["scaling_factor"] != wantScale {
			t.Errorf("%s: family %s, shift %v, scaling_factor %v", k, mi.Family, cfg.Shift, vae["scaling_factor"])
		}
		if _, ok := mi.Components["text_encoder_3"]; ok {
			t.Errorf("%s: text_encoder_3 listed", k)
		}
	}
}
