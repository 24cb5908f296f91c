package testmodels

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/rflowrt/rflow/internal/onnx"
)

const (
	clipBOS = 49406
	clipEOS = 49407
)

// clipIDs is a batch of b prompts of length s: BOS, words, EOS, then pad (EOS as CLIP-L pads, or 0
// as CLIP-G's "!"); prompt k has 3+k words.
func clipIDs(b, s int, pad int64) []int64 {
	ids := make([]int64, 0, b*s)
	for k := range b {
		row := []int64{clipBOS}
		for w := range 3 + k {
			row = append(row, int64(320+97*w+k))
		}
		row = append(row, clipEOS)
		for len(row) < s {
			row = append(row, pad)
		}
		ids = append(ids, row[:s]...)
	}
	return ids
}

// clipOutShapes are the output shapes of c at batch b, length s.
func clipOutShapes(c CLIPConfig, b, s int64) map[string][]int64 {
	h := int64(c.Hidden)
	outs := map[string][]int64{"last_hidden_state": {b, s, h}}
	if c.Projection == 0 {
		outs["pooler_output"] = []int64{b, h}
		return outs
	}
	outs["text_embeds"] = []int64{b, int64(c.Projection)}
	for i := 0; i <= c.Layers; i++ {
		outs[fmt.Sprintf("hidden_states.%d", i)] = []int64{b, s, h}
	}
	return outs
}

func clipOutNames(c CLIPConfig) []string {
	if c.Projection == 0 {
		return []string{"last_hidden_state", "pooler_output"}
	}
	names := []string{"text_embeds", "last_hidden_state"}
	for i := 0; i <= c.Layers; i++ {
		names = append(names, fmt.Sprintf("hidden_states.%d", i))
	}
	return names
}

func TestCLIPTextEncoderRuns(t *testing.T) {
	for _, proj := range []int{0, 16} {
		for _, ids := range []onnx.DataType{onnx.Int64, onnx.Int32} {
			for _, io := range []onnx.DataType{onnx.Float, onnx.Float16} {
				c := TinyCLIP(proj)
				c.IDs, c.IO = ids, io
				t.Run(fmt.Sprintf("proj%d_%v_%v", proj, ids, io), func(t *testing.T) {
					r := newRunner(t, mk(CLIPTextEncoder(c)))
					names := clipOutNames(c)
					r.names([]string{"input_ids"}, names)
					types := map[string]onnx.DataType{"input_ids": ids}
					for _, nm := range names {
						types[nm] = io
					}
					r.types(types)
					for _, sz := range [][2]int{{1, 77}, {2, 12}} {
						b, s := int64(sz[0]), int64(sz[1])
						got := r.run(map[string]feed{"input_ids": ints([]int64{b, s}, clipIDs(sz[0], sz[1], clipEOS))},
							clipOutShapes(c, b, s))
						for nm, v := range got {
							finite(t, nm, v)
						}
					}
				})
			}
		}
	}
}

// TestCLIPPooledPosition changes a token after the EOS, which must not move the pooled output, and a
// token before it, which must; for the legacy argmax rule (EOSTokenID 2) and the eos_token_id rule.
func TestCLIPPooledPosition(t *testing.T) {
	for _, eos := range []int64{2, clipEOS} {
		for _, proj := range []int{0, 16} {
			c := TinyCLIP(proj)
			c.EOSTokenID = eos
			pooled := "text_embeds"
			if proj == 0 {
				pooled = "pooler_output"
			}
			r := newRunner(t, mk(CLIPTextEncoder(c)))
			const s = 16
			base := clipIDs(2, s, 0) // CLIG-G padding: "!" = 0
			outs := clipOutShapes(c, 2, s)
			ref := r.run(map[string]feed{"input_ids": ints([]int64{2, s}, base)}, outs)[pooled]
			after, before := slices.Clone(base), slices.Clone(base)
			after[s+10] = 1234 // row 1: BOS + 4 words + EOS at 5
			before[s+2] = 1234
			if d := maxDiff(ref, r.run(map[string]feed{"input_ids": ints([]int64{2, s}, after)}, outs)[pooled]); d != 0 {
				t.Errorf("eos %d proj %d: a token after EOS moved %s by %g", eos, proj, pooled, d)
			}
			if d := maxDiff(ref, r.run(map[string]feed{"input_ids": ints([]int64{2, s}, before)}, outs)[pooled]); d < 1e-4 {
				t.Errorf("eos %d proj %d: a token before EOS moved %s by only %g", eos, proj, pooled, d)
			}
		}
	}
}

// TestCLIPCausal changes the last token: position 0 of every hidden state must stay, the last must move.
func TestCLIPCausal(t *testing.T) {
	c := TinyCLIP(16)
	r := newRunner(t, mk(CLIPTextEncoder(c)))
	const s, h = 10, 32
	ids := clipIDs(1, s, clipEOS)
	outs := clipOutShapes(c, 1, s)
	ref := r.run(map[string]feed{"input_ids": ints([]int64{1, s}, ids)}, outs)
	ids[s-1] = 777
	got := r.run(map[string]feed{"input_ids": ints([]int64{1, s}, ids)}, outs)
	for _, nm := range clipOutNames(c)[1:] {
		if d := maxDiff(ref[nm][:h], got[nm][:h]); d != 0 {
			t.Errorf("%s: position 0 moved by %g", nm, d)
		}
		if d := maxDiff(ref[nm][(s-1)*h:], got[nm][(s-1)*h:]); d < 1e-4 {
			t.Errorf("%s: last position moved by only %g", nm, d)
		}
	}
}

func TestCLIPTextEncoderDeterministic(t *testing.T) {
	c := TinyCLIP(16)
	a := digest(t, mk(CLIPTextEncoder(c)))
	if digest(t, mk(CLIPTextEncoder(c))) != a {
		t.Fatal("same config, different bytes")
	}
	c.Seed++
	if digest(t, mk(CLIPTextEncoder(c))) == a {
		t.Fatal("different seed, same bytes")
	}
}

func TestCLIPConfigErrors(t *testing.T) {
	for _, mod := range []func(*CLIPConfig){
		func(c *CLIPConfig) { c.Heads = 5 },
		func(c *CLIPConfig) { c.IDs = onnx.Float },
		func(c *CLIPConfig) { c.Projection = -1 },
	} {
		c := TinyCLIP(0)
		mod(&c)
		if _, err := CLIPTextEncoder(c); err == nil {
			t.Errorf("config %+v: no error", c)
		}
	}
}

// rngIDs are n random token ids below vocab.
func rngIDs(r *rand.Rand, n, vocab int) []int64 {
	v := make([]int64, n)
	for i := range v {
		v[i] = int64(r.IntN(vocab))
	}
	return v
}
