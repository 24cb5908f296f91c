package pipeline

import (
	"context"
	"fmt"
	"maps"

	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/textenc"
)

// FLUX latent packing and position ids (flow-sampling.md §4.3).

// packLatents writes NCHW latents x [b, c, h, w] into FLUX's packed layout dst [b, (h/2)(w/2), 4c]:
// x.view(b,c,h/2,2,w/2,2).permute(0,2,4,1,3,5).reshape(b,(h/2)(w/2),4c), i.e.
// dst[b, i·(w/2)+j, ch·4 + dy·2 + dx] = x[b, ch, 2i+dy, 2j+dx]. h and w must be even.
func packLatents(dst, x []float32, b, c, h, w int) {
	hw, w2 := h*w, w/2
	for n := range b {
		xs := x[n*c*hw : (n+1)*c*hw]
		ds := dst[n*c*hw : (n+1)*c*hw]
		for ch := range c {
			for y := range h {
				row := xs[(ch*h+y)*w : (ch*h+y+1)*w]
				base := (y/2)*w2*4*c + ch*4 + (y%2)*2
				for xx, v := range row {
					ds[base+(xx/2)*4*c+xx%2] = v
				}
			}
		}
	}
}

// unpackLatents is the inverse of packLatents: p [b, (h/2)(w/2), 4c] → dst [b, c, h, w].
func unpackLatents(dst, p []float32, b, c, h, w int) {
	hw, w2 := h*w, w/2
	for n := range b {
		ps := p[n*c*hw : (n+1)*c*hw]
		ds := dst[n*c*hw : (n+1)*c*hw]
		for ch := range c {
			for y := range h {
				row := ds[(ch*h+y)*w : (ch*h+y+1)*w]
				base := (y/2)*w2*4*c + ch*4 + (y%2)*2
				for xx := range row {
					row[xx] = ps[base+(xx/2)*4*c+xx%2]
				}
			}
		}
	}
}

// imageIDs is FLUX's img_ids for latents h×w: [(h/2)(w/2), 3] with row i·(w/2)+j = [0, i, j].
func imageIDs(h, w int) []int64 {
	h2, w2 := h/2, w/2
	ids := make([]int64, 0, h2*w2*3)
	for i := range h2 {
		for j := range w2 {
			ids = append(ids, 0, int64(i), int64(j))
		}
	}
	return ids
}

// encodeFlux computes FLUX's conditioning (flow-sampling.md §4.2): CLIP's pooled output of Prompt, T5
// of Prompt2 (or Prompt), and for true CFG the negative prompt's, each encoded once and repeated.
func (p *Pipeline) encodeFlux(ctx context.Context, pl *plan, tm *Timings) (conditioning, error) {
	ms := p.ms
	enc := textenc.FluxEncoders{TokenizerCLIP: ms.clipTok[0], TokenizerT5: ms.t5Tok, CLIP: ms.clip[0], T5: ms.t5,
		MaxSequenceLength: pl.maxSeq}
	r := pl.req
	pos, err := enc.Encode(ctx, []textenc.FluxPrompt{{Prompt: r.Prompt, Prompt2: r.Prompt2}})
	if err != nil {
		return conditioning{}, fmt.Errorf("pipeline: encode prompt: %w", err)
	}
	tm.Tokenize += pos.TokenizeTime
	tm.Encode += pos.EncodeTime
	p.warnTruncated(pl, "prompt", -1, pos.Truncated)
	c := conditioning{rows: pl.batch, seqLen: pos.SeqLen, dim: pos.Dim, pooledDim: pos.PooledDim,
		embeds: repeatRows(pos.PromptEmbeds, pl.batch), pooled: repeatRows(pos.Pooled, pl.batch)}
	if !pl.doTrueCFG {
		return c, nil
	}
	neg, err := enc.Encode(ctx, []textenc.FluxPrompt{{Prompt: r.NegativePrompt, Prompt2: r.NegativePrompt2}})
	if err != nil {
		return conditioning{}, fmt.Errorf("pipeline: encode negative prompt: %w", err)
	}
	tm.Tokenize += neg.TokenizeTime
	tm.Encode += neg.EncodeTime
	p.warnTruncated(pl, "negative prompt", -1, neg.Truncated)
	if neg.SeqLen != pos.SeqLen {
		return conditioning{}, fmt.Errorf("pipeline: negative prompt encodes to %d tokens, the prompt to %d", neg.SeqLen, pos.SeqLen)
	}
	c.negEmbeds, c.negPooled = repeatRows(neg.PromptEmbeds, pl.batch), repeatRows(neg.Pooled, pl.batch)
	return c, nil
}

// setupFlux allocates the FLUX passes: the main pass and, for true CFG, the negative pass, which shares
// the latents, timestep, guidance and img_ids tensors.
func (d *denoiser) setupFlux(io TransformerIO, cond conditioning, guidance float64) error {
	b, tokens, seq := int64(d.b), int64(d.h/2*d.w/2), int64(cond.seqLen)
	width, ids := int64(4*d.c), imageIDs(d.h, d.w)
	if d.fx != nil { // Fill's extra channels, Kontext's reference tokens and their ids
		width += int64(d.fx.e)
		tokens += int64(d.fx.refTokens)
		ids = append(ids, d.fx.refIDs...)
	}
	shared := map[string]*ort.Tensor{}
	var err error
	if shared[io.HiddenStates], err = d.input(io.HiddenStates, b, tokens, width); err != nil {
		return err
	}
	if shared[io.Timestep], err = d.input(io.Timestep, b); err != nil {
		return err
	}
	if io.Guidance != "" {
		if shared[io.Guidance], err = d.input(io.Guidance, b); err != nil {
			return err
		}
		if err := setConst(shared[io.Guidance], float32(guidance)); err != nil {
			return err
		}
	}
	if shared[io.ImgIDs], err = d.ids(io, io.ImgIDs, ids, tokens); err != nil {
		return err
	}
	if d.main, err = d.fluxPass(io, shared, cond.embeds, cond.pooled, cond, seq); err != nil || cond.negEmbeds == nil {
		return err
	}
	d.neg, err = d.fluxPass(io, shared, cond.negEmbeds, cond.negPooled, cond, seq)
	return err
}

// fluxPass adds one pass's text inputs to the shared tensors and assembles it.
func (d *denoiser) fluxPass(io TransformerIO, shared map[string]*ort.Tensor, embeds, pooled []float32, cond conditioning,
	seq int64) (*pass, error) {
	byName := maps.Clone(shared)
	b := int64(d.b)
	var err error
	if byName[io.EncoderHiddenStates], err = d.floats(io.EncoderHiddenStates, embeds, b, seq, int64(cond.dim)); err != nil {
		return nil, err
	}
	if byName[io.Pooled], err = d.floats(io.Pooled, pooled, b, int64(cond.pooledDim)); err != nil {
		return nil, err
	}
	txt := make([]int64, seq*3) // diffusers' text_ids: zeros
	if byName[io.TxtIDs], err = d.ids(io, io.TxtIDs, txt, seq); err != nil {
		return nil, err
	}
	return d.newPass(io, byName, d.b)
}

// ids allocates FLUX position ids [seq, 3], or [B, seq, 3] repeated over the batch for legacy exports.
func (d *denoiser) ids(io TransformerIO, name string, vals []int64, seq int64) (*ort.Tensor, error) {
	if !io.IDs3D {
		return d.ints(name, vals, seq, 3)
	}
	rep := make([]int64, 0, len(vals)*d.b)
	for range d.b {
		rep = append(rep, vals...)
	}
	return d.ints(name, rep, int64(d.b), seq, 3)
}
