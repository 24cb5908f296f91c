package pipeline

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/testmodels"
)

// TestTruncationWarnings: a prompt longer than a text encoder takes is cut as diffusers cuts it, and
// the run says so (which encoder, how many tokens dropped) in a warning event and Result.Warnings.
func TestTruncationWarnings(t *testing.T) {
	long := strings.TrimSpace(strings.Repeat("a red fox ", 30)) // 90 words: BOS + 90 + EOS = 92 CLIP tokens
	p, _ := echoPipeline(t, testmodels.KindSD3NoT5, echoSpec{})
	var events []string
	res, err := p.Generate(context.Background(), Request{Prompt: long, Prompt2: "short", Width: 32, Height: 32, Steps: 1},
		func(e Event) {
			if e.Stage == StageWarning {
				events = append(events, e.Message)
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	want := "prompt truncated: text_encoder (CLIP-L) takes 77 tokens; the prompt has 92, so its last 15 are dropped"
	if len(res.Warnings) != 1 || res.Warnings[0] != (Warning{Item: -1, Message: want}) || !slices.Equal(events, []string{want}) {
		t.Errorf("warnings %+v, events %q; want one about CLIP-L: %q", res.Warnings, events, want)
	}

	// FLUX: T5 cut at the max sequence length; the negative prompt too under true CFG.
	flux, _ := echoPipeline(t, testmodels.KindFluxSchnell, echoSpec{})
	res, err = flux.Generate(context.Background(), Request{Prompt: "a cat", Prompt2: "a red fox in the snow", NegativePrompt: long,
		TrueCFGScale: 2, MaxSequenceLength: 4, Width: 32, Height: 32, Steps: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range res.Warnings {
		got = append(got, w.Message)
	}
	for i, sub := range []string{"prompt truncated: text_encoder_2 (T5) takes 4 tokens", "negative prompt truncated: text_encoder (CLIP)",
		"negative prompt truncated: text_encoder_2 (T5)"} {
		if i >= len(got) || !strings.HasPrefix(got[i], sub) {
			t.Errorf("FLUX warnings %q: want [%d] to start with %q", got, i, sub)
		}
	}

	// Items: the warning names the item, and a short prompt gives none.
	res, err = p.Generate(context.Background(), Request{Items: []BatchItem{{Prompt: "short", Seed: 1}, {Prompt: long, Seed: 2}},
		Width: 32, Height: 32, Steps: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 2 || res.Warnings[0].Item != 1 || !strings.HasPrefix(res.Warnings[0].Message, "item 1: prompt truncated: text_encoder (CLIP-L)") ||
		len(itemWarnings(res.Warnings, 0)) != 0 || len(itemWarnings(res.Warnings, 1)) != 2 {
		t.Errorf("item warnings %+v", res.Warnings)
	}
}
