package textenc

import (
	"context"
	"fmt"

	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/ortopts"
)

// T5Encoder runs a T5 encoder export (last_hidden_state, or a TensorRT-demo export's text_embeddings).
type T5Encoder struct {
	enc *encoderSession
	dim int
}

// T5Output is one T5 run: Hidden is [Batch, SeqLen, Dim].
type T5Output struct {
	Batch, SeqLen, Dim int
	Hidden             []float32
}

// LoadT5Encoder loads a T5 encoder export.
func LoadT5Encoder(ctx context.Context, path string, so ortopts.SessionOptions) (*T5Encoder, error) {
	_, outs, err := ort.Signature(path)
	if err != nil {
		return nil, fmt.Errorf("load T5 encoder: %w", err)
	}
	name := T5HiddenOutput(ranksOf(outs))
	if name == "" {
		return nil, fmt.Errorf("%w: %s has no %s or %s output (outputs: %v)", ErrEncoderSignature, path, outLastHidden, outTextEmbeddings, names(outs))
	}
	info, _ := findInfo(outs, name)
	e := &T5Encoder{}
	if e.dim, err = outputWidth(path, info, "d_model", "hidden_size"); err != nil {
		return nil, err
	}
	so.Outputs = []string{name}
	if e.enc, err = loadEncoder(ctx, path, so); err != nil {
		return nil, fmt.Errorf("load T5 encoder: %w", err)
	}
	return e, nil
}

// Encode runs the encoder on a batch of padded id rows (one per prompt, all the same length).
func (e *T5Encoder) Encode(ctx context.Context, ids [][]int64) (T5Output, error) {
	res, err := e.enc.run(ctx, ids, []int{e.dim})
	if err != nil {
		return T5Output{}, err
	}
	return T5Output{Batch: len(ids), SeqLen: len(ids[0]), Dim: e.dim, Hidden: res[0]}, nil
}

// Dim is the encoder's hidden width (4096 for T5-XXL), read from the export or its config.json.
func (e *T5Encoder) Dim() int { return e.dim }

// Close releases the session.
func (e *T5Encoder) Close() error { return e.enc.close() }
