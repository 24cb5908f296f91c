package assets

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/assets/internal/demo"
	"github.com/rflowrt/rflow/internal/ort/orttest"
	"github.com/rflowrt/rflow/textenc"
)

var encoderPrompts = []string{
	"a green star on a black background",
	"A RED CIRCLE ON BLUE",
	"red",
	"",
	"a blue background with a yellow donut",
	"striped white and black",
	"a purple box on an orange background",
	"dots on the white",
	"a violet triangle",
	"an orange ring on green",
	"gray cat on a mat",
	"a red star, on a blue background!",
	"red red red star star",
	"xred starry background",
	"Doughnuts on BLACK",
	"a star on a red and blue background",
	"the yellow lines",
	"a green background",
	"on blue, a red star",
	"a grün Stern on a rot background",
	strings.Repeat("the ", 80) + "red star",
	"circle's disk;square:box\ttriangle\nSTAR ring   stripes",
}

// extracted writes an embedded demo model to a temporary folder once per test.
func extracted(t testing.TB, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := Extract(name, dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestTokenizerMirror checks that the CLIP tokenizer folders load through textenc and that
// PromptAttributes' tokenization (demo.Vocabulary().Tokens) gives textenc's ids.
func TestTokenizerMirror(t *testing.T) {
	sd3, flux := extracted(t, "demo-sd3"), extracted(t, "demo-flux")
	tok := demo.Vocabulary()
	for _, dir := range []string{filepath.Join(sd3, "tokenizer"), filepath.Join(sd3, "tokenizer_2"), filepath.Join(flux, "tokenizer")} {
		ct, err := textenc.LoadCLIPTokenizer(dir, textenc.CLIPOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ct.VocabSize() != len(tok.Vocab) || ct.BOS() != int64(len(tok.Vocab)-2) || ct.EOS() != int64(len(tok.Vocab)-1) {
			t.Errorf("%s: vocab %d BOS %d EOS %d", dir, ct.VocabSize(), ct.BOS(), ct.EOS())
		}
		for _, w := range demo.Words {
			if ids := ct.Encode(w.Text); len(ids) != 3 || ct.Token(ids[1]) != w.Text+"</w>" {
				t.Errorf("%s: %q encodes to %v, want one whole-word token", dir, w.Text, ids)
			}
		}
		for _, p := range encoderPrompts {
			if strings.HasSuffix(dir, "tokenizer_2") && strings.Contains(p, "!") {
				continue // CLIP-G's pad token "!" is an added token: every "!" is id 0 there (as in SD3)
			}
			got := ct.EncodePadded(p, 0)
			want := []int64{ct.BOS()}
			for _, s := range tok.Tokens(p) {
				want = append(want, int64(tok.ID(s)))
			}
			want = append(want, ct.EOS())
			for len(want) < 77 {
				want = append(want, ct.PadID())
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: %q\n got %v\nwant %v", dir, p, got, want)
			}
		}
	}
	if pad, _ := textenc.LoadCLIPTokenizer(filepath.Join(sd3, "tokenizer_2"), textenc.CLIPOptions{}); pad.PadID() != 0 {
		t.Errorf("SD3 tokenizer_2 pads with %d, want 0 (\"!\", as CLIP-G)", pad.PadID())
	}
	t5, err := textenc.LoadT5Tokenizer(filepath.Join(flux, "tokenizer_2"), textenc.T5Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ids := t5.EncodePadded("a green star", 8); !slices.Equal(ids[3:], []int64{1, 0, 0, 0, 0}) || t5.MaxLength() != 512 {
		t.Errorf("T5: %v, max length %d", ids, t5.MaxLength())
	}
}

// TestEncoderCounts runs the demo text encoders through textenc's runners and checks the pooled
// counts against PromptAttributes.
func TestEncoderCounts(t *testing.T) {
	needORT(t)
	ctx := context.Background()
	sd3, flux := extracted(t, "demo-sd3"), extracted(t, "demo-flux")
	load := func(dir, comp string, hidden bool) *textenc.CLIPEncoder {
		e, err := textenc.LoadCLIPEncoder(ctx, filepath.Join(dir, comp, "model.onnx"), textenc.CLIPEncoderOptions{Session: orttest.Options(), Hidden: hidden})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	tok, err := textenc.LoadCLIPTokenizer(filepath.Join(sd3, "tokenizer"), textenc.CLIPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ids [][]int64
	for _, p := range encoderPrompts {
		ids = append(ids, tok.EncodePadded(p, 0))
	}
	for _, enc := range []*textenc.CLIPEncoder{load(sd3, "text_encoder", true), load(flux, "text_encoder", false)} {
		out, err := enc.Encode(ctx, ids, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range encoderPrompts {
			got := out.Pooled[i*out.PooledDim : (i+1)*out.PooledDim]
			if want := promptCounts(p, out.PooledDim); !slices.Equal(got, want) {
				t.Errorf("%s %q:\n got %v\nwant %v", enc.PooledName(), p, got, want)
			}
		}
	}
	g := load(sd3, "text_encoder_2", true)
	out, err := g.Encode(ctx, ids, 0)
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(out.Pooled, nonZero) || slices.ContainsFunc(out.Hidden, nonZero) || len(out.Hidden) != len(ids)*77*out.HiddenDim {
		t.Errorf("CLIP-G: want zeros, got pooled %v…", out.Pooled[:4])
	}
}

func nonZero(v float32) bool { return v != 0 }

// TestConditioning assembles SD3 and FLUX conditioning with textenc from the demo folders.
func TestConditioning(t *testing.T) {
	needORT(t)
	ctx := context.Background()
	sd3, flux := extracted(t, "demo-sd3"), extracted(t, "demo-flux")
	so := orttest.Options()
	clip := func(dir, comp string, hidden bool) (textenc.Tokenizer, *textenc.CLIPEncoder) {
		tk, err := textenc.LoadCLIPTokenizer(filepath.Join(dir, strings.Replace(comp, "text_encoder", "tokenizer", 1)), textenc.CLIPOptions{})
		if err != nil {
			t.Fatal(err)
		}
		e, err := textenc.LoadCLIPEncoder(ctx, filepath.Join(dir, comp, "model.onnx"), textenc.CLIPEncoderOptions{Session: so, Hidden: hidden})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return tk, e
	}
	tl, el := clip(sd3, "text_encoder", true)
	tg, eg := clip(sd3, "text_encoder_2", true)
	c, err := textenc.SD3Encoders{TokenizerL: tl, TokenizerG: tg, CLIPL: el, CLIPG: eg, MaxSequenceLength: 256, Dim: 64}.
		Encode(ctx, []textenc.SD3Prompt{{Prompt: "a green star on a black background"}, {}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if c.SeqLen != 77+256 || c.Dim != 64 || c.PooledDim != 64 || !slices.Equal(c.Pooled[:22], promptCounts("a green star on a black background", 22)) {
		t.Errorf("SD3 conditioning: seq %d dim %d pooled %d %v", c.SeqLen, c.Dim, c.PooledDim, c.Pooled[:22])
	}
	tc, ec := clip(flux, "text_encoder", false)
	t5tok, err := textenc.LoadT5Tokenizer(filepath.Join(flux, "tokenizer_2"), textenc.T5Options{})
	if err != nil {
		t.Fatal(err)
	}
	t5, err := textenc.LoadT5Encoder(ctx, filepath.Join(flux, "text_encoder_2", "model.onnx"), so)
	if err != nil {
		t.Fatal(err)
	}
	defer t5.Close()
	f, err := textenc.FluxEncoders{TokenizerCLIP: tc, TokenizerT5: t5tok, CLIP: ec, T5: t5, MaxSequenceLength: 512}.
		Encode(ctx, []textenc.FluxPrompt{{Prompt: "stripes on purple"}})
	if err != nil {
		t.Fatal(err)
	}
	if f.SeqLen != 512 || f.Dim != 64 || f.PooledDim != 32 || slices.ContainsFunc(f.PromptEmbeds, nonZero) ||
		!slices.Equal(f.Pooled[:22], promptCounts("stripes on purple", 22)) {
		t.Errorf("FLUX conditioning: seq %d dim %d pooled %d %v", f.SeqLen, f.Dim, f.PooledDim, f.Pooled[:22])
	}
}
