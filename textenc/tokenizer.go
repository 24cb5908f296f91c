// Package textenc turns prompts into the text conditioning SD3 and FLUX transformers take: exact CLIP
// BPE and T5 Unigram tokenizers, text-encoder runners on ONNX Runtime, and per-family assembly of the
// encoder outputs.
package textenc

import "strings"

// Tokenizer is what the pipelines need from a tokenizer. Implementations are safe for concurrent use.
type Tokenizer interface {
	// Encode returns the ids of text with the model's special tokens (CLIP: BOS … EOS; T5: … EOS),
	// without truncation or padding.
	Encode(text string) []int64
	// EncodePadded returns exactly maxLen ids: Encode's content truncated so the special tokens still
	// fit, then padded with PadID — what diffusers gets from padding="max_length", truncation=True.
	// maxLen ≤ 0 means MaxLength().
	EncodePadded(text string, maxLen int) []int64
	// PadID is the padding id the tokenizer folder names (CLIP-L 49407, CLIP-G 0, T5 0).
	PadID() int64
	// MaxLength is the folder's model_max_length (CLIP 77; T5 512), the default for EncodePadded.
	MaxLength() int
}

// validRunes replaces every byte of s that does not start a valid UTF-8 sequence by U+FFFD, as Go's
// range loop reads it (strings.ToValidUTF8 would replace a whole run of bad bytes by one U+FFFD). Both
// tokenizers see invalid input this way.
func validRunes(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for _, r := range s {
		b.WriteRune(r)
	}
	return b.String()
}
