package pipeline

import (
	"context"
	"fmt"

	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/textenc"
)

// conditioning is a run's text conditioning, repeated to the batch.
type conditioning struct {
	// embeds [rows, seqLen, dim] and pooled [rows, pooledDim]: SD3 with CFG has rows = 2B, the
	// unconditional rows first (diffusers' cat([negative, positive])); otherwise rows = B.
	embeds, pooled []float32
	rows           int
	// negEmbeds and negPooled [B, …] are FLUX true CFG's negative pass (nil without it).
	negEmbeds, negPooled   []float32
	seqLen, dim, pooledDim int
}

// repeatRows returns b copies of x back to back (diffusers' repeat for num_images_per_prompt).
func repeatRows(x []float32, b int) []float32 {
	out := make([]float32, 0, len(x)*b)
	for range b {
		out = append(out, x...)
	}
	return out
}

// encodeSD3 computes SD3's conditioning (flow-sampling.md §3.2): the prompt with ClipSkip and, with CFG,
// the negative prompt with clip skip 0, each encoded once and repeated to the batch.
func (p *Pipeline) encodeSD3(ctx context.Context, pl *plan, tm *Timings) (conditioning, error) {
	ms := p.ms
	enc := textenc.SD3Encoders{TokenizerL: ms.clipTok[0], TokenizerG: ms.clipTok[1], CLIPL: ms.clip[0],
		CLIPG: ms.clip[1], MaxSequenceLength: pl.maxSeq, Dim: p.m.JointDim}
	if ms.t5 != nil { // a nil *T5Tokenizer must not become a non-nil interface
		enc.TokenizerT5, enc.T5 = ms.t5Tok, ms.t5
	}
	r := pl.req
	pos, err := enc.Encode(ctx, []textenc.SD3Prompt{{Prompt: r.Prompt, Prompt2: r.Prompt2, Prompt3: r.Prompt3}}, r.ClipSkip)
	if err != nil {
		return conditioning{}, fmt.Errorf("pipeline: encode prompt: %w", err)
	}
	tm.Tokenize += pos.TokenizeTime
	tm.Encode += pos.EncodeTime
	p.warnTruncated(pl, "prompt", -1, pos.Truncated)
	c := conditioning{rows: pl.batch, seqLen: pos.SeqLen, dim: pos.Dim, pooledDim: pos.PooledDim,
		embeds: repeatRows(pos.PromptEmbeds, pl.batch), pooled: repeatRows(pos.Pooled, pl.batch)}
	if !pl.doCFG {
		return c, nil
	}
	negPrompt := textenc.SD3Prompt{Prompt: r.NegativePrompt, Prompt2: r.NegativePrompt2, Prompt3: r.NegativePrompt3}
	neg, err := enc.Encode(ctx, []textenc.SD3Prompt{negPrompt}, 0)
	if err != nil {
		return conditioning{}, fmt.Errorf("pipeline: encode negative prompt: %w", err)
	}
	tm.Tokenize += neg.TokenizeTime
	tm.Encode += neg.EncodeTime
	p.warnTruncated(pl, "negative prompt", -1, neg.Truncated)
	c.rows = 2 * pl.batch
	c.embeds = append(repeatRows(neg.PromptEmbeds, pl.batch), c.embeds...)
	c.pooled = append(repeatRows(neg.Pooled, pl.batch), c.pooled...)
	return c, nil
}

// noSkipLayer is what an export with a skip_layers input gets outside skip-layer passes: an index no
// block has. (A tensor cannot be empty, and diffusers' None has no ONNX equivalent.)
const noSkipLayer = -1

// setupSD3 allocates the SD3 passes: the main pass over cond.rows rows (uncond ‖ cond with CFG) and,
// for skip-layer guidance, a positive-only batch-B pass with the skipped blocks.
func (d *denoiser) setupSD3(io TransformerIO, cond conditioning, slgLayers []int) error {
	b, rows := int64(d.b), int64(cond.rows)
	tensors := map[string]*ort.Tensor{}
	mainSkip := []int64{noSkipLayer}
	if err := d.sd3Inputs(io, tensors, rows, cond.embeds, cond.pooled, cond, mainSkip); err != nil {
		return err
	}
	var err error
	if d.main, err = d.newPass(io, tensors, cond.rows); err != nil {
		return err
	}
	if len(slgLayers) == 0 {
		return nil
	}
	layers := make([]int64, len(slgLayers))
	for i, l := range slgLayers {
		layers[i] = int64(l)
	}
	half := len(cond.embeds) / 2 // the positive rows
	skip := map[string]*ort.Tensor{}
	err = d.sd3Inputs(io, skip, b, cond.embeds[half:], cond.pooled[len(cond.pooled)/2:], cond, layers)
	if err != nil {
		return err
	}
	d.skip, err = d.newPass(io, skip, d.b)
	return err
}

// sd3Inputs allocates one SD3 pass's tensors into byName.
func (d *denoiser) sd3Inputs(io TransformerIO, byName map[string]*ort.Tensor, rows int64, embeds, pooled []float32,
	cond conditioning, skipLayers []int64) error {
	var err error
	if byName[io.HiddenStates], err = d.input(io.HiddenStates, rows, int64(d.c), int64(d.h), int64(d.w)); err != nil {
		return err
	}
	if byName[io.Timestep], err = d.input(io.Timestep, rows); err != nil {
		return err
	}
	ehs := []int64{rows, int64(cond.seqLen), int64(cond.dim)}
	if byName[io.EncoderHiddenStates], err = d.floats(io.EncoderHiddenStates, embeds, ehs...); err != nil {
		return err
	}
	if byName[io.Pooled], err = d.floats(io.Pooled, pooled, rows, int64(cond.pooledDim)); err != nil {
		return err
	}
	if io.SkipLayers != "" {
		if byName[io.SkipLayers], err = d.ints(io.SkipLayers, skipLayers, int64(len(skipLayers))); err != nil {
			return err
		}
	}
	if io.ControlNet != "" {
		byName[io.ControlNet], err = d.zeroResidual(io.ControlNet, rows)
	}
	return err
}
