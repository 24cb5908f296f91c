package pipeline

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/testmodels"
	"github.com/rflowrt/rflow/scheduler"
	"github.com/rflowrt/rflow/vae"
)

// fixtureVariants are the Optimum export variants the fixtures come in.
var fixtureVariants = []struct {
	name string
	set  func(*testmodels.Options)
}{
	{"int64-fp32", func(*testmodels.Options) {}},
	{"int32-ids", func(o *testmodels.Options) { o.IDs = onnx.Int32 }},
	{"fp16-io", func(o *testmodels.Options) { o.Precision = onnx.Float16 }},
	{"external-data", func(o *testmodels.Options) { o.ExternalData = true }},
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestOpenFixtures(t *testing.T) {
	variants := fixtureVariants
	if testing.Short() {
		variants = variants[:1] // -short: each kind once
	}
	for _, kind := range testmodels.Kinds() {
		for _, v := range variants {
			t.Run(string(kind)+"/"+v.name, func(t *testing.T) {
				o := testmodels.Options{Kind: kind}
				v.set(&o)
				dir := testmodels.Cached(t, o)
				m, err := Open(dir)
				if err != nil {
					t.Fatal(err)
				}
				checkFixtureModel(t, m, o)
			})
		}
	}
}

// checkFixtureModel checks everything Open read from a fixture folder against the options it was
// written with.
func checkFixtureModel(t *testing.T, m *Model, o testmodels.Options) {
	t.Helper()
	d, err := testmodels.DimsFor(o)
	if err != nil {
		t.Fatal(err)
	}
	flux := o.Kind.IsFlux()
	wantFamily, wantComps, wantToks := scheduler.FamilySD3, []string{"text_encoder", "text_encoder_2", "transformer", "vae_decoder", "vae_encoder"}, []string{"tokenizer", "tokenizer_2"}
	joint, pooled, inCh, scale, shift := d.SD3.JointDim, d.SD3.PooledDim, d.SD3.InChannels, 1.5305, 0.0609
	if flux {
		wantFamily, joint, pooled, inCh, scale, shift = scheduler.FamilyFLUX, d.Flux.JointDim, d.Flux.PooledDim, d.Flux.InChannels, 0.3611, 0.1159
	}
	if o.Kind.HasT5() && !flux {
		wantComps, wantToks = append(wantComps, "text_encoder_3"), append(wantToks, "tokenizer_3")
	}
	sort.Strings(wantComps)
	if m.Family != wantFamily || m.Index.Family != wantFamily || m.Name != filepath.Base(m.Dir) {
		t.Errorf("family %q / index %q, name %q", m.Family, m.Index.Family, m.Name)
	}
	if got := sortedKeys(m.Components); !slices.Equal(got, wantComps) {
		t.Errorf("components %v, want %v", got, wantComps)
	}
	if got := sortedKeys(m.Tokenizers); !slices.Equal(got, wantToks) {
		t.Errorf("tokenizers %v, want %v", got, wantToks)
	}
	for name, dir := range m.Tokenizers {
		if dir != filepath.Join(m.Dir, name) {
			t.Errorf("tokenizer %s at %s", name, dir)
		}
	}
	for _, name := range wantComps {
		c := m.Components[name]
		if !m.Has(name) || c.Name != name || c.Path != filepath.Join(m.Dir, name, "model.onnx") || c.Config == nil || len(c.Inputs) == 0 {
			t.Errorf("component %s: %+v", name, c)
		}
	}
	if m.Has("text_encoder_3") != (o.Kind.HasT5() && !flux) || m.Has("unet") {
		t.Errorf("Has(text_encoder_3) = %v", m.Has("text_encoder_3"))
	}
	checkFixtureIO(t, m, o)
	if m.GuidanceEmbeds != (o.Kind == testmodels.KindFluxDev) {
		t.Errorf("GuidanceEmbeds = %v", m.GuidanceEmbeds)
	}
	if m.JointDim != joint || m.PooledDim != pooled || m.InChannels != inCh {
		t.Errorf("dims joint %d pooled %d in %d, want %d %d %d", m.JointDim, m.PooledDim, m.InChannels, joint, pooled, inCh)
	}
	wantVAE := vae.Config{ScalingFactor: scale, ShiftFactor: shift, LatentChannels: d.VAE.LatentChannels, ScaleFactor: d.VAE.ScaleFactor(),
		SampleSize: 1024, FullResChannels: d.VAE.BlockOut[1], ImageChannels: d.VAE.BlockOut[0]} // the fixtures' VAE configs say SD3's and FLUX's sample_size
	if m.VAE != wantVAE {
		t.Errorf("VAE %+v, want %+v", m.VAE, wantVAE)
	}
	if m.Scheduler.ClassName != scheduler.ClassFlowMatchEuler || m.Scheduler.UseDynamicShifting != (o.Kind == testmodels.KindFluxDev) {
		t.Errorf("scheduler %+v", m.Scheduler)
	}
}

// checkFixtureIO checks the transformer roles and the element types of the variant.
func checkFixtureIO(t *testing.T, m *Model, o testmodels.Options) {
	t.Helper()
	want := TransformerIO{HiddenStates: "hidden_states", Timestep: "timestep", EncoderHiddenStates: "encoder_hidden_states",
		Pooled: "pooled_projections", Output: "out_hidden_states", TimestepScale: 1}
	if o.Kind.IsFlux() {
		want.ImgIDs, want.TxtIDs, want.IDsType = "img_ids", "txt_ids", onnx.Int64
	}
	if o.Kind == testmodels.KindFluxDev {
		want.Guidance = "guidance"
	}
	if m.Transformer != want {
		t.Errorf("TransformerIO\n got %+v\nwant %+v", m.Transformer, want)
	}
	prec, ids := onnx.Float, onnx.Int64
	if o.Precision != 0 {
		prec = o.Precision
	}
	if o.IDs != 0 {
		ids = o.IDs
	}
	if in, _ := m.Components["transformer"].Input("hidden_states"); in.Type != prec {
		t.Errorf("transformer hidden_states %v, want %v", in, prec)
	}
	if in, _ := m.Components["text_encoder"].Input("input_ids"); in.Type != ids {
		t.Errorf("text_encoder input_ids %v, want %v", in, ids)
	}
	rep := Inspect(m.Dir)
	for _, c := range rep.Components {
		ext := c.Name == "transformer" || (c.Name == "text_encoder_3" || (c.Name == "text_encoder_2" && o.Kind.IsFlux()))
		wantExt := []string{}
		if ext && o.ExternalData {
			wantExt = []string{c.Name + "/model.onnx_data"}
		}
		st, err := os.Stat(filepath.Join(m.Dir, c.Path))
		if err != nil || !c.Present || !slices.Equal(c.ExternalData, wantExt) || (c.Bytes > st.Size()) != (len(wantExt) > 0) {
			t.Errorf("report of %s: present %v, external %v (want %v), %d bytes (model.onnx %d)", c.Name, c.Present, c.ExternalData, wantExt, c.Bytes, st.Size())
		}
	}
}

func TestOpenDemos(t *testing.T) {
	isolateDemoCache(t)
	for _, c := range []struct {
		name     string
		family   scheduler.Family
		comps    int
		toks     []string
		guidance bool
		io       TransformerIO
	}{
		{"demo-sd3", scheduler.FamilySD3, 5, []string{"tokenizer", "tokenizer_2"}, false,
			TransformerIO{HiddenStates: "hidden_states", Timestep: "timestep", EncoderHiddenStates: "encoder_hidden_states",
				Pooled: "pooled_projections", Output: "out_hidden_states", TimestepScale: 1}},
		{"demo-flux", scheduler.FamilyFLUX, 5, []string{"tokenizer", "tokenizer_2"}, true,
			TransformerIO{HiddenStates: "hidden_states", Timestep: "timestep", EncoderHiddenStates: "encoder_hidden_states",
				Pooled: "pooled_projections", Guidance: "guidance", ImgIDs: "img_ids", TxtIDs: "txt_ids", Output: "out_hidden_states",
				IDsType: onnx.Int64, TimestepScale: 1}},
	} {
		m, err := OpenDemo(c.name)
		if err != nil {
			t.Fatal(err)
		}
		if m.Name != c.name || m.Family != c.family || len(m.Components) != c.comps || m.Has("text_encoder_3") {
			t.Errorf("%s: name %q family %q components %v", c.name, m.Name, m.Family, sortedKeys(m.Components))
		}
		if got := sortedKeys(m.Tokenizers); !slices.Equal(got, c.toks) {
			t.Errorf("%s: tokenizers %v", c.name, got)
		}
		if m.Transformer != c.io || m.GuidanceEmbeds != c.guidance {
			t.Errorf("%s: %+v guidance %v", c.name, m.Transformer, m.GuidanceEmbeds)
		}
		// The demos' configs: identity VAE scaling, 16 latent channels, factor 8, sample_size 256, block_out_channels[0] and [1] 32.
		if m.VAE != (vae.Config{ScalingFactor: 1, LatentChannels: 16, ScaleFactor: 8, SampleSize: 256, FullResChannels: 32, ImageChannels: 32}) || m.JointDim != 64 {
			t.Errorf("%s: VAE %+v joint %d", c.name, m.VAE, m.JointDim)
		}
		if want := map[scheduler.Family]int{scheduler.FamilySD3: 16, scheduler.FamilyFLUX: 64}[c.family]; m.InChannels != want {
			t.Errorf("%s: in channels %d, want %d", c.name, m.InChannels, want)
		}
	}
	if _, err := OpenDemo("demo-sdxl"); err == nil {
		t.Error("unknown demo opened")
	}
}

func TestFolderErrorListsEveryProblem(t *testing.T) {
	e := &FolderError{Dir: "/m", Problems: []Problem{{"transformer", "transformer/model.onnx", "missing"}, {"tokenizer", "", "gone"}}}
	// No command-line advice: the CLI adds its own (cmd/rflow advice.go).
	want := "model folder /m has 2 problems:\n  transformer/model.onnx: missing\n  tokenizer: gone"
	if e.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", e.Error(), want)
	}
	if s := fmt.Sprint(Problem{Message: "m"}); s != "m" {
		t.Errorf("bare problem %q", s)
	}
}
