package textenc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/ort"
)

// Output names of the Optimum exports (flow-sampling.md §5.2).
const (
	outTextEmbeds   = "text_embeds"       // CLIPTextModelWithProjection (SD3 text_encoder, text_encoder_2)
	outPoolerOutput = "pooler_output"     // CLIPTextModel (FLUX text_encoder)
	outLastHidden   = "last_hidden_state" // T5 encoder
	hiddenPrefix    = "hidden_states."    // hidden_states.0 (embeddings) … hidden_states.N (last layer, before the final norm)
	inputIDs        = "input_ids"
	inputMask       = "attention_mask" // NVIDIA's TensorRT-demo CLIP with projection: fed all ones
)

// Output names of NVIDIA's TensorRT-demo exports (BFL's FLUX.1-*-onnx and Stability's SD3.5-*-tensorrt
// *.opt/ folders): CLIPTextModel gives text_embeddings (the last hidden state) and pooled_embeddings;
// CLIPTextModelWithProjection gives text_embeddings [B, D] (its projected text_embeds) and
// hidden_states (the penultimate layer, rank 3); T5 gives text_embeddings (its last hidden state).
const (
	outTextEmbeddings   = "text_embeddings"
	outPooledEmbeddings = "pooled_embeddings"
	outPenultimate      = "hidden_states"
)

// OutputRanks maps each output of an encoder export to its declared rank (0 when unknown): what the
// output-name functions below choose from.
type OutputRanks map[string]int

// ranksOf is the OutputRanks of a signature's outputs.
func ranksOf(outs []ort.TensorInfo) OutputRanks {
	r := OutputRanks{}
	for _, o := range outs {
		r[o.Name] = len(o.Shape)
	}
	return r
}

// CLIPPooledOutput is the pooled output a CLIP text encoder's outputs provide (text_embeds,
// pooler_output, pooled_embeddings, or a rank-2 text_embeddings), "" when none.
func CLIPPooledOutput(outs OutputRanks) string {
	for _, name := range []string{outTextEmbeds, outPoolerOutput, outPooledEmbeddings} {
		if _, ok := outs[name]; ok {
			return name
		}
	}
	if outs[outTextEmbeddings] == 2 {
		return outTextEmbeddings
	}
	return ""
}

// CLIPPenultimateOutput is the TensorRT-demo CLIP's rank-3 hidden_states output (the penultimate
// layer, what SD3 reads at clip skip 0), "" when the outputs have none.
func CLIPPenultimateOutput(outs OutputRanks) string {
	if outs[outPenultimate] == 3 {
		return outPenultimate
	}
	return ""
}

// T5HiddenOutput is a T5 encoder's last hidden state output (last_hidden_state, or the TensorRT
// demo's text_embeddings), "" when none.
func T5HiddenOutput(outs OutputRanks) string {
	if _, ok := outs[outLastHidden]; ok {
		return outLastHidden
	}
	if r, ok := outs[outTextEmbeddings]; ok && r != 2 { // rank 2: a projected CLIP's pooled output
		return outTextEmbeddings
	}
	return ""
}

// ErrEncoderSignature is wrapped by every error about an encoder export that lacks what rflow needs.
var ErrEncoderSignature = errors.New("text encoder signature")

// encoderSession is what CLIP and T5 encoders share: a session with an input_ids input and a reader
// that turns a batch of id rows into float32 outputs of known widths.
type encoderSession struct {
	sess   *ort.Session
	path   string
	seqLen int // fixed sequence length the export declares, or -1
	// mask: the export also takes an attention_mask (NVIDIA's TensorRT-demo CLIP), fed all ones — what
	// diffusers' SD3 and FLUX pipelines mean by passing none.
	mask bool
}

func loadEncoder(ctx context.Context, path string, so ort.SessionOptions) (*encoderSession, error) {
	sess, err := ort.NewSession(ctx, path, so)
	if err != nil {
		return nil, err
	}
	in, ok := sess.Input(inputIDs)
	mask, hasMask := sess.Input(inputMask)
	if !ok || len(sess.Inputs()) != 1+map[bool]int{true: 1}[hasMask] {
		sess.Close()
		return nil, fmt.Errorf("%w: %s: want one input %q (and optionally %q), the model has %v", ErrEncoderSignature, path, inputIDs,
			inputMask, sess.Inputs())
	}
	if hasMask && mask.Type != onnx.Int32 && mask.Type != onnx.Int64 {
		sess.Close()
		return nil, fmt.Errorf("%w: %s: %s must be int32 or int64", ErrEncoderSignature, path, mask)
	}
	if in.Type != onnx.Int32 && in.Type != onnx.Int64 {
		sess.Close()
		return nil, fmt.Errorf("%w: %s: %s must be int32 or int64", ErrEncoderSignature, path, in)
	}
	e := &encoderSession{sess: sess, path: path, seqLen: -1, mask: hasMask}
	if len(in.Shape) == 2 && in.Shape[1] > 0 {
		e.seqLen = int(in.Shape[1])
	}
	return e, nil
}

// run feeds ids (one row per prompt, all the same length) and returns each output as float32, with the
// given widths (the size of each output's last dimension; outputs are [B, width] or [B, S, width]).
func (e *encoderSession) run(ctx context.Context, ids [][]int64, widths []int) ([][]float32, error) {
	if len(ids) == 0 || len(ids[0]) == 0 {
		return nil, fmt.Errorf("encode %s: no ids", e.path)
	}
	b, s := len(ids), len(ids[0])
	if e.seqLen > 0 && s != e.seqLen {
		return nil, fmt.Errorf("encode %s: %d ids per prompt, the export takes exactly %d", e.path, s, e.seqLen)
	}
	flat := make([]int64, 0, b*s)
	for i, row := range ids {
		if len(row) != s {
			return nil, fmt.Errorf("encode %s: prompt %d has %d ids, prompt 0 has %d (pad them to one length)", e.path, i, len(row), s)
		}
		flat = append(flat, row...)
	}
	in, err := e.sess.NewInput(inputIDs, int64(b), int64(s))
	if err != nil {
		return nil, err
	}
	defer in.Destroy()
	if err := in.SetInt64(flat); err != nil {
		return nil, fmt.Errorf("encode %s: %w", e.path, err)
	}
	inputs := []*ort.Tensor{in}
	if e.mask {
		m, err := e.sess.NewInput(inputMask, int64(b), int64(s))
		if err != nil {
			return nil, err
		}
		defer m.Destroy()
		for i := range flat {
			flat[i] = 1
		}
		if err := m.SetInt64(flat); err != nil {
			return nil, fmt.Errorf("encode %s: %w", e.path, err)
		}
		inputs = append(inputs, m)
	}
	outs := e.sess.Outputs()
	tensors := make([]*ort.Tensor, len(outs))
	defer func() {
		for _, t := range tensors {
			t.Destroy()
		}
	}()
	for i, o := range outs {
		shape := []int64{int64(b), int64(widths[i])}
		if len(o.Shape) == 3 {
			shape = []int64{int64(b), int64(s), int64(widths[i])}
		}
		if tensors[i], err = e.sess.NewOutput(o.Name, shape...); err != nil {
			return nil, err
		}
	}
	if err := e.sess.Run(ctx, inputs, tensors); err != nil {
		return nil, err
	}
	res := make([][]float32, len(outs))
	for i, t := range tensors {
		res[i] = make([]float32, t.Len())
		if err := t.ReadFloat32(res[i]); err != nil {
			return nil, fmt.Errorf("encode %s: %w", e.path, err)
		}
	}
	return res, nil
}

func (e *encoderSession) close() error { return e.sess.Close() }

// outputWidth is the last dimension of a declared output; when the export leaves it symbolic, it comes
// from the config.json beside the model (keys in order), as diffusers' configs name it.
func outputWidth(path string, info ort.TensorInfo, configKeys ...string) (int, error) {
	if n := len(info.Shape); n > 0 && info.Shape[n-1] > 0 {
		return int(info.Shape[n-1]), nil
	}
	cfgPath := filepath.Join(filepath.Dir(path), "config.json")
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: output %s has no fixed width and %s is unreadable: %v", ErrEncoderSignature, path, info, cfgPath, err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		return 0, fmt.Errorf("read %s: %w", cfgPath, err)
	}
	for _, k := range configKeys {
		if v, ok := cfg[k].(float64); ok && v > 0 {
			return int(v), nil
		}
	}
	return 0, fmt.Errorf("%w: %s: output %s has no fixed width and %s has none of %v", ErrEncoderSignature, path, info, cfgPath, configKeys)
}

// lastHiddenIndex is the highest N among the hidden_states.N outputs, or -1.
func lastHiddenIndex(outs []ort.TensorInfo) int {
	last := -1
	for _, o := range outs {
		if n, err := strconv.Atoi(strings.TrimPrefix(o.Name, hiddenPrefix)); err == nil && strings.HasPrefix(o.Name, hiddenPrefix) && n > last {
			last = n
		}
	}
	return last
}
