package pipeline

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/testmodels"
	"github.com/rflowrt/rflow/textenc"
)

// inspectFixture copies a cached fixture folder to a temporary folder the test may break.
func inspectFixture(t *testing.T, o testmodels.Options) string {
	t.Helper()
	src := testmodels.Cached(t, o)
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// tvi declares a tensor: dims are ints (fixed) or strings (symbolic).
func tvi(name string, typ onnx.DataType, dims ...any) onnx.ValueInfo {
	v := onnx.ValueInfo{Name: name, Type: typ, Dims: []onnx.Dim{}}
	for _, d := range dims {
		switch d := d.(type) {
		case int:
			v.Dims = append(v.Dims, onnx.Fixed(int64(d)))
		case string:
			v.Dims = append(v.Dims, onnx.Sym(d))
		}
	}
	return v
}

// writeTestGraph replaces dir/component/model.onnx by a graph with the given signature (each output is
// an Identity of the first input; the signature is all Open reads).
func writeTestGraph(t *testing.T, path string, in, out []onnx.ValueInfo) {
	t.Helper()
	b := onnx.NewBuilder("signature", 17)
	for _, v := range in {
		b.Input(v.Name, v.Type, v.Dims...)
	}
	for _, v := range out {
		b.Output(b.Op("Identity", []string{in[0].Name}), v.Name, v.Type, v.Dims...)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(filepath.Join(filepath.Dir(path), "model.onnx_data"))
	if err := b.Model().WriteFile(path, onnx.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
}

func mustOpen(t *testing.T, dir string) *Model {
	t.Helper()
	m, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

const f32, f64, i64 = onnx.Float, onnx.Double, onnx.Int64

// NVIDIA's TensorRT demo (and onnxruntime's SD3 demo) MMDiT: sample, sigma, c_crossattn, y → latent,
// with static shapes; the fixture's encoders are 96 (T5) and 32+48 (CLIP) wide.
func TestOpenNVIDIASD3(t *testing.T) {
	dir := inspectFixture(t, testmodels.Options{Kind: testmodels.KindSD3})
	writeTestGraph(t, filepath.Join(dir, "transformer", "model.onnx"),
		[]onnx.ValueInfo{tvi("sample", f32, 2, 16, 128, 96), tvi("sigma", f32, 2), tvi("c_crossattn", f32, 2, 154, 96), tvi("y", f32, 2, 80)},
		[]onnx.ValueInfo{tvi("latent", f32, 2, 16, 128, 96)})
	m := mustOpen(t, dir)
	want := TransformerIO{HiddenStates: "sample", Timestep: "sigma", EncoderHiddenStates: "c_crossattn", Pooled: "y",
		Output: "latent", TimestepScale: 1.0 / 1000, FixedHeight: 128, FixedWidth: 96}
	if m.Transformer != want || m.JointDim != 96 || m.PooledDim != 80 || m.InChannels != 16 {
		t.Errorf("got %+v (joint %d, pooled %d, in %d)\nwant %+v", m.Transformer, m.JointDim, m.PooledDim, m.InChannels, want)
	}
}

func TestOpenSD3SkipLayers(t *testing.T) {
	dir := inspectFixture(t, testmodels.Options{Kind: testmodels.KindSD3NoT5})
	writeTestGraph(t, filepath.Join(dir, "transformer", "model.onnx"),
		[]onnx.ValueInfo{tvi("hidden_states", f32, "b", 16, "h", "w"), tvi("encoder_hidden_states", f32, "b", "s", 96),
			tvi("pooled_projections", f32, "b", 80), tvi("timestep", f32, "b"), tvi("skip_layers", i64, "n")},
		[]onnx.ValueInfo{tvi("out_hidden_states", f32, "b", 16, "h", "w")})
	if m := mustOpen(t, dir); m.Transformer.SkipLayers != "skip_layers" || m.Transformer.TimestepScale != 1 || m.Transformer.FixedHeight != 0 {
		t.Errorf("%+v", m.Transformer)
	}
}

// fluxInputs are a FLUX transformer's inputs in Optimum/OnnxStack order with the fixture's widths
// (joint 64, pooled 32), the ids as given, and names replaced by names[i] where non-empty.
func fluxInputs(ids onnx.DataType, idsDims []any, tokens any, guidance bool, names ...string) []onnx.ValueInfo {
	in := []onnx.ValueInfo{tvi("hidden_states", f32, "b", tokens, 64), tvi("encoder_hidden_states", f32, "b", "s", 64),
		tvi("pooled_projections", f32, "b", 32), tvi("timestep", f32, "b"),
		tvi("img_ids", ids, append(append([]any{}, idsDims...), tokens, 3)...), tvi("txt_ids", ids, append(append([]any{}, idsDims...), "s", 3)...)}
	if guidance {
		in = append(in, tvi("guidance", f32, "b"))
	}
	for i, n := range names {
		if n != "" && i < len(in) {
			in[i].Name = n
		}
	}
	return in
}

func TestOpenFluxAlternates(t *testing.T) {
	base := TransformerIO{HiddenStates: "hidden_states", Timestep: "timestep", EncoderHiddenStates: "encoder_hidden_states",
		Pooled: "pooled_projections", ImgIDs: "img_ids", TxtIDs: "txt_ids", Output: "out_hidden_states", TimestepScale: 1}
	pos := []string{"x", "context", "pooled", "t", "img_pos", "txt_pos", "g"}
	for _, c := range []struct {
		name   string
		kind   testmodels.Kind
		in     []onnx.ValueInfo
		output string
		want   func(*TransformerIO)
	}{
		{"nvidia-float-ids", testmodels.KindFluxDev, fluxInputs(f32, nil, "n", true), "latent", func(io *TransformerIO) {
			io.IDsType, io.Guidance, io.Output = f32, "guidance", "latent"
		}},
		{"legacy-3d-ids", testmodels.KindFluxSchnell, fluxInputs(i64, []any{1}, "n", false), "", func(io *TransformerIO) {
			io.IDsType, io.IDs3D = i64, true
		}},
		{"positional-dev", testmodels.KindFluxDev, fluxInputs(f32, nil, "n", true, pos...), "", func(io *TransformerIO) {
			*io = TransformerIO{HiddenStates: "x", EncoderHiddenStates: "context", Pooled: "pooled", Timestep: "t", ImgIDs: "img_pos",
				TxtIDs: "txt_pos", Guidance: "g", Output: "out_hidden_states", IDsType: f32, TimestepScale: 1}
		}},
		{"positional-schnell-fixed", testmodels.KindFluxSchnell, fluxInputs(f32, []any{1}, 4096, false, pos...), "", func(io *TransformerIO) {
			*io = TransformerIO{HiddenStates: "x", EncoderHiddenStates: "context", Pooled: "pooled", Timestep: "t", ImgIDs: "img_pos",
				TxtIDs: "txt_pos", Output: "out_hidden_states", IDsType: f32, IDs3D: true, TimestepScale: 1, FixedHeight: 128, FixedWidth: 128}
		}},
		{"bfl-names", testmodels.KindFluxDev, fluxInputs(f32, nil, "n", true, "img", "txt", "y", "timesteps"), "", func(io *TransformerIO) {
			io.HiddenStates, io.EncoderHiddenStates, io.Pooled, io.Timestep, io.Guidance, io.IDsType = "img", "txt", "y", "timesteps", "guidance", f32
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := inspectFixture(t, testmodels.Options{Kind: c.kind})
			out := "out_hidden_states"
			if c.output != "" {
				out = c.output
			}
			writeTestGraph(t, filepath.Join(dir, "transformer", "model.onnx"), c.in, []onnx.ValueInfo{tvi(out, f32, "b", "n", 64)})
			m := mustOpen(t, dir)
			want := base
			c.want(&want)
			if m.Transformer != want || m.GuidanceEmbeds != (want.Guidance != "") || m.JointDim != 64 || m.PooledDim != 32 || m.InChannels != 64 {
				t.Errorf("got  %+v (guidance %v, dims %d %d %d)\nwant %+v", m.Transformer, m.GuidanceEmbeds, m.JointDim, m.PooledDim, m.InChannels, want)
			}
		})
	}
}

// Unknown names in an order that is not OnnxStack's: no positional match, and every input is reported.
func TestFluxPositionalNeedsTheOrder(t *testing.T) {
	dir := inspectFixture(t, testmodels.Options{Kind: testmodels.KindFluxSchnell})
	in := fluxInputs(f32, nil, "n", false, "a", "b", "c", "d", "e", "f")
	in[0], in[4] = in[4], in[0]
	writeTestGraph(t, filepath.Join(dir, "transformer", "model.onnx"), in, []onnx.ValueInfo{tvi("out", f32, "b", "n", 64)})
	rep := Inspect(dir)
	if len(rep.Problems) != 12 { // 6 roles missing, 6 inputs unexpected
		t.Fatalf("%d problems: %v", len(rep.Problems), rep.Problems)
	}
	for _, p := range rep.Problems {
		if p.File != "transformer/model.onnx" || !strings.Contains(p.Message, "optimum-cli") {
			t.Errorf("problem %+v", p)
		}
	}
}

func TestOpenUnetFolder(t *testing.T) {
	dir := inspectFixture(t, testmodels.Options{Kind: testmodels.KindSD3})
	if err := os.Rename(filepath.Join(dir, "transformer"), filepath.Join(dir, "unet")); err != nil {
		t.Fatal(err)
	}
	m := mustOpen(t, dir)
	c := m.Components["transformer"]
	if c == nil || c.Dir != filepath.Join(dir, "unet") || c.Config == nil || m.Transformer.HiddenStates != "hidden_states" {
		t.Fatalf("transformer from unet/: %+v", c)
	}
	if rep := Inspect(dir); rep.Components[3].Name != "transformer" || rep.Components[3].Path != "unet/model.onnx" {
		t.Errorf("report: %+v", rep.Components[3])
	}
}

// OnnxStack FLUX folders carry only spiece.model in tokenizer_2 (peers-and-conventions.md §4.2).
func TestOpenSpieceOnlyT5Tokenizer(t *testing.T) {
	dir := inspectFixture(t, testmodels.Options{Kind: testmodels.KindFluxSchnell})
	tok := filepath.Join(dir, "tokenizer_2")
	if _, err := os.Stat(filepath.Join(tok, "spiece.model")); err != nil {
		t.Skipf("the fixture has no spiece.model (shared/tokenizers is absent): %v", err)
	}
	entries, _ := os.ReadDir(tok)
	for _, e := range entries {
		if e.Name() != "spiece.model" {
			os.Remove(filepath.Join(tok, e.Name()))
		}
	}
	m := mustOpen(t, dir)
	if m.Tokenizers["tokenizer_2"] != tok {
		t.Fatalf("tokenizers %v", m.Tokenizers)
	}
	if _, err := textenc.LoadT5Tokenizer(m.Tokenizers["tokenizer_2"], textenc.T5Options{}); err != nil {
		t.Fatalf("the folder Open accepted does not load: %v", err)
	}
	if _, err := textenc.LoadCLIPTokenizer(m.Tokenizers["tokenizer"], textenc.CLIPOptions{}); err != nil {
		t.Fatal(err)
	}
}

// A FLUX CLIP encoder may lack hidden_states.N (the fixture's does); an SD3 one may not.
func TestSD3CLIPNeedsHiddenStates(t *testing.T) {
	dir := inspectFixture(t, testmodels.Options{Kind: testmodels.KindSD3NoT5})
	writeTestGraph(t, filepath.Join(dir, "text_encoder", "model.onnx"), []onnx.ValueInfo{tvi("input_ids", onnx.Int32, "b", "s")},
		[]onnx.ValueInfo{tvi("text_embeds", f32, "b", 32), tvi("last_hidden_state", f32, "b", "s", 32)})
	rep := Inspect(dir)
	if len(rep.Problems) != 1 || rep.Problems[0].File != "text_encoder/model.onnx" || !strings.Contains(rep.Problems[0].Message, "hidden_states") {
		t.Fatalf("problems %v", rep.Problems)
	}
}
