package textenc

import "testing"

// TestOutputNames: the Optimum names first, then the TensorRT demo's (text_embeddings is the pooled
// output only at rank 2, the T5 or CLIP last hidden state at rank 3).
func TestOutputNames(t *testing.T) {
	for _, c := range []struct {
		outs                       OutputRanks
		pooled, penultimate, t5hid string
	}{
		{OutputRanks{"text_embeds": 2, "hidden_states.12": 3}, "text_embeds", "", ""},
		{OutputRanks{"pooler_output": 2, "last_hidden_state": 3}, "pooler_output", "", "last_hidden_state"},
		{OutputRanks{"text_embeddings": 3, "pooled_embeddings": 2}, "pooled_embeddings", "", "text_embeddings"},
		{OutputRanks{"text_embeddings": 2, "hidden_states": 3}, "text_embeddings", "hidden_states", ""},
		{OutputRanks{"text_embeddings": 3}, "", "", "text_embeddings"},
	} {
		if p, h, t5 := CLIPPooledOutput(c.outs), CLIPPenultimateOutput(c.outs), T5HiddenOutput(c.outs); p != c.pooled ||
			h != c.penultimate || t5 != c.t5hid {
			t.Errorf("%v: pooled %q, penultimate %q, T5 %q; want %q, %q, %q", c.outs, p, h, t5, c.pooled, c.penultimate, c.t5hid)
		}
	}
}
