package textenc

import "fmt"

// Truncation reports a prompt longer than its text encoder takes: the encoder sees only the first
// MaxLength tokens (special tokens kept), as in diffusers, which logs a warning for it.
type Truncation struct {
	// Encoder is the text encoder's component name ("text_encoder", "text_encoder_2",
	// "text_encoder_3") and Kind what it is ("CLIP-L", "CLIP-G", "CLIP", "T5").
	Encoder, Kind string
	// Prompt is the index of the prompt in the batch given to Encode.
	Prompt int
	// Tokens is the prompt's length in tokens, special tokens included; MaxLength what the encoder
	// takes. Tokens − MaxLength tokens are dropped from the end of the prompt.
	Tokens, MaxLength int
}

// Dropped is the number of the prompt's tokens the encoder does not see.
func (t Truncation) Dropped() int { return t.Tokens - t.MaxLength }

func (t Truncation) String() string {
	return fmt.Sprintf("%s (%s) takes %d tokens; the prompt has %d, so its last %d are dropped",
		t.Encoder, t.Kind, t.MaxLength, t.Tokens, t.Dropped())
}

// truncation reports whether tok cuts text at maxLen (≤ 0: the tokenizer's MaxLength), as
// EncodePadded does.
func truncation(tok Tokenizer, text string, maxLen int, encoder, kind string, prompt int) (Truncation, bool) {
	if maxLen <= 0 {
		maxLen = tok.MaxLength()
	}
	n := len(tok.Encode(text))
	if n <= maxLen {
		return Truncation{}, false
	}
	return Truncation{Encoder: encoder, Kind: kind, Prompt: prompt, Tokens: n, MaxLength: maxLen}, true
}

// truncations collects the truncations of one batch of texts.
type truncations []Truncation

func (ts *truncations) check(tok Tokenizer, text string, maxLen int, encoder, kind string, prompt int) {
	if t, ok := truncation(tok, text, maxLen, encoder, kind, prompt); ok {
		*ts = append(*ts, t)
	}
}
