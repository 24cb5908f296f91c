package testmodels

import (
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/internal/ort/orttest"
	"github.com/rflowrt/rflow/textenc"
)

const testPrompt = "a photo of a cat"

// session loads dir/model.onnx from the folder (with its external data, if any).
func (f folder) session(dir string) *runner {
	f.t.Helper()
	s, err := ort.NewSession(context.Background(), f.path(dir+"/model.onnx"), orttest.Options())
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = s.Close() })
	return &runner{t: f.t, s: s}
}

// checkTypes checks that every float input and output has the folder's precision and every id input
// the given type.
func (f folder) checkTypes(r *runner, dir string, ids onnx.DataType) {
	f.t.Helper()
	for _, ti := range append(r.s.Inputs(), r.s.Outputs()...) {
		want := f.o.Precision
		if strings.HasSuffix(ti.Name, "_ids") {
			want = ids
		}
		if ti.Type != want {
			f.t.Errorf("%s: %s has type %v, want %v", dir, ti.Name, ti.Type, want)
		}
	}
}

// runAll runs a model and checks every output is finite (and not all zeros).
func (f folder) runAll(r *runner, dir string, in map[string]feed, outs map[string][]int64) map[string][]float32 {
	f.t.Helper()
	res := r.run(in, outs)
	for name, v := range res {
		finite(f.t, dir+" "+name, v)
	}
	return res
}

// runModels runs every model of the folder once: the text encoders on the tokenized test prompt
// padded as the family pads it, the transformer on a 64×64 px latent, the VAE both ways.
func (f folder) runModels() {
	clipL, clipG, t5 := f.loadTokenizers()
	f.runCLIP("text_encoder", f.d.CLIPL, clipL.EncodePadded(testPrompt, 77))
	t5Dir := "text_encoder_2"
	if clipG != nil {
		f.runCLIP("text_encoder_2", f.d.CLIPG, clipG.EncodePadded(testPrompt, 77))
		t5Dir = "text_encoder_3"
	}
	if t5 != nil {
		n := f.k.T5Length()
		r := f.session(t5Dir)
		f.checkTypes(r, t5Dir, onnx.Int64)
		f.runAll(r, t5Dir, map[string]feed{"input_ids": ints([]int64{1, int64(n)}, t5.EncodePadded(testPrompt, n))},
			map[string][]int64{"last_hidden_state": {1, int64(n), int64(f.d.T5.DModel)}})
	}
	rng := rand.New(rand.NewPCG(7, 8))
	ctxLen := 77 + 256
	if f.k.IsFlux() {
		ctxLen = f.k.T5Length()
	}
	ctx := randFeed(rng, 1, int64(ctxLen), int64(f.transformerJoint()))
	pooled := randFeed(rng, 1, int64(f.transformerPooled()))
	f.runTransformer(ctx, pooled)
	f.runVAE(rng)
}

func (f folder) transformerJoint() int {
	if f.k.IsFlux() {
		return f.d.Flux.JointDim
	}
	return f.d.SD3.JointDim
}

func (f folder) transformerPooled() int {
	if f.k.IsFlux() {
		return f.d.Flux.PooledDim
	}
	return f.d.SD3.PooledDim
}

func (f folder) runCLIP(dir string, c CLIPConfig, ids []int64) {
	r := f.session(dir)
	f.checkTypes(r, dir, f.o.IDs)
	s, h := int64(len(ids)), int64(c.Hidden)
	outs := map[string][]int64{}
	hidden := 0
	for _, ti := range r.s.Outputs() {
		switch {
		case ti.Name == "text_embeds" && c.Projection > 0:
			outs[ti.Name] = []int64{1, int64(c.Projection)}
		case ti.Name == "pooler_output" && c.Projection == 0:
			outs[ti.Name] = []int64{1, h}
		case ti.Name == "last_hidden_state":
			outs[ti.Name] = []int64{1, s, h}
		case strings.HasPrefix(ti.Name, "hidden_states.") && c.Projection > 0:
			if n, err := strconv.Atoi(strings.TrimPrefix(ti.Name, "hidden_states.")); err != nil || n != hidden {
				f.t.Errorf("%s: output %s out of order", dir, ti.Name)
			}
			hidden++
			outs[ti.Name] = []int64{1, s, h}
		default:
			f.t.Errorf("%s: unexpected output %s", dir, ti)
		}
	}
	if want := map[bool]int{true: c.Layers + 1, false: 0}[c.Projection > 0]; hidden != want || len(outs) != 2+hidden {
		f.t.Errorf("%s: outputs %v, want %d hidden states and two more", dir, r.s.Outputs(), want)
	}
	f.runAll(r, dir, map[string]feed{"input_ids": ints([]int64{1, s}, ids)}, outs)
}

// runTransformer runs one step at 64×64 px (latent 8×8) with the given conditioning.
func (f folder) runTransformer(ctx, pooled feed) []float32 {
	r := f.session("transformer")
	f.checkTypes(r, "transformer", onnx.Int64)
	rng := rand.New(rand.NewPCG(9, 10))
	in := map[string]feed{"encoder_hidden_states": ctx, "pooled_projections": pooled}
	var out []int64
	if f.k.IsFlux() {
		seq := ctx.shape[1]
		img := make([]int64, 0, 16*3)
		for i := range int64(4) {
			for j := range int64(4) {
				img = append(img, 0, i, j)
			}
		}
		in["hidden_states"] = randFeed(rng, 1, 16, 64)
		in["timestep"] = floats([]int64{1}, []float32{0.75})
		in["img_ids"] = ints([]int64{16, 3}, img)
		in["txt_ids"] = ints([]int64{seq, 3}, make([]int64, seq*3))
		if f.k == KindFluxDev {
			in["guidance"] = floats([]int64{1}, []float32{3.5})
		}
		out = []int64{1, 16, 64}
	} else {
		in["hidden_states"] = randFeed(rng, 1, 16, 8, 8)
		in["timestep"] = floats([]int64{1}, []float32{750})
		out = []int64{1, 16, 8, 8}
	}
	return f.runAll(r, "transformer", in, map[string][]int64{"out_hidden_states": out})["out_hidden_states"]
}

func (f folder) runVAE(rng *rand.Rand) {
	dec := f.session("vae_decoder")
	f.checkTypes(dec, "vae_decoder", 0)
	f.runAll(dec, "vae_decoder", map[string]feed{"latent_sample": randFeed(rng, 1, 16, 8, 8)},
		map[string][]int64{"sample": {1, 3, 64, 64}})
	enc := f.session("vae_encoder")
	f.checkTypes(enc, "vae_encoder", 0)
	f.runAll(enc, "vae_encoder", map[string]feed{"sample": randFeed(rng, 1, 3, 64, 64)},
		map[string][]int64{"latent_parameters": {1, 32, 8, 8}})
}

// runConditioning encodes the test prompt with textenc's runners exactly as the pipelines do and
// feeds the result to the transformer: the encoders' widths and the transformer's must fit.
func (f folder) runConditioning() {
	clipL, clipG, t5 := f.loadTokenizers()
	ctx, so := context.Background(), orttest.Options()
	clip := func(dir string, hidden bool) *textenc.CLIPEncoder {
		e, err := textenc.LoadCLIPEncoder(ctx, f.path(dir+"/model.onnx"), textenc.CLIPEncoderOptions{Session: so, Hidden: hidden})
		if err != nil {
			f.t.Fatal(err)
		}
		f.t.Cleanup(func() { _ = e.Close() })
		return e
	}
	loadT5 := func(dir string) *textenc.T5Encoder {
		e, err := textenc.LoadT5Encoder(ctx, f.path(dir+"/model.onnx"), so)
		if err != nil {
			f.t.Fatal(err)
		}
		f.t.Cleanup(func() { _ = e.Close() })
		return e
	}
	if f.k.IsFlux() {
		e := textenc.FluxEncoders{TokenizerCLIP: clipL, TokenizerT5: t5, CLIP: clip("text_encoder", false),
			T5: loadT5("text_encoder_2"), MaxSequenceLength: f.k.T5Length()}
		c, err := e.Encode(ctx, []textenc.FluxPrompt{{Prompt: testPrompt}})
		if err != nil {
			f.t.Fatal(err)
		}
		f.runTransformer(floats([]int64{1, int64(c.SeqLen), int64(c.Dim)}, c.PromptEmbeds),
			floats([]int64{1, int64(c.PooledDim)}, c.Pooled))
		return
	}
	e := textenc.SD3Encoders{TokenizerL: clipL, TokenizerG: clipG, CLIPL: clip("text_encoder", true),
		CLIPG: clip("text_encoder_2", true), MaxSequenceLength: 256, Dim: f.d.SD3.JointDim}
	if t5 != nil {
		e.TokenizerT5, e.T5 = t5, loadT5("text_encoder_3")
	}
	c, err := e.Encode(ctx, []textenc.SD3Prompt{{Prompt: testPrompt}}, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	clipW := f.d.CLIPL.Hidden + f.d.CLIPG.Hidden
	if c.SeqLen != 77+256 || c.Dim != f.d.SD3.JointDim || clipW >= c.Dim || c.PromptEmbeds[clipW-1] == 0 || c.PromptEmbeds[clipW] != 0 {
		f.t.Errorf("sd3 conditioning [%d,%d] (CLIP width %d): the CLIP rows must be filled up to %d and zero after",
			c.SeqLen, c.Dim, clipW, clipW)
	}
	f.runTransformer(floats([]int64{1, int64(c.SeqLen), int64(c.Dim)}, c.PromptEmbeds),
		floats([]int64{1, int64(c.PooledDim)}, c.Pooled))
}

// fileDigests hashes every file of a folder.
func fileDigests(f folder, dir string) map[string][32]byte {
	m := map[string][32]byte{}
	for _, name := range listFiles(f.t, dir) {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			f.t.Fatal(err)
		}
		m[name] = sha256.Sum256(data)
	}
	return m
}

// checkDeterministic writes the folder again (same hash) and with another seed (every model file
// differs, every other file is the same).
func (f folder) checkDeterministic(root string) {
	again, other := filepath.Join(root, string(f.k)+"-again"), filepath.Join(root, string(f.k)+"-seed")
	o2 := f.o
	o2.Seed++
	if err := Write(again, f.o); err != nil {
		f.t.Fatal(err)
	}
	if err := Write(other, o2); err != nil {
		f.t.Fatal(err)
	}
	h1, err1 := FolderHash(f.dir)
	h2, err2 := FolderHash(again)
	h3, err3 := FolderHash(other)
	if err1 != nil || err2 != nil || err3 != nil {
		f.t.Fatal(err1, err2, err3)
	}
	if h1 != h2 || h1 == h3 {
		f.t.Errorf("FolderHash: first %s, again %s, other seed %s", h1, h2, h3)
	}
	a, b := fileDigests(f, f.dir), fileDigests(f, other)
	for name, d := range a {
		if isModel := path.Base(name) == "model.onnx"; isModel == (d == b[name]) {
			f.t.Errorf("%s: changed with the seed: %t (want %t)", name, d != b[name], isModel)
		}
	}
}
