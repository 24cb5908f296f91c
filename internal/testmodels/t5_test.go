package testmodels

import (
	"fmt"
	"math"
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

// t5BucketRef is transformers' _relative_position_bucket(rel, bidirectional=True, num_buckets=32,
// max_distance=128) with its float32 steps.
func t5BucketRef(rel int64) int64 {
	var b int64
	if rel > 0 {
		b = 16
	}
	a := max(rel, -rel)
	if a < 8 {
		return b + a
	}
	l := float32(math.Log(float64(float32(a) / 8)))
	v := int64(l / float32(math.Log(16)) * 8)
	return b + min(8+v, 15)
}

func TestT5Bucket(t *testing.T) {
	n := NewNet("bucket", DefaultOpset, 0)
	rel := n.B.Input("rel", onnx.Int64, onnx.Sym("n"))
	n.B.Output(n.Cast(n.t5Bucket(rel), onnx.Float), "bucket", onnx.Float, onnx.Sym("n"))
	r := newRunner(t, mk(n.Model()))
	var rels []int64
	for v := int64(-600); v <= 600; v++ {
		rels = append(rels, v)
	}
	got := r.run(map[string]feed{"rel": ints([]int64{int64(len(rels))}, rels)},
		map[string][]int64{"bucket": {int64(len(rels))}})["bucket"]
	for i, v := range rels {
		if want := t5BucketRef(v); int64(got[i]) != want {
			t.Errorf("bucket(%d) = %v, want %d", v, got[i], want)
		}
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
