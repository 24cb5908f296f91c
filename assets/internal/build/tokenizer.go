package build

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/rflowrt/rflow/assets/internal/demo"
)

// jsonFile marshals v with two-space indents, no HTML escaping and a final newline. Map keys come
// out sorted, so the bytes are the same on every run.
func jsonFile(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		panic(err) // only plain maps, slices, strings and numbers are passed
	}
	return b.Bytes()
}

func jsonString(s string) string {
	b := jsonFile(s)
	return string(b[:len(b)-1])
}

// clipTokenizerFiles returns the slow-tokenizer files of the demo CLIP vocabulary (what SD3's and
// FLUX's CLIP tokenizer folders hold): vocab.json ordered by id, merges.txt, and the configs.
// padToken is "<|endoftext|>" (CLIP-L) or "!" (CLIP-G, id 0 as in SD3's tokenizer_2).
func clipTokenizerFiles(padToken string) map[string][]byte {
	tok := demo.Vocabulary()
	var v strings.Builder
	v.WriteString("{")
	for id, s := range tok.Vocab {
		if id > 0 {
			v.WriteString(",")
		}
		fmt.Fprintf(&v, "\n  %s: %d", jsonString(s), id)
	}
	v.WriteString("\n}\n")
	var m strings.Builder
	m.WriteString("#version: 0.2\n")
	for _, p := range tok.Merges {
		m.WriteString(p[0] + " " + p[1] + "\n")
	}
	bos, eos := tok.ID(demo.BOS), tok.ID(demo.EOS)
	special := func(content string, normalized bool) map[string]any {
		return map[string]any{"content": content, "lstrip": false, "normalized": normalized, "rstrip": false, "single_word": false}
	}
	decoder := map[string]any{}
	for _, a := range []struct {
		id         int
		content    string
		normalized bool
	}{{bos, demo.BOS, true}, {eos, demo.EOS, false}} {
		e := special(a.content, a.normalized)
		e["special"] = true
		decoder[fmt.Sprint(a.id)] = e
	}
	if padToken != demo.EOS {
		e := special(padToken, false)
		e["special"] = true
		decoder[fmt.Sprint(tok.ID(padToken))] = e
	}
	cfg := map[string]any{
		"add_prefix_space": false, "added_tokens_decoder": decoder, "bos_token": demo.BOS,
		"clean_up_tokenization_spaces": true, "do_lower_case": true, "eos_token": demo.EOS, "errors": "replace",
		"model_max_length": 77, "pad_token": padToken, "tokenizer_class": "CLIPTokenizer", "unk_token": demo.EOS,
	}
	specials := map[string]any{
		"bos_token": special(demo.BOS, true), "eos_token": special(demo.EOS, false),
		"pad_token": special(padToken, false), "unk_token": special(demo.EOS, false),
	}
	return map[string][]byte{
		"vocab.json": []byte(v.String()), "merges.txt": []byte(m.String()),
		"tokenizer_config.json": jsonFile(cfg), "special_tokens_map.json": jsonFile(specials),
	}
}

// t5Pieces is the demo T5 Unigram vocabulary: the special tokens, "▁", the demo words with "▁",
// then single characters. Scores are log-probabilities that make whole words win.
func t5Pieces() [][2]any {
	p := [][2]any{{"<pad>", 0.0}, {"</s>", 0.0}, {"<unk>", 0.0}, {"▁", -2.0}}
	for _, w := range demo.Words {
		p = append(p, [2]any{"▁" + w.Text, -4.0})
	}
	chars := "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?'\"-()"
	for _, c := range chars {
		p = append(p, [2]any{string(c), -8.0})
	}
	return p
}

// t5TokenizerFiles returns a minimal T5 tokenizer folder (tokenizer.json with a Unigram model,
// Metaspace pre-tokenizer and "$A </s>" template; tokenizer_config.json; special_tokens_map.json).
func t5TokenizerFiles() map[string][]byte {
	added := []map[string]any{}
	for id, s := range []string{"<pad>", "</s>", "<unk>"} {
		added = append(added, map[string]any{"id": id, "content": s, "single_word": false, "lstrip": false,
			"rstrip": false, "normalized": false, "special": true})
	}
	meta := map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true}
	tj := map[string]any{
		"version": "1.0", "truncation": nil, "padding": nil, "added_tokens": added,
		"normalizer": nil, "pre_tokenizer": meta, "decoder": meta,
		"post_processor": map[string]any{
			"type":   "TemplateProcessing",
			"single": []any{map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}, map[string]any{"SpecialToken": map[string]any{"id": "</s>", "type_id": 0}}},
			"pair": []any{map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}, map[string]any{"SpecialToken": map[string]any{"id": "</s>", "type_id": 0}},
				map[string]any{"Sequence": map[string]any{"id": "B", "type_id": 0}}, map[string]any{"SpecialToken": map[string]any{"id": "</s>", "type_id": 0}}},
			"special_tokens": map[string]any{"</s>": map[string]any{"id": "</s>", "ids": []int{1}, "tokens": []string{"</s>"}}},
		},
		"model": map[string]any{"type": "Unigram", "unk_id": 2, "vocab": t5Pieces(), "byte_fallback": false},
	}
	cfg := map[string]any{
		"clean_up_tokenization_spaces": true, "eos_token": "</s>", "extra_ids": 0, "legacy": true,
		"model_max_length": 512, "pad_token": "<pad>", "tokenizer_class": "T5Tokenizer", "unk_token": "<unk>",
	}
	specials := map[string]any{"eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
	return map[string][]byte{"tokenizer.json": jsonFile(tj), "tokenizer_config.json": jsonFile(cfg),
		"special_tokens_map.json": jsonFile(specials)}
}

// t5VocabSize is the number of pieces of the demo T5 vocabulary.
func t5VocabSize() int { return len(t5Pieces()) }
