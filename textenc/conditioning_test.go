package textenc

import (
	"context"
	"slices"
	"testing"

	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/ort/orttest"
)

// byteTokenizer is a stand-in tokenizer for conditioning tests: BOS, one id per byte, EOS, padding.
type byteTokenizer struct {
	vocab, maxLen int
	pad           int64
}

func (b byteTokenizer) Encode(text string) []int64 {
	ids := []int64{int64(b.vocab - 2)}
	for i := 0; i < len(text); i++ {
		ids = append(ids, int64(text[i])%int64(b.vocab-2))
	}
	return append(ids, int64(b.vocab-1))
}

func (b byteTokenizer) EncodePadded(text string, maxLen int) []int64 {
	if maxLen <= 0 {
		maxLen = b.maxLen
	}
	ids := b.Encode(text)
	if len(ids) > maxLen {
		ids = append(ids[:maxLen-1], ids[len(ids)-1])
	}
	for len(ids) < maxLen {
		ids = append(ids, b.pad)
	}
	return ids
}

func (b byteTokenizer) PadID() int64   { return b.pad }
func (b byteTokenizer) MaxLength() int { return b.maxLen }

func TestAssembleSD3Layout(t *testing.T) {
	// B=2, 3 CLIP tokens, L width 2, G width 3, joint width 8, T5 length 2.
	l := CLIPOutput{Batch: 2, SeqLen: 3, HiddenDim: 2, PooledDim: 1, Pooled: []float32{10, 20}}
	g := CLIPOutput{Batch: 2, SeqLen: 3, HiddenDim: 3, PooledDim: 2, Pooled: []float32{30, 31, 40, 41}}
	for i := 0; i < 2*3*2; i++ {
		l.Hidden = append(l.Hidden, float32(100+i))
	}
	for i := 0; i < 2*3*3; i++ {
		g.Hidden = append(g.Hidden, float32(200+i))
	}
	t5 := &T5Output{Batch: 2, SeqLen: 2, Dim: 8}
	for i := 0; i < 2*2*8; i++ {
		t5.Hidden = append(t5.Hidden, float32(300+i))
	}
	c, err := AssembleSD3(l, g, t5, 8, 99)
	if err != nil {
		t.Fatal(err)
	}
	if c.SeqLen != 5 || c.Dim != 8 || c.PooledDim != 3 || len(c.PromptEmbeds) != 2*5*8 {
		t.Fatalf("shape %+v", c)
	}
	at := func(b, s, d int) float32 { return c.PromptEmbeds[(b*5+s)*8+d] }
	// Row (b=1, token 2): L values then G values then zeros; then T5 rows verbatim.
	want := []float32{100 + (1*3+2)*2, 100 + (1*3+2)*2 + 1, 200 + (1*3+2)*3, 200 + (1*3+2)*3 + 1, 200 + (1*3+2)*3 + 2, 0, 0, 0}
	for d, w := range want {
		if at(1, 2, d) != w {
			t.Fatalf("embeds[1,2,%d] = %v, want %v", d, at(1, 2, d), w)
		}
	}
	if at(1, 4, 7) != t5.Hidden[(1*2+1)*8+7] || at(0, 3, 0) != 300 {
		t.Fatalf("T5 rows misplaced: %v %v", at(1, 4, 7), at(0, 3, 0))
	}
	if got := c.Pooled; got[0] != 10 || got[1] != 30 || got[2] != 31 || got[3] != 20 || got[5] != 41 {
		t.Fatalf("pooled %v", got)
	}
	// Without T5: t5Len rows of zeros.
	c, err = AssembleSD3(l, g, nil, 8, 4)
	if err != nil || c.SeqLen != 7 || at(0, 6, 7) != 0 || at(0, 0, 0) != 100 {
		t.Fatalf("no T5: %+v %v", c.SeqLen, err)
	}
	if _, err := AssembleSD3(l, g, nil, 4, 4); err == nil {
		t.Fatal("CLIP widths above the joint width accepted")
	}
}

func TestSD3EncodersEndToEnd(t *testing.T) {
	ctx := context.Background()
	const vocab, seq, t5Len = 50, 6, 5
	pathL, embL, projL := buildCLIP(t, t.TempDir(), clipSpec{vocab: vocab, width: 4, layers: 3, proj: 4, ids: onnx.Int32})
	pathG, embG, projG := buildCLIP(t, t.TempDir(), clipSpec{vocab: vocab, width: 6, layers: 5, proj: 6, ids: onnx.Int64})
	pathT5, embT5 := buildT5(t, t.TempDir(), vocab, 16)
	load := func(p string) *CLIPEncoder {
		e, err := LoadCLIPEncoder(ctx, p, CLIPEncoderOptions{Session: orttest.Options(), Hidden: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	t5, err := LoadT5Encoder(ctx, pathT5, orttest.Options())
	if err != nil {
		t.Fatal(err)
	}
	defer t5.Close()
	tokL := byteTokenizer{vocab: vocab, maxLen: seq, pad: int64(vocab - 1)}
	tokG := byteTokenizer{vocab: vocab, maxLen: seq, pad: 0}
	tokT5 := byteTokenizer{vocab: vocab, maxLen: 512, pad: 0}
	enc := SD3Encoders{TokenizerL: tokL, TokenizerG: tokG, TokenizerT5: tokT5, CLIPL: load(pathL), CLIPG: load(pathG), T5: t5,
		MaxSequenceLength: t5Len, Dim: 16}
	// The third prompt is too long for CLIP-L (9 tokens of 6) and T5 (7 of 5), not for CLIP-G.
	prompts := []SD3Prompt{{Prompt: "cat"}, {Prompt: "dog", Prompt2: "wolf", Prompt3: "fox"}, {Prompt: "kitten!", Prompt2: "cat", Prompt3: "a fox"}}
	c, err := enc.Encode(ctx, prompts, 0)
	if err != nil {
		t.Fatal(err)
	}
	if c.Batch != 3 || c.SeqLen != seq+t5Len || c.Dim != 16 || c.PooledDim != 10 {
		t.Fatalf("shape %+v", c)
	}
	wantCut := []Truncation{{Encoder: "text_encoder", Kind: "CLIP-L", Prompt: 2, Tokens: 9, MaxLength: seq},
		{Encoder: "text_encoder_3", Kind: "T5", Prompt: 2, Tokens: 7, MaxLength: t5Len}}
	if !slices.Equal(c.Truncated, wantCut) {
		t.Errorf("truncations %+v, want %+v", c.Truncated, wantCut)
	}
	// Go reference: the same assembly from the reference encoders on the same ids.
	for b, p := range prompts {
		idsL := [][]int64{tokL.EncodePadded(p.Prompt, 0)}
		idsG := [][]int64{tokG.EncodePadded(or(p.Prompt2, p.Prompt), 0)}
		idsT5 := tokT5.EncodePadded(or(p.Prompt3, p.Prompt), t5Len)
		hl, pl := clipRef(idsL, embL, projL, 4, 3, 0)
		hg, pg := clipRef(idsG, embG, projG, 6, 5, 0)
		row := c.PromptEmbeds[b*c.SeqLen*16 : (b+1)*c.SeqLen*16]
		for s := 0; s < seq; s++ {
			assertClose(t, "clip-L part", row[s*16:s*16+4], hl[s*4:(s+1)*4], 1e-6)
			assertClose(t, "clip-G part", row[s*16+4:s*16+10], hg[s*6:(s+1)*6], 1e-6)
			assertClose(t, "zero padding", row[s*16+10:(s+1)*16], make([]float32, 6), 0)
		}
		for s, id := range idsT5 {
			want := make([]float32, 16)
			for d := range want {
				want[d] = 3 * embT5[int(id)*16+d]
			}
			assertClose(t, "t5 part", row[(seq+s)*16:(seq+s+1)*16], want, 1e-6)
		}
		assertClose(t, "pooled", c.Pooled[b*10:(b+1)*10], append(pl, pg...), 1e-5)
	}
	// No T5: zeros of the transformer's width.
	enc.T5, enc.TokenizerT5 = nil, nil
	c, err = enc.Encode(ctx, prompts[:1], 0)
	if err != nil || c.SeqLen != seq+t5Len || c.Dim != 16 {
		t.Fatalf("without T5: %+v, %v", c, err)
	}
}

func TestFluxEncodersEndToEnd(t *testing.T) {
	ctx := context.Background()
	const vocab = 40
	pathCLIP, embC, _ := buildCLIP(t, t.TempDir(), clipSpec{vocab: vocab, width: 5, layers: 2, ids: onnx.Int64, noHidden: true})
	pathT5, _ := buildT5(t, t.TempDir(), vocab, 12)
	clip, err := LoadCLIPEncoder(ctx, pathCLIP, CLIPEncoderOptions{Session: orttest.Options()})
	if err != nil {
		t.Fatal(err)
	}
	defer clip.Close()
	t5, err := LoadT5Encoder(ctx, pathT5, orttest.Options())
	if err != nil {
		t.Fatal(err)
	}
	defer t5.Close()
	tok := byteTokenizer{vocab: vocab, maxLen: 7, pad: int64(vocab - 1)}
	enc := FluxEncoders{TokenizerCLIP: tok, TokenizerT5: byteTokenizer{vocab: vocab, maxLen: 512}, CLIP: clip, T5: t5, MaxSequenceLength: 9}
	c, err := enc.Encode(ctx, []FluxPrompt{{Prompt: "a red circle"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.SeqLen != 9 || c.Dim != 12 || c.PooledDim != 5 || len(c.TxtIDs) != 27 {
		t.Fatalf("shape %+v", c)
	}
	// "a red circle" is 14 tokens: CLIP takes 7, T5 (max sequence length) 9.
	wantCut := []Truncation{{Encoder: "text_encoder", Kind: "CLIP", Tokens: 14, MaxLength: 7},
		{Encoder: "text_encoder_2", Kind: "T5", Tokens: 14, MaxLength: 9}}
	if !slices.Equal(c.Truncated, wantCut) || c.Truncated[0].Dropped() != 7 {
		t.Errorf("truncations %+v, want %+v", c.Truncated, wantCut)
	}
	if s := c.Truncated[1].String(); s != "text_encoder_2 (T5) takes 9 tokens; the prompt has 14, so its last 5 are dropped" {
		t.Errorf("message %q", s)
	}
	_, want := clipRef([][]int64{tok.EncodePadded("a red circle", 0)}, embC, nil, 5, 2, 0)
	assertClose(t, "pooled", c.Pooled, want, 1e-6)
	for _, v := range c.TxtIDs {
		if v != 0 {
			t.Fatal("txt_ids must be zeros")
		}
	}
}
