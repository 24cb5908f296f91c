package testmodels

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/rflowrt/rflow/internal/onnx"
)

func TestT5EncoderRuns(t *testing.T) {
	for _, ids := range []onnx.DataType{onnx.Int64, onnx.Int32} {
		for _, io := range []onnx.DataType{onnx.Float, onnx.Float16} {
			c := TinyT5()
			c.IDs, c.IO = ids, io
			t.Run(fmt.Sprintf("%v_%v", ids, io), func(t *testing.T) {
				r := newRunner(t, mk(T5Encoder(c)))
				r.names([]string{"input_ids"}, []string{"last_hidden_state"})
				r.types(map[string]onnx.DataType{"input_ids": ids, "last_hidden_state": io})
				rng := rand.New(rand.NewPCG(13, 14))
				for _, sz := range [][2]int64{{1, 7}, {2, 300}} {
					got := r.run(map[string]feed{"input_ids": ints(sz[:], rngIDs(rng, int(sz[0]*sz[1]), c.Vocab))},
						map[string][]int64{"last_hidden_state": {sz[0], sz[1], int64(c.DModel)}})
					finite(t, "last_hidden_state", got["last_hidden_state"])
				}
			})
		}
	}
}

// TestT5Bidirectional changes the last token, which must move every position (no causal mask).
func TestT5Bidirectional(t *testing.T) {
	c := TinyT5()
	r := newRunner(t, mk(T5Encoder(c)))
	const s = 12
	ids := rngIDs(rand.New(rand.NewPCG(15, 16)), s, c.Vocab)
	outs := map[string][]int64{"last_hidden_state": {1, s, int64(c.DModel)}}
	ref := r.run(map[string]feed{"input_ids": ints([]int64{1, s}, ids)}, outs)["last_hidden_state"]
	ids[s-1] = (ids[s-1] + 1) % int64(c.Vocab)
	got := r.run(map[string]feed{"input_ids": ints([]int64{1, s}, ids)}, outs)["last_hidden_state"]
	if d := maxDiff(ref[:c.DModel], got[:c.DModel]); d < 1e-4 {
		t.Errorf("position 0 moved by only %g", d)
	}
}

func TestT5EncoderDeterministic(t *testing.T) {
	c := TinyT5()
	a := digest(t, mk(T5Encoder(c)))
	if digest(t, mk(T5Encoder(c))) != a {
		t.Fatal("same config, different bytes")
	}
	c.Seed++
	if digest(t, mk(T5Encoder(c))) == a {
		t.Fatal("different seed, same bytes")
	}
}
