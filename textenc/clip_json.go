package textenc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"strconv"
)

// clipSplitPattern is the Split pre-tokenizer pattern of CLIP's tokenizer.json, which clipScan
// implements by hand.
const clipSplitPattern = `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`

// clipTokenizerJSON is the part of tokenizer.json the CLIP tokenizer reads.
type clipTokenizerJSON struct {
	AddedTokens []struct {
		ID         int32  `json:"id"`
		Content    string `json:"content"`
		Normalized bool   `json:"normalized"`
	} `json:"added_tokens"`
	Normalizer *struct {
		Type        string         `json:"type"`
		Normalizers []clipJSONStep `json:"normalizers"`
	} `json:"normalizer"`
	PreTokenizer *struct {
		Type          string         `json:"type"`
		PreTokenizers []clipJSONStep `json:"pretokenizers"`
	} `json:"pre_tokenizer"`
	PostProcessor *struct {
		Type string            `json:"type"`
		Cls  []json.RawMessage `json:"cls"`
		Sep  []json.RawMessage `json:"sep"`
	} `json:"post_processor"`
	Model struct {
		Type                    string           `json:"type"`
		Vocab                   map[string]int32 `json:"vocab"`
		Merges                  json.RawMessage  `json:"merges"`
		UnkToken                *string          `json:"unk_token"`
		ContinuingSubwordPrefix *string          `json:"continuing_subword_prefix"`
		EndOfWordSuffix         *string          `json:"end_of_word_suffix"`
		Dropout                 *float64         `json:"dropout"`
		FuseUnk                 bool             `json:"fuse_unk"`
		ByteFallback            bool             `json:"byte_fallback"`
		IgnoreMerges            bool             `json:"ignore_merges"`
	} `json:"model"`
}

// clipJSONStep is one normalizer or pre-tokenizer of a Sequence.
type clipJSONStep struct {
	Type    string `json:"type"`
	Pattern struct {
		Regex *string `json:"Regex"`
	} `json:"pattern"`
	Content        string `json:"content"`
	Behavior       string `json:"behavior"`
	Invert         bool   `json:"invert"`
	AddPrefixSpace bool   `json:"add_prefix_space"`
	UseRegex       *bool  `json:"use_regex"`
}

// clipReadTokenizerJSON reads a fast-tokenizer file and checks that it describes CLIP's pipeline.
func clipReadTokenizerJSON(path string) (*clipModelFiles, error) {
	data, err := clipReadFile(path)
	if err != nil {
		return nil, err
	}
	var tj clipTokenizerJSON
	if err := json.Unmarshal(data, &tj); err != nil {
		return nil, clipErrorf("read %s: %v%s", path, err, jsonHint(err))
	}
	if err := tj.check(); err != nil {
		return nil, clipErrorf("%s: %w", path, err)
	}
	mf := &clipModelFiles{vocab: tj.Model.Vocab, vocabFrom: path, mergesFrom: path, bosID: -1, eosID: -1}
	if mf.merges, err = clipParseJSONMerges(tj.Model.Merges); err != nil {
		return nil, clipErrorf("%s: model.merges: %w", path, err)
	}
	if tj.Model.UnkToken != nil {
		mf.unk = *tj.Model.UnkToken
	}
	for _, a := range tj.AddedTokens {
		mf.added = append(mf.added, clipAddedDef{a.Content, a.ID, a.Normalized})
	}
	if pp := tj.PostProcessor; pp != nil && (pp.Type == "RobertaProcessing" || pp.Type == "BertProcessing") {
		if mf.bos, mf.bosID, err = clipTokenPair(pp.Cls); err != nil {
			return nil, clipErrorf("%s: post_processor.cls: %w", path, err)
		}
		if mf.eos, mf.eosID, err = clipTokenPair(pp.Sep); err != nil {
			return nil, clipErrorf("%s: post_processor.sep: %w", path, err)
		}
	}
	return mf, nil
}

// check rejects tokenizer.json files whose pipeline is not CLIP's (the encoder implements only that).
func (tj *clipTokenizerJSON) check() error {
	m := tj.Model
	switch {
	case m.Type != "BPE":
		return fmt.Errorf("model.type is %q, want BPE", m.Type)
	case len(m.Vocab) == 0:
		return errors.New("model.vocab is missing or empty")
	case m.EndOfWordSuffix == nil || *m.EndOfWordSuffix != clipEndOfWord:
		return fmt.Errorf("model.end_of_word_suffix must be %q", clipEndOfWord)
	case m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "",
		m.Dropout != nil, m.FuseUnk, m.ByteFallback, m.IgnoreMerges:
		return errors.New("unsupported BPE options (continuing_subword_prefix, dropout, fuse_unk, byte_fallback, ignore_merges)")
	}
	const wantNorm = `normalizer must be Sequence[NFC, Replace(\s+ → " "), Lowercase]`
	n := tj.Normalizer
	if n == nil || n.Type != "Sequence" || len(n.Normalizers) != 3 || n.Normalizers[0].Type != "NFC" ||
		n.Normalizers[1].Type != "Replace" || n.Normalizers[1].Pattern.Regex == nil ||
		*n.Normalizers[1].Pattern.Regex != `\s+` || n.Normalizers[1].Content != " " ||
		n.Normalizers[2].Type != "Lowercase" {
		return errors.New(wantNorm)
	}
	const wantPre = "pre_tokenizer must be Sequence[Split(CLIP pattern, Removed, invert), ByteLevel(no prefix space)]"
	p := tj.PreTokenizer
	if p == nil || p.Type != "Sequence" || len(p.PreTokenizers) != 2 {
		return errors.New(wantPre)
	}
	s, b := p.PreTokenizers[0], p.PreTokenizers[1]
	if s.Type != "Split" || s.Pattern.Regex == nil || *s.Pattern.Regex != clipSplitPattern ||
		s.Behavior != "Removed" || !s.Invert || b.Type != "ByteLevel" || b.AddPrefixSpace ||
		(b.UseRegex != nil && !*b.UseRegex) {
		return errors.New(wantPre)
	}
	return nil
}

// clipParseJSONMerges reads model.merges: ["a b", …] or [["a", "b"], …].
func clipParseJSONMerges(raw json.RawMessage) ([][2]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var pairs [][2]string
	if err := json.Unmarshal(raw, &pairs); err == nil {
		for i, p := range pairs {
			if p[0] == "" || p[1] == "" {
				return nil, fmt.Errorf("merge %d: empty token", i+1)
			}
		}
		return pairs, nil
	}
	var lines []string
	if err := json.Unmarshal(raw, &lines); err != nil {
		return nil, errors.New(`want ["left right", …] or [["left", "right"], …]`)
	}
	pairs = make([][2]string, len(lines))
	for i, l := range lines {
		p, err := clipSplitMerge(l)
		if err != nil {
			return nil, fmt.Errorf("merge %d: %w", i+1, err)
		}
		pairs[i] = p
	}
	return pairs, nil
}

// clipTokenPair reads a post-processor ["token", id] pair.
func clipTokenPair(raw []json.RawMessage) (string, int32, error) {
	var tok string
	var id int32
	if len(raw) != 2 || json.Unmarshal(raw[0], &tok) != nil || json.Unmarshal(raw[1], &id) != nil || id < 0 {
		return "", -1, errors.New(`want ["token", id]`)
	}
	return tok, id, nil
}

// clipConfig is what tokenizer_config.json and special_tokens_map.json give.
type clipConfig struct {
	bos, eos, unk, pad clipAddedDef
	maxLength          int
	added              []clipAddedDef
}

// clipReadConfig reads the optional config files of dir; special_tokens_map.json overrides
// tokenizer_config.json, as in transformers.
func clipReadConfig(dir string) (clipConfig, error) {
	var c clipConfig
	for _, name := range []string{"tokenizer_config.json", "special_tokens_map.json"} {
		path := filepath.Join(dir, name)
		data, err := clipReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return c, err
		}
		if err := c.parse(data, name == "tokenizer_config.json"); err != nil {
			return c, clipErrorf("read %s: %w", path, err)
		}
	}
	return c, nil
}

func (c *clipConfig) parse(data []byte, isTokenizerConfig bool) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	for key, dst := range map[string]*clipAddedDef{"bos_token": &c.bos, "eos_token": &c.eos, "unk_token": &c.unk, "pad_token": &c.pad} {
		v, ok := raw[key]
		if !ok {
			continue
		}
		tok, set, err := clipConfigToken(v)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		if set {
			*dst = tok
		}
	}
	if !isTokenizerConfig {
		return nil
	}
	if v, ok := raw["model_max_length"]; ok {
		var f float64
		if err := json.Unmarshal(v, &f); err != nil {
			return fmt.Errorf("model_max_length: %w", err)
		}
		switch {
		case f >= 1e9: // transformers' "no limit" sentinel (int(1e30)): keep the default
		case f < 2 || f != math.Trunc(f):
			return fmt.Errorf("model_max_length %v: want an integer ≥ 2", f)
		default:
			c.maxLength = int(f)
		}
	}
	if v, ok := raw["added_tokens_decoder"]; ok {
		var dec map[string]json.RawMessage
		if err := json.Unmarshal(v, &dec); err != nil {
			return fmt.Errorf("added_tokens_decoder: %w", err)
		}
		for k, tv := range dec {
			id, err := strconv.ParseInt(k, 10, 32)
			tok, set, err2 := clipConfigToken(tv)
			if err != nil || id < 0 || err2 != nil || !set {
				return fmt.Errorf("added_tokens_decoder[%q]: want an id and a token", k)
			}
			tok.id = int32(id)
			c.added = append(c.added, tok)
		}
	}
	return nil
}

// clipConfigToken reads a special token: null, "text" or {"content": "text", "normalized": …}.
// A plain string is a special token, matched in the raw text (normalized false).
func clipConfigToken(v json.RawMessage) (clipAddedDef, bool, error) {
	tok := clipAddedDef{id: -1}
	if string(bytes.TrimSpace(v)) == "null" {
		return tok, false, nil
	}
	if err := json.Unmarshal(v, &tok.content); err == nil {
		return tok, tok.content != "", nil
	}
	var obj struct {
		Content    *string `json:"content"`
		Normalized bool    `json:"normalized"`
	}
	if err := json.Unmarshal(v, &obj); err != nil || obj.Content == nil {
		return tok, false, errors.New(`want a string or {"content": …}`)
	}
	tok.content, tok.normalized = *obj.Content, obj.Normalized
	return tok, tok.content != "", nil
}
