package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/rflowrt/rflow/internal/rng"
	"github.com/rflowrt/rflow/scheduler"
	"github.com/rflowrt/rflow/textenc"
)

// BatchItem is one image of a run that draws several prompts and seeds in one transformer batch
// (Request.Items). Each item's noise comes from its own generator seeded with Seed (and the step noise
// of stochastic samplers from its own StepNoiseSeed(Seed) generator), and its prompt is encoded on its
// own, so image i of such a run is the image a run of Prompt and Seed alone draws.
type BatchItem struct {
	// Prompt, Prompt2 and Prompt3 are as in Request (empty Prompt2/Prompt3 default to Prompt).
	Prompt, Prompt2, Prompt3 string
	Seed                     uint64
}

// maxCachedPrompts bounds the pipeline's cache of per-prompt text conditioning (an SD3 prompt is
// about 5 MB of float32 at full size).
const maxCachedPrompts = 32

// resolveItems checks Request.Items and sets the batch size and seed from them.
func resolveItems(r *Request) error {
	if len(r.Items) == 0 {
		return nil
	}
	if r.BatchSize != 0 && r.BatchSize != len(r.Items) {
		return fmt.Errorf("pipeline: batch size %d with %d items: leave BatchSize 0 with Items", r.BatchSize, len(r.Items))
	}
	if r.InitImage != nil {
		return errors.New("pipeline: Items do not combine with an init image")
	}
	r.BatchSize = len(r.Items)
	r.Seed = r.Items[0].Seed
	return nil
}

// noise draws the initial noise: per item from its own seed with Items, else as the request says.
func (pl *plan) noise() ([]float32, error) {
	if len(pl.req.Items) == 0 {
		return rng.Noise(pl.req.RNG, pl.req.Seed, []int{pl.batch, pl.c, pl.h, pl.w}, pl.req.BatchMode)
	}
	out := make([]float32, 0, pl.batch*pl.c*pl.h*pl.w)
	for _, it := range pl.req.Items {
		x, err := rng.Noise(pl.req.RNG, it.Seed, []int{1, pl.c, pl.h, pl.w}, rng.OneGenerator)
		if err != nil {
			return nil, err
		}
		out = append(out, x...)
	}
	return out, nil
}

// stepNoise is the noise source of stochastic samplers: one generator seeded with StepNoiseSeed(Seed)
// for the whole batch, or with Items one per item, each filling its item's part of every draw.
func stepNoise(pl *plan) (scheduler.NoiseSource, error) {
	seeds := []uint64{pl.req.Seed}
	if len(pl.req.Items) > 0 {
		seeds = seeds[:0]
		for _, it := range pl.req.Items {
			seeds = append(seeds, it.Seed)
		}
	}
	srcs := make([]rng.Source, len(seeds))
	for i, s := range seeds {
		var err error
		if srcs[i], err = rng.New(pl.req.RNG, scheduler.StepNoiseSeed(s)); err != nil {
			return nil, err
		}
	}
	return scheduler.NoiseFunc(func(dst []float32, _, _ float64) error {
		per := len(dst) / len(srcs)
		for i, src := range srcs {
			src.Randn(dst[i*per : (i+1)*per])
		}
		return nil
	}), nil
}

// promptKey identifies one encoding of a prompt: the texts, whether it is a negative prompt (SD3
// encodes those with clip skip 0), clip skip and the T5 length.
type promptKey struct {
	p1, p2, p3       string
	clipSkip, maxSeq int
}

// promptCond is one prompt's conditioning rows and the encoders that cut it.
type promptCond struct {
	embeds, pooled         []float32
	seqLen, dim, pooledDim int
	truncated              []textenc.Truncation
}

// condCache keeps the conditioning of recent prompts; the oldest entry goes first when it is full.
type condCache struct {
	m     map[promptKey]promptCond
	order []promptKey
}

func (c *condCache) put(k promptKey, v promptCond) {
	if c.m == nil {
		c.m = map[promptKey]promptCond{}
	}
	if _, ok := c.m[k]; ok {
		return
	}
	if len(c.order) >= maxCachedPrompts {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
	c.m[k] = v
	c.order = append(c.order, k)
}

// encodeOne returns one prompt's conditioning, from the cache or from a run of the text encoders on
// that prompt alone (so its bits are those of a run of that prompt by itself).
func (p *Pipeline) encodeOne(ctx context.Context, pl *plan, k promptKey, tm *Timings) (promptCond, error) {
	if v, ok := p.conds.m[k]; ok {
		return v, nil
	}
	ms := p.ms
	var v promptCond
	if pl.flux {
		enc := textenc.FluxEncoders{TokenizerCLIP: ms.clipTok[0], TokenizerT5: ms.t5Tok, CLIP: ms.clip[0], T5: ms.t5,
			MaxSequenceLength: k.maxSeq}
		c, err := enc.Encode(ctx, []textenc.FluxPrompt{{Prompt: k.p1, Prompt2: k.p2}})
		if err != nil {
			return v, err
		}
		tm.Tokenize, tm.Encode = tm.Tokenize+c.TokenizeTime, tm.Encode+c.EncodeTime
		v = promptCond{c.PromptEmbeds, c.Pooled, c.SeqLen, c.Dim, c.PooledDim, c.Truncated}
	} else {
		enc := textenc.SD3Encoders{TokenizerL: ms.clipTok[0], TokenizerG: ms.clipTok[1], CLIPL: ms.clip[0],
			CLIPG: ms.clip[1], MaxSequenceLength: k.maxSeq, Dim: p.m.JointDim}
		if ms.t5 != nil {
			enc.TokenizerT5, enc.T5 = ms.t5Tok, ms.t5
		}
		c, err := enc.Encode(ctx, []textenc.SD3Prompt{{Prompt: k.p1, Prompt2: k.p2, Prompt3: k.p3}}, k.clipSkip)
		if err != nil {
			return v, err
		}
		tm.Tokenize, tm.Encode = tm.Tokenize+c.TokenizeTime, tm.Encode+c.EncodeTime
		v = promptCond{c.PromptEmbeds, c.Pooled, c.SeqLen, c.Dim, c.PooledDim, c.Truncated}
	}
	p.conds.put(k, v)
	return v, nil
}

// encodeItems assembles the conditioning of a run with Items: each item's own prompt rows and, for SD3
// CFG or FLUX true CFG, the request's negative prompt repeated (SD3: the unconditional rows first).
func (p *Pipeline) encodeItems(ctx context.Context, pl *plan, tm *Timings) (conditioning, error) {
	if p.conds == nil {
		p.conds = &condCache{}
	}
	r := pl.req
	var c conditioning
	for i, it := range r.Items {
		v, err := p.encodeOne(ctx, pl, promptKey{it.Prompt, it.Prompt2, it.Prompt3, r.ClipSkip, pl.maxSeq}, tm)
		if err != nil {
			return c, fmt.Errorf("pipeline: encode prompt of item %d: %w", i, err)
		}
		p.warnTruncated(pl, "prompt", i, v.truncated)
		if i > 0 && (v.seqLen != c.seqLen || v.dim != c.dim || v.pooledDim != c.pooledDim) {
			return c, fmt.Errorf("pipeline: item %d encodes to %d×%d, item 0 to %d×%d", i, v.seqLen, v.dim, c.seqLen, c.dim)
		}
		c.seqLen, c.dim, c.pooledDim = v.seqLen, v.dim, v.pooledDim
		c.embeds = append(c.embeds, v.embeds...)
		c.pooled = append(c.pooled, v.pooled...)
	}
	c.rows = pl.batch
	if !pl.doCFG && !pl.doTrueCFG {
		return c, nil
	}
	negKey := promptKey{r.NegativePrompt, r.NegativePrompt2, r.NegativePrompt3, 0, pl.maxSeq}
	if pl.flux {
		negKey = promptKey{p1: r.NegativePrompt, p2: r.NegativePrompt2, maxSeq: pl.maxSeq}
	}
	neg, err := p.encodeOne(ctx, pl, negKey, tm)
	if err != nil {
		return c, fmt.Errorf("pipeline: encode negative prompt: %w", err)
	}
	p.warnTruncated(pl, "negative prompt", -1, neg.truncated)
	if neg.seqLen != c.seqLen {
		return c, fmt.Errorf("pipeline: negative prompt encodes to %d tokens, the prompts to %d", neg.seqLen, c.seqLen)
	}
	if pl.flux {
		c.negEmbeds, c.negPooled = repeatRows(neg.embeds, pl.batch), repeatRows(neg.pooled, pl.batch)
		return c, nil
	}
	c.rows = 2 * pl.batch
	c.embeds = append(repeatRows(neg.embeds, pl.batch), c.embeds...)
	c.pooled = append(repeatRows(neg.pooled, pl.batch), c.pooled...)
	return c, nil
}
