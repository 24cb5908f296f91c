package textenc

import (
	"context"
	"fmt"
	"time"
)

// SD3Conditioning is what StableDiffusion3Pipeline hands its transformer (flow-sampling.md §3.2).
type SD3Conditioning struct {
	Batch int
	// PromptEmbeds is [Batch, SeqLen, Dim]: CLIP-L ‖ CLIP-G penultimate states zero-padded to Dim, then the
	// T5 states (zeros when T5 is absent) along the sequence: SeqLen = 77 + T.
	PromptEmbeds []float32
	SeqLen, Dim  int
	// Pooled is [Batch, PooledDim]: CLIP-L ‖ CLIP-G text_embeds.
	Pooled    []float32
	PooledDim int
	// Truncated lists the prompts an encoder cut (diffusers warns about each).
	Truncated []Truncation
	// TokenizeTime and EncodeTime are spent tokenizing and in encoder runs.
	TokenizeTime, EncodeTime time.Duration
}

// AssembleSD3 builds SD3's conditioning from the two CLIP runs and the T5 run (nil when the model has
// no T5; then t5Len rows of zeros stand in, as diffusers does). dim is the transformer's
// joint_attention_dim (the T5 width).
func AssembleSD3(l, g CLIPOutput, t5 *T5Output, dim, t5Len int) (SD3Conditioning, error) {
	b, s := l.Batch, l.SeqLen
	switch {
	case g.Batch != b || g.SeqLen != s:
		return SD3Conditioning{}, fmt.Errorf("sd3 conditioning: CLIP-L gave [%d,%d], CLIP-G [%d,%d]", b, s, g.Batch, g.SeqLen)
	case len(l.Hidden) == 0 || len(g.Hidden) == 0:
		return SD3Conditioning{}, fmt.Errorf("sd3 conditioning: both CLIP encoders must return hidden states")
	case l.HiddenDim+g.HiddenDim > dim:
		return SD3Conditioning{}, fmt.Errorf("sd3 conditioning: CLIP widths %d+%d exceed the joint attention width %d", l.HiddenDim, g.HiddenDim, dim)
	case t5 != nil && (t5.Batch != b || t5.Dim != dim):
		return SD3Conditioning{}, fmt.Errorf("sd3 conditioning: T5 gave [%d,·,%d], want [%d,·,%d]", t5.Batch, t5.Dim, b, dim)
	}
	if t5 != nil {
		t5Len = t5.SeqLen
	}
	c := SD3Conditioning{Batch: b, SeqLen: s + t5Len, Dim: dim, PooledDim: l.PooledDim + g.PooledDim}
	c.PromptEmbeds = make([]float32, b*c.SeqLen*dim) // zeros: the CLIP padding and an absent T5
	c.Pooled = make([]float32, b*c.PooledDim)
	for i := 0; i < b; i++ {
		row := c.PromptEmbeds[i*c.SeqLen*dim:]
		for t := 0; t < s; t++ {
			copy(row[t*dim:], l.Hidden[(i*s+t)*l.HiddenDim:(i*s+t+1)*l.HiddenDim])
			copy(row[t*dim+l.HiddenDim:], g.Hidden[(i*s+t)*g.HiddenDim:(i*s+t+1)*g.HiddenDim])
		}
		if t5 != nil {
			copy(row[s*dim:], t5.Hidden[i*t5Len*dim:(i+1)*t5Len*dim])
		}
		copy(c.Pooled[i*c.PooledDim:], l.Pooled[i*l.PooledDim:(i+1)*l.PooledDim])
		copy(c.Pooled[i*c.PooledDim+l.PooledDim:], g.Pooled[i*g.PooledDim:(i+1)*g.PooledDim])
	}
	return c, nil
}

// FluxConditioning is what FluxPipeline hands its transformer (flow-sampling.md §4.2).
type FluxConditioning struct {
	Batch int
	// PromptEmbeds is the T5 output [Batch, SeqLen, Dim].
	PromptEmbeds []float32
	SeqLen, Dim  int
	// Pooled is CLIP's pooler_output [Batch, PooledDim].
	Pooled    []float32
	PooledDim int
	// TxtIDs is [SeqLen, 3], all zeros (diffusers ≥ 0.31 passes 2-D ids).
	TxtIDs []float32
	// Truncated lists the prompts an encoder cut (diffusers warns about each).
	Truncated []Truncation
	// TokenizeTime and EncodeTime are spent tokenizing and in encoder runs.
	TokenizeTime, EncodeTime time.Duration
}

// AssembleFlux builds FLUX's conditioning from the CLIP and T5 runs.
func AssembleFlux(clip CLIPOutput, t5 T5Output) (FluxConditioning, error) {
	if clip.Batch != t5.Batch {
		return FluxConditioning{}, fmt.Errorf("flux conditioning: CLIP batch %d, T5 batch %d", clip.Batch, t5.Batch)
	}
	return FluxConditioning{Batch: t5.Batch, PromptEmbeds: t5.Hidden, SeqLen: t5.SeqLen, Dim: t5.Dim,
		Pooled: clip.Pooled, PooledDim: clip.PooledDim, TxtIDs: make([]float32, t5.SeqLen*3)}, nil
}

// SD3Prompt is one SD3 prompt: Prompt2 goes to CLIP-G and Prompt3 to T5; empty ones default to Prompt
// (diffusers: prompt_2 = prompt_2 or prompt).
type SD3Prompt struct{ Prompt, Prompt2, Prompt3 string }

// SD3Encoders are SD3's tokenizers and text encoders. T5 and TokenizerT5 are nil for a model without T5.
type SD3Encoders struct {
	TokenizerL, TokenizerG, TokenizerT5 Tokenizer
	CLIPL, CLIPG                        *CLIPEncoder
	T5                                  *T5Encoder
	// MaxSequenceLength is the T5 length (diffusers default 256, at most 512).
	MaxSequenceLength int
	// Dim is the transformer's joint_attention_dim (4096), the width when T5 is absent.
	Dim int
}

// Encode computes the conditioning of a batch of prompts. clipSkip selects hidden_states[-(clipSkip+2)]
// (diffusers encodes negative prompts with clip skip 0 whatever the positive one uses).
func (e SD3Encoders) Encode(ctx context.Context, prompts []SD3Prompt, clipSkip int) (SD3Conditioning, error) {
	if len(prompts) == 0 {
		return SD3Conditioning{}, fmt.Errorf("sd3 text encoding: no prompts")
	}
	start := time.Now()
	var idsL, idsG, idsT5 [][]int64
	var cut truncations
	for i, p := range prompts {
		p2, p3 := or(p.Prompt2, p.Prompt), or(p.Prompt3, p.Prompt)
		idsL = append(idsL, e.TokenizerL.EncodePadded(p.Prompt, 0))
		idsG = append(idsG, e.TokenizerG.EncodePadded(p2, 0))
		cut.check(e.TokenizerL, p.Prompt, 0, "text_encoder", "CLIP-L", i)
		cut.check(e.TokenizerG, p2, 0, "text_encoder_2", "CLIP-G", i)
		if e.T5 != nil {
			idsT5 = append(idsT5, e.TokenizerT5.EncodePadded(p3, e.MaxSequenceLength))
			cut.check(e.TokenizerT5, p3, e.MaxSequenceLength, "text_encoder_3", "T5", i)
		}
	}
	tokenize := time.Since(start)
	l, err := e.CLIPL.Encode(ctx, idsL, clipSkip)
	if err != nil {
		return SD3Conditioning{}, fmt.Errorf("text_encoder: %w", err)
	}
	g, err := e.CLIPG.Encode(ctx, idsG, clipSkip)
	if err != nil {
		return SD3Conditioning{}, fmt.Errorf("text_encoder_2: %w", err)
	}
	var t5 *T5Output
	dim := e.Dim
	if e.T5 != nil {
		out, err := e.T5.Encode(ctx, idsT5)
		if err != nil {
			return SD3Conditioning{}, fmt.Errorf("text_encoder_3: %w", err)
		}
		t5, dim = &out, out.Dim
	}
	c, err := AssembleSD3(l, g, t5, dim, e.MaxSequenceLength)
	c.Truncated = cut
	c.TokenizeTime, c.EncodeTime = tokenize, time.Since(start)-tokenize
	return c, err
}

// FluxPrompt is one FLUX prompt: Prompt goes to CLIP, Prompt2 to T5 (empty: Prompt).
type FluxPrompt struct{ Prompt, Prompt2 string }

// FluxEncoders are FLUX's tokenizers and text encoders.
type FluxEncoders struct {
	TokenizerCLIP, TokenizerT5 Tokenizer
	CLIP                       *CLIPEncoder
	T5                         *T5Encoder
	// MaxSequenceLength is the T5 length (diffusers default 512; 256 is usual for schnell).
	MaxSequenceLength int
}

// Encode computes the conditioning of a batch of prompts.
func (e FluxEncoders) Encode(ctx context.Context, prompts []FluxPrompt) (FluxConditioning, error) {
	if len(prompts) == 0 {
		return FluxConditioning{}, fmt.Errorf("flux text encoding: no prompts")
	}
	start := time.Now()
	var idsCLIP, idsT5 [][]int64
	var cut truncations
	for i, p := range prompts {
		p2 := or(p.Prompt2, p.Prompt)
		idsCLIP = append(idsCLIP, e.TokenizerCLIP.EncodePadded(p.Prompt, 0))
		idsT5 = append(idsT5, e.TokenizerT5.EncodePadded(p2, e.MaxSequenceLength))
		cut.check(e.TokenizerCLIP, p.Prompt, 0, "text_encoder", "CLIP", i)
		cut.check(e.TokenizerT5, p2, e.MaxSequenceLength, "text_encoder_2", "T5", i)
	}
	tokenize := time.Since(start)
	clip, err := e.CLIP.Encode(ctx, idsCLIP, 0)
	if err != nil {
		return FluxConditioning{}, fmt.Errorf("text_encoder: %w", err)
	}
	t5, err := e.T5.Encode(ctx, idsT5)
	if err != nil {
		return FluxConditioning{}, fmt.Errorf("text_encoder_2: %w", err)
	}
	c, err := AssembleFlux(clip, t5)
	c.Truncated = cut
	c.TokenizeTime, c.EncodeTime = tokenize, time.Since(start)-tokenize
	return c, err
}

func or(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}
