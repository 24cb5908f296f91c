package build

import (
	"fmt"

	"github.com/rflowrt/rflow/assets/internal/demo"
	"github.com/rflowrt/rflow/internal/onnx"
)

// tokenTable is the encoder's per-token feature table [V, 16]: shape and colour one-hots and the
// "on" and "background" indicators of each whole-word token; every other token's row is zero.
func tokenTable() (vocab int64, table []float32) {
	tok := demo.Vocabulary()
	V := len(tok.Vocab)
	table = make([]float32, V*demo.TokenFeatures)
	for id, s := range tok.Vocab {
		w, ok := demo.Lookup(s)
		if !ok {
			continue
		}
		row := table[id*demo.TokenFeatures:]
		switch w.Kind {
		case demo.KindShape:
			row[demo.FeatShape+w.Index] = 1
		case demo.KindColor:
			row[demo.FeatColor+w.Index] = 1
		case demo.KindOn:
			row[demo.FeatOn] = 1
		case demo.KindBackground:
			row[demo.FeatBackground] = 1
		}
	}
	return int64(V), table
}

// promptFeatures adds the prompt-feature computation on input_ids [B,S] and returns the token
// features [B,S,16] and the counts [B,22]: shape counts, foreground and background colour counts. A
// colour token is background when an "on" token precedes it (CumSum of the "on" column) or the next
// token is "background"; otherwise foreground.
func promptFeatures(g graph, ids string) (feat, counts string) {
	V, table := tokenTable()
	nS, nC := int64(len(demo.Shapes)), int64(len(demo.Colors))
	safe := g.op("Min", g.op("Max", ids, g.Constant(onnx.Int64Tensor("", []int64{}, []int64{0}))),
		g.Constant(onnx.Int64Tensor("", []int64{}, []int64{V - 1})))
	tab := g.f32([]int64{V, demo.TokenFeatures}, table...)
	feat = g.opA("Gather", []string{tab, safe}, onnx.AttrInt("axis", 0)) // [B,S,16]
	column := func(i int64) string {
		return g.opA("Gather", []string{feat, g.Constant(onnx.Int64Tensor("", []int64{}, []int64{i}))}, onnx.AttrInt("axis", 2))
	}
	on, bgWord := column(demo.FeatOn), column(demo.FeatBackground) // [B,S]
	afterOn := g.op("CumSum", on, g.Constant(onnx.Int64Tensor("", []int64{}, []int64{1})))
	nextBg := g.op("Pad", g.slice(bgWord, 1, 1, 1<<62), g.ints(0, 0, 0, 1))
	isBg := g.op("Unsqueeze", g.op("Min", g.op("Add", afterOn, nextBg), g.scalar(1)), g.ints(2)) // [B,S,1]
	colours := g.slice(feat, 2, demo.FeatColor, demo.FeatColor+nC)
	bg := g.reduceSum(g.op("Mul", colours, isBg), false, 1)
	fg := g.reduceSum(g.op("Mul", colours, g.op("Sub", g.scalar(1), isBg)), false, 1)
	shapes := g.reduceSum(g.slice(feat, 2, demo.FeatShape, demo.FeatShape+nS), false, 1)
	return feat, g.concat(1, shapes, fg, bg)
}

// clipKind says which Optimum CLIP export a demo encoder imitates.
type clipKind int

const (
	clipWithProjection clipKind = iota // SD3 text_encoder: text_embeds + last_hidden_state + hidden_states.*
	clipZeros                          // SD3 text_encoder_2 (CLIP-G): the same signature, all zeros
	clipPlain                          // FLUX text_encoder: last_hidden_state + pooler_output
)

// CLIPEncoder builds a demo CLIP text encoder: the pooled output carries the prompt counts
// (zero-padded to its width), the hidden states carry each token's features (zero-padded).
func CLIPEncoder(kind clipKind) ([]byte, error) {
	g := newGraph("demo_clip_text")
	B, S := onnx.Sym("batch_size"), onnx.Sym("sequence_length")
	ids := g.Input("input_ids", onnx.Int64, B, S)
	var pooled, hidden string
	if kind == clipZeros {
		pooled = g.zeros(g.concat(0, g.shapeDims(ids, 0, 1), g.ints(clipHidden)))
		hidden = g.zeros(g.concat(0, g.shapeDims(ids, 0, 2), g.ints(clipHidden)))
	} else {
		feat, counts := promptFeatures(g, ids)
		pooled = g.op("Pad", counts, g.ints(0, 0, 0, clipHidden-demo.PooledFeatures))
		hidden = g.op("Pad", feat, g.ints(0, 0, 0, 0, 0, clipHidden-demo.TokenFeatures))
	}
	pooledDims := []onnx.Dim{B, onnx.Fixed(clipHidden)}
	hiddenDims := []onnx.Dim{B, S, onnx.Fixed(clipHidden)}
	if kind == clipPlain {
		g.Output(hidden, "last_hidden_state", onnx.Float, hiddenDims...)
		g.Output(pooled, "pooler_output", onnx.Float, pooledDims...)
		return g.model()
	}
	g.Output(pooled, "text_embeds", onnx.Float, pooledDims...)
	g.Output(hidden, "last_hidden_state", onnx.Float, hiddenDims...)
	for i := range clipLayers + 1 {
		g.Output(hidden, fmt.Sprintf("hidden_states.%d", i), onnx.Float, hiddenDims...)
	}
	return g.model()
}

// T5Encoder builds the demo T5 encoder: last_hidden_state [B,S,64] of zeros (the demo's prompt
// reaches the transformer through the CLIP pooled output only).
func T5Encoder() ([]byte, error) {
	g := newGraph("demo_t5_encoder")
	B, S := onnx.Sym("batch_size"), onnx.Sym("sequence_length")
	ids := g.Input("input_ids", onnx.Int64, B, S)
	out := g.zeros(g.concat(0, g.shapeDims(ids, 0, 2), g.ints(t5Dim)))
	g.Output(out, "last_hidden_state", onnx.Float, B, S, onnx.Fixed(t5Dim))
	return g.model()
}
