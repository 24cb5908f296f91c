package testmodels

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
)

// The generated tokenizers are small stand-ins for the real CLIP BPE and T5 Unigram files, written
// when shared/tokenizers is not available. They use the real formats and the real special-token ids
// (CLIP: "!" 0, <|startoftext|> 49406, <|endoftext|> 49407; T5: <pad> 0, </s> 1, <unk> 2), so the
// text encoders' real-size embedding tables cover every id.

// vocabWords are the words the generated vocabularies know as whole tokens.
var vocabWords = strings.Fields(`a an the of in on at to with and or by from for is are
photo photograph picture painting drawing illustration render portrait landscape closeup
cat cats dog dogs horse bird fish fox lion tiger bear rabbit owl dragon robot astronaut man woman
child people person girl boy king queen knight wizard
riding sitting standing running flying walking holding wearing reading eating sleeping
red green blue yellow orange purple pink black white gray golden silver
big small tall old young cute beautiful dark bright colorful detailed highly realistic
sky sun moon star stars cloud clouds rain snow sea ocean river lake mountain mountains forest tree trees
flower flowers garden city street house castle room window table chair book car boat ship train
space planet night day morning sunset sunrise light shadow fire water ice stone glass wood metal
oil watercolor digital art style cinematic lighting hd uhd dslr bokeh masterpiece quality
hello world test prompt`)

// clipByteTokens is GPT-2/CLIP's bytes_to_unicode in vocabulary order: token i is the string of byte
// order[i], printable bytes first.
func clipByteTokens() (tokens [256]string, byByte [256]string) {
	var order []int
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			order = append(order, b)
		}
	}
	n := 0
	chars := map[int]rune{}
	for _, b := range order {
		chars[b] = rune(b)
	}
	for b := 0; b < 256; b++ {
		if _, ok := chars[b]; !ok {
			chars[b] = rune(256 + n)
			order = append(order, b)
			n++
		}
	}
	for i, b := range order {
		tokens[i] = string(chars[b])
		byByte[b] = tokens[i]
	}
	return tokens, byByte
}

// generatedCLIP returns vocab.json and merges.txt: the 256 byte tokens, the same with "</w>", the
// merges learnt by BPE training on vocabWords (so each word encodes as one token, and every token on
// the way is in the vocabulary), then <|startoftext|> and <|endoftext|> at the real ids 49406 and 49407.
var generatedCLIP = sync.OnceValues(func() ([]byte, []byte) {
	tokens, byByte := clipByteTokens()
	vocab := append([]string(nil), tokens[:]...)
	for _, t := range tokens {
		vocab = append(vocab, t+"</w>")
	}
	words := make([][]string, len(vocabWords))
	for i, w := range vocabWords {
		for j := range len(w) {
			words[i] = append(words[i], byByte[w[j]])
		}
		words[i][len(w)-1] += "</w>"
	}
	var merges bytes.Buffer
	merges.WriteString("#version: 0.2\n")
	for {
		a, b, ok := bestPair(words)
		if !ok {
			break
		}
		vocab = append(vocab, a+b)
		merges.WriteString(a + " " + b + "\n")
		for i, w := range words {
			words[i] = applyMerge(w, a, b)
		}
	}
	var v bytes.Buffer
	v.WriteByte('{')
	for id, t := range vocab {
		writeJSONEntry(&v, t, id)
	}
	writeJSONEntry(&v, clipBOSToken, clipBOSID)
	writeJSONEntry(&v, clipEOSToken, clipEOSID)
	v.Truncate(v.Len() - 1) // the last comma
	v.WriteString("}")
	return v.Bytes(), merges.Bytes()
})

// bestPair is the most frequent adjacent symbol pair in words (ties: the smallest pair), as BPE
// training picks it; ok is false when every word is one symbol.
func bestPair(words [][]string) (a, b string, ok bool) {
	counts := map[[2]string]int{}
	for _, w := range words {
		for i := 1; i < len(w); i++ {
			counts[[2]string{w[i-1], w[i]}]++
		}
	}
	var best [2]string
	n := 0
	for p, c := range counts {
		if c > n || c == n && (p[0] < best[0] || p[0] == best[0] && p[1] < best[1]) {
			best, n = p, c
		}
	}
	return best[0], best[1], n > 0
}

// applyMerge replaces every adjacent (a, b) in w, left to right, by a+b.
func applyMerge(w []string, a, b string) []string {
	out := w[:0:0]
	for i := 0; i < len(w); i++ {
		if i+1 < len(w) && w[i] == a && w[i+1] == b {
			out = append(out, a+b)
			i++
		} else {
			out = append(out, w[i])
		}
	}
	return out
}

// writeJSONEntry appends "key":value, to b.
func writeJSONEntry(b *bytes.Buffer, key string, value any) {
	b.Write(jsonValue(key))
	b.WriteByte(':')
	b.Write(jsonValue(value))
	b.WriteByte(',')
}

// jsonValue marshals v without HTML escaping (as Python's json.dumps writes <, > and &).
func jsonValue(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // only called with strings, numbers and plain maps/slices of them
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// indentJSON marshals v indented by two spaces with sorted map keys and a final newline, as
// transformers writes its JSON files.
func indentJSON(v any) []byte {
	var b bytes.Buffer
	json.Indent(&b, jsonValue(v), "", "  ")
	b.WriteByte('\n')
	return b.Bytes()
}

// CLIP's special tokens and their real ids.
const (
	clipBOSToken = "<|startoftext|>"
	clipEOSToken = "<|endoftext|>"
	clipBOSID    = 49406
	clipEOSID    = 49407
)

// clipConfigFiles returns tokenizer_config.json and special_tokens_map.json of a CLIP tokenizer
// folder whose pad token is pad ("<|endoftext|>" for CLIP-L, "!" for CLIP-G), mirroring the real ones.
func clipConfigFiles(pad string) (config, specials []byte) {
	added := func(content string, normalized bool) map[string]any {
		return map[string]any{"content": content, "lstrip": false, "normalized": normalized, "rstrip": false, "single_word": false}
	}
	decoder := map[string]any{"49406": withSpecial(added(clipBOSToken, true)), "49407": withSpecial(added(clipEOSToken, false))}
	if pad == "!" {
		decoder["0"] = withSpecial(added("!", false))
	}
	config = indentJSON(map[string]any{
		"add_prefix_space": false, "added_tokens_decoder": decoder, "bos_token": clipBOSToken,
		"clean_up_tokenization_spaces": true, "do_lower_case": true, "eos_token": clipEOSToken, "errors": "replace",
		"model_max_length": 77, "pad_token": pad, "tokenizer_class": "CLIPTokenizer", "unk_token": clipEOSToken,
	})
	specials = indentJSON(map[string]any{"bos_token": added(clipBOSToken, true), "eos_token": added(clipEOSToken, false),
		"pad_token": added(pad, false), "unk_token": added(clipEOSToken, false)})
	return config, specials
}

func withSpecial(m map[string]any) map[string]any {
	m["special"] = true
	return m
}

// t5Specials are T5's special tokens at their real ids.
var t5Specials = []string{"<pad>", "</s>", "<unk>"}

// generatedT5 returns tokenizer.json, tokenizer_config.json and special_tokens_map.json of a T5
// Unigram tokenizer: the special tokens, "▁", "▁word" for vocabWords, and every printable ASCII
// character, with the real pipeline shape (Strip + Replace normalizer, Metaspace with the given
// prepend scheme, "$A </s>" template). legacy follows the scheme, as in the real SD3 ("always")
// and FLUX ("first") folders.
func generatedT5(prepend string) (tokenizer, config, specials []byte) {
	vocab := [][2]any{{"<pad>", 0.0}, {"</s>", 0.0}, {"<unk>", 0.0}, {"▁", -2.0}}
	for i, w := range vocabWords {
		vocab = append(vocab, [2]any{"▁" + w, -5 - float64(i)/1000})
	}
	for c := '!'; c <= '~'; c++ {
		vocab = append(vocab, [2]any{string(c), -10 - float64(c)/1000})
	}
	var added []map[string]any
	addedDecoder := map[string]any{}
	for id, s := range t5Specials {
		addedDecoder[string(jsonValue(id))] = map[string]any{"content": s, "lstrip": false, "normalized": false,
			"rstrip": false, "single_word": false, "special": true}
		added = append(added, map[string]any{"id": id, "content": s, "single_word": false, "lstrip": false,
			"rstrip": false, "normalized": false, "special": true})
	}
	meta := map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": prepend, "split": true}
	tokenizer = indentJSON(map[string]any{
		"version": "1.0", "truncation": nil, "padding": nil, "added_tokens": added,
		"normalizer": map[string]any{"type": "Sequence", "normalizers": []any{
			map[string]any{"type": "Strip", "strip_left": false, "strip_right": true},
			map[string]any{"type": "Replace", "pattern": map[string]any{"Regex": " {2,}"}, "content": "▁"},
		}},
		"pre_tokenizer":  meta,
		"post_processor": t5Template(),
		"decoder":        meta,
		"model":          map[string]any{"type": "Unigram", "unk_id": 2, "vocab": vocab, "byte_fallback": false},
	})
	config = indentJSON(map[string]any{
		"added_tokens_decoder": addedDecoder, "additional_special_tokens": []string{}, "clean_up_tokenization_spaces": true,
		"eos_token": "</s>", "extra_ids": 0, "legacy": prepend == "always", "model_max_length": 512,
		"pad_token": "<pad>", "tokenizer_class": "T5Tokenizer", "unk_token": "<unk>",
	})
	specials = indentJSON(map[string]any{"eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"})
	return tokenizer, config, specials
}

// t5Template is T5's post-processor: "$A </s>" (and "$A </s> $B </s>" for pairs).
func t5Template() map[string]any {
	seq := func(id string) map[string]any {
		return map[string]any{"Sequence": map[string]any{"id": id, "type_id": 0}}
	}
	eos := map[string]any{"SpecialToken": map[string]any{"id": "</s>", "type_id": 0}}
	return map[string]any{"type": "TemplateProcessing", "single": []any{seq("A"), eos}, "pair": []any{seq("A"), eos, seq("B"), eos},
		"special_tokens": map[string]any{"</s>": map[string]any{"id": "</s>", "ids": []int{1}, "tokens": []string{"</s>"}}}}
}
