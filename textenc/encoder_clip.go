package textenc

import (
	"context"
	"fmt"
	"strconv"

	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/ortopts"
)

// CLIPEncoderOptions configure a CLIP text encoder.
type CLIPEncoderOptions struct {
	Session ortopts.SessionOptions
	// Hidden asks for per-token hidden states (SD3); FLUX uses only the pooled output.
	Hidden bool
	// ClipSkip, with Hidden, also exposes hidden_states[-(ClipSkip+2)] (0: only the penultimate layer).
	ClipSkip int
}

// CLIPEncoder runs a CLIP text encoder export: CLIPTextModelWithProjection (text_embeds + hidden
// states; SD3) or CLIPTextModel (pooler_output; FLUX).
type CLIPEncoder struct {
	enc       *encoderSession
	pooled    string
	pooledDim int
	hiddenDim int
	lastLayer int         // N of the highest hidden_states.N output
	hidden    map[int]int // clip skip → index among the session's outputs
}

// CLIPOutput is one encoder run over a batch of prompts.
type CLIPOutput struct {
	Batch, SeqLen int
	// Pooled is [Batch, PooledDim]: text_embeds (projected, at the EOS token) or pooler_output.
	Pooled    []float32
	PooledDim int
	// Hidden is [Batch, SeqLen, HiddenDim]: HF hidden_states[-(skip+2)], the penultimate layer for skip 0
	// (no final layer norm). Empty unless the encoder was loaded with Hidden.
	Hidden    []float32
	HiddenDim int
}

// LoadCLIPEncoder loads a CLIP text encoder and checks its outputs against what o asks for.
func LoadCLIPEncoder(ctx context.Context, path string, o CLIPEncoderOptions) (*CLIPEncoder, error) {
	if o.ClipSkip < 0 {
		return nil, fmt.Errorf("clip skip %d: must be 0 or more", o.ClipSkip)
	}
	_, outs, err := ort.Signature(path)
	if err != nil {
		return nil, fmt.Errorf("load CLIP text encoder: %w", err)
	}
	e := &CLIPEncoder{hidden: map[int]int{}, lastLayer: lastHiddenIndex(outs)}
	if e.pooled = CLIPPooledOutput(ranksOf(outs)); e.pooled == "" {
		return nil, fmt.Errorf("%w: %s has neither %s, %s nor %s among its outputs %v", ErrEncoderSignature, path, outTextEmbeds,
			outPoolerOutput, outPooledEmbeddings, names(outs))
	}
	selected := []string{e.pooled}
	penultimate := CLIPPenultimateOutput(ranksOf(outs))
	switch {
	case o.Hidden && e.lastLayer < 0 && penultimate != "": // a TensorRT-demo export: the penultimate layer only
		if o.ClipSkip > 0 {
			return nil, fmt.Errorf("%w: %s: clip skip %d needs more layers; the export has only the penultimate layer (%s)",
				ErrEncoderSignature, path, o.ClipSkip, penultimate)
		}
		e.hidden[0] = len(selected)
		selected = append(selected, penultimate)
	case o.Hidden:
		for _, skip := range uniq(0, o.ClipSkip) {
			layer := e.lastLayer - 1 - skip
			if e.lastLayer < 1 || layer < 0 {
				return nil, fmt.Errorf("%w: %s: clip skip %d needs hidden_states.%d; the export has hidden_states.0…%d (export it with output_hidden_states)",
					ErrEncoderSignature, path, skip, layer, e.lastLayer)
			}
			e.hidden[skip] = len(selected)
			selected = append(selected, hiddenPrefix+strconv.Itoa(layer))
		}
	}
	so := o.Session
	so.Outputs = selected
	if e.enc, err = loadEncoder(ctx, path, so); err != nil {
		return nil, fmt.Errorf("load CLIP text encoder: %w", err)
	}
	sessOuts := e.enc.sess.Outputs()
	if e.pooledDim, err = outputWidth(path, sessOuts[0], "projection_dim", "hidden_size"); err != nil {
		e.Close()
		return nil, err
	}
	if len(sessOuts) > 1 {
		if e.hiddenDim, err = outputWidth(path, sessOuts[1], "hidden_size"); err != nil {
			e.Close()
			return nil, err
		}
	}
	return e, nil
}

// Encode runs the encoder on a batch of padded id rows (one per prompt, all the same length).
// clipSkip must be 0 or the ClipSkip the encoder was loaded with.
func (e *CLIPEncoder) Encode(ctx context.Context, ids [][]int64, clipSkip int) (CLIPOutput, error) {
	hiddenAt, wantHidden := e.hidden[clipSkip]
	if len(e.hidden) > 0 && !wantHidden {
		return CLIPOutput{}, fmt.Errorf("encode %s: clip skip %d was not requested when the encoder was loaded", e.enc.path, clipSkip)
	}
	widths := []int{e.pooledDim}
	for range e.hidden {
		widths = append(widths, e.hiddenDim)
	}
	res, err := e.enc.run(ctx, ids, widths)
	if err != nil {
		return CLIPOutput{}, err
	}
	out := CLIPOutput{Batch: len(ids), SeqLen: len(ids[0]), Pooled: res[0], PooledDim: e.pooledDim}
	if wantHidden {
		out.Hidden, out.HiddenDim = res[hiddenAt], e.hiddenDim
	}
	return out, nil
}

// PooledName is the pooled output the export provides (text_embeds or pooler_output).
func (e *CLIPEncoder) PooledName() string { return e.pooled }

// Layers is the number of transformer layers the export exposes hidden states for (0 if none).
func (e *CLIPEncoder) Layers() int { return max(e.lastLayer, 0) }

// Close releases the session.
func (e *CLIPEncoder) Close() error { return e.enc.close() }

func findInfo(ts []ort.TensorInfo, name string) (ort.TensorInfo, bool) {
	for _, t := range ts {
		if t.Name == name {
			return t, true
		}
	}
	return ort.TensorInfo{}, false
}

func names(ts []ort.TensorInfo) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Name
	}
	return out
}

func uniq(vals ...int) []int {
	var out []int
	seen := map[int]bool{}
	for _, v := range vals {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
