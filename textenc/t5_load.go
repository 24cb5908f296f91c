package textenc

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"unicode/utf8"
)

// LoadT5Tokenizer loads the T5 tokenizer of a diffusers tokenizer folder (SD3 tokenizer_3, FLUX
// tokenizer_2): tokenizer.json when present, else spiece.model converted the way transformers'
// T5Converter does. tokenizer_config.json, when present, supplies model_max_length and pad_token
// (and, for spiece.model, legacy/add_prefix_space/extra_ids and the added tokens' flags).
func LoadT5Tokenizer(dir string, o T5Options) (*T5Tokenizer, error) {
	if o.Scores < ScoresAsTransformers || o.Scores > ScoresExact {
		return nil, fmt.Errorf("textenc: T5Options.Scores %d: want ScoresAsTransformers, ScoresFromJSON or ScoresExact", o.Scores)
	}
	switch o.PrependScheme {
	case "", prependAlways, prependFirst, prependNever:
	default:
		return nil, fmt.Errorf("textenc: T5Options.PrependScheme %q: want always, first or never", o.PrependScheme)
	}
	cfg, err := readT5Config(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil {
		return nil, err
	}
	tj := filepath.Join(dir, "tokenizer.json")
	data, err := os.ReadFile(tj)
	o.exact = o.Scores == ScoresExact || (o.Scores == ScoresAsTransformers && (cfg.addPrefixSpaceSet || err != nil))
	if err == nil {
		t, err := parseT5TokenizerJSON(data, cfg, o)
		if err != nil {
			return nil, fmt.Errorf("textenc: %s: %w", tj, err)
		}
		return t, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("textenc: %w", err)
	}
	sp := filepath.Join(dir, "spiece.model")
	data, err = os.ReadFile(sp)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("textenc: T5 tokenizer folder %s has neither tokenizer.json nor spiece.model", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("textenc: %w", err)
	}
	t, err := t5FromSentencePiece(data, cfg, o)
	if err != nil {
		return nil, fmt.Errorf("textenc: %s: %w", sp, err)
	}
	return t, nil
}

// t5Config is what LoadT5Tokenizer uses from tokenizer_config.json.
type t5Config struct {
	maxLen         int
	padToken       string
	eosToken       string
	unkToken       string
	legacy         bool
	addPrefixSpace bool
	// addPrefixSpaceSet: the config names add_prefix_space, which makes transformers convert from
	// spiece.model instead of loading tokenizer.json.
	addPrefixSpaceSet bool
	extraIDs          int
	addedTokens       map[int64]t5AddedToken // added_tokens_decoder
}

// t5TokenText accepts a token given as a string or as an AddedToken object ({"content": …}).
type t5TokenText string

func (t *t5TokenText) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*t = t5TokenText(s)
		return nil
	}
	var o struct{ Content string }
	if err := json.Unmarshal(b, &o); err != nil {
		return err
	}
	*t = t5TokenText(o.Content)
	return nil
}

type t5JSONAddedToken struct {
	ID         int64  `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

func (j t5JSONAddedToken) token() t5AddedToken {
	return t5AddedToken{content: j.Content, id: j.ID, singleWord: j.SingleWord, lstrip: j.LStrip,
		rstrip: j.RStrip, normalized: j.Normalized, spc: j.Special}
}

// readT5Config reads tokenizer_config.json; a missing file gives the defaults.
func readT5Config(path string) (t5Config, error) {
	cfg := t5Config{maxLen: 512, padToken: "<pad>", eosToken: "</s>", unkToken: "<unk>",
		legacy: true, addPrefixSpace: true, extraIDs: 100}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("textenc: %w", err)
	}
	var j struct {
		ModelMaxLength *float64                    `json:"model_max_length"`
		PadToken       *t5TokenText                `json:"pad_token"`
		EOSToken       *t5TokenText                `json:"eos_token"`
		UnkToken       *t5TokenText                `json:"unk_token"`
		Legacy         *bool                       `json:"legacy"`
		AddPrefixSpace *bool                       `json:"add_prefix_space"`
		ExtraIDs       *int                        `json:"extra_ids"`
		AddedTokens    map[string]t5JSONAddedToken `json:"added_tokens_decoder"`
	}
	if err := json.Unmarshal(data, &j); err != nil {
		return cfg, fmt.Errorf("textenc: %s: %w", path, err)
	}
	if m := j.ModelMaxLength; m != nil && *m >= 1 && *m <= 1<<20 {
		cfg.maxLen = int(*m) // absent or VERY_LARGE_INTEGER (1e30): keep 512
	}
	for dst, src := range map[*string]*t5TokenText{&cfg.padToken: j.PadToken, &cfg.eosToken: j.EOSToken, &cfg.unkToken: j.UnkToken} {
		if src != nil {
			*dst = string(*src)
		}
	}
	if j.Legacy != nil {
		cfg.legacy = *j.Legacy
	}
	if j.AddPrefixSpace != nil {
		cfg.addPrefixSpace, cfg.addPrefixSpaceSet = *j.AddPrefixSpace, true
	}
	if j.ExtraIDs != nil {
		if *j.ExtraIDs < 0 || *j.ExtraIDs > 1<<16 {
			return cfg, fmt.Errorf("textenc: %s: extra_ids %d out of range", path, *j.ExtraIDs)
		}
		cfg.extraIDs = *j.ExtraIDs
	}
	if len(j.AddedTokens) > 0 {
		cfg.addedTokens = map[int64]t5AddedToken{}
		for k, v := range j.AddedTokens {
			id, err := strconv.ParseInt(k, 10, 64)
			if err != nil {
				return cfg, fmt.Errorf("textenc: %s: added_tokens_decoder key %q is not an id", path, k)
			}
			v.ID = id
			cfg.addedTokens[id] = v.token()
		}
	}
	return cfg, nil
}

// t5TokenizerJSON is the part of tokenizer.json a Unigram tokenizer uses.
type t5TokenizerJSON struct {
	AddedTokens   []t5JSONAddedToken `json:"added_tokens"`
	Normalizer    json.RawMessage    `json:"normalizer"`
	PreTokenizer  json.RawMessage    `json:"pre_tokenizer"`
	PostProcessor json.RawMessage    `json:"post_processor"`
	Model         struct {
		Type         string              `json:"type"`
		UnkID        *int                `json:"unk_id"`
		Vocab        [][]json.RawMessage `json:"vocab"`
		ByteFallback bool                `json:"byte_fallback"`
	} `json:"model"`
}

// parseT5TokenizerJSON builds the tokenizer from tokenizer.json.
func parseT5TokenizerJSON(data []byte, cfg t5Config, o T5Options) (*T5Tokenizer, error) {
	var j t5TokenizerJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, err
	}
	if j.Model.Type != "Unigram" {
		return nil, fmt.Errorf("model type %q: only Unigram is supported", j.Model.Type)
	}
	if j.Model.ByteFallback {
		return nil, errors.New("the Unigram model uses byte_fallback, which is not supported")
	}
	pieces, scores, err := t5ParseVocab(j.Model.Vocab, o.exact)
	if err != nil {
		return nil, err
	}
	if j.Model.UnkID == nil || *j.Model.UnkID < 0 || *j.Model.UnkID >= len(pieces) {
		return nil, errors.New("the Unigram model has no valid unk_id")
	}
	t := &T5Tokenizer{model: newT5Unigram(pieces, scores, *j.Model.UnkID), maxLen: cfg.maxLen}
	if t.steps, err = t5ParseNormalizer(j.Normalizer); err != nil {
		return nil, err
	}
	if t.meta, err = t5ParseMetaspace(j.PreTokenizer, o.PrependScheme); err != nil {
		return nil, err
	}
	toks := make([]t5AddedToken, len(j.AddedTokens))
	for i, a := range j.AddedTokens {
		toks[i] = a.token()
	}
	t.setAddedTokens(toks, len(pieces))
	if t.prefix, t.suffix, err = t5ParseTemplate(j.PostProcessor); err != nil {
		return nil, err
	}
	t.padID = t.tokenID(cfg.padToken, toks)
	return t, nil
}

// t5ParseVocab reads [["piece", score], …]; scores serde-style unless exact.
func t5ParseVocab(vocab [][]json.RawMessage, exact bool) ([]string, []float64, error) {
	if len(vocab) == 0 {
		return nil, nil, errors.New("empty Unigram vocab")
	}
	pieces := make([]string, len(vocab))
	scores := make([]float64, len(vocab))
	for i, e := range vocab {
		if len(e) != 2 {
			return nil, nil, fmt.Errorf("vocab entry %d: want [piece, score]", i)
		}
		if s := e[0]; len(s) >= 2 && s[0] == '"' && bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
			pieces[i] = string(s[1 : len(s)-1])
		} else if err := json.Unmarshal(s, &pieces[i]); err != nil {
			return nil, nil, fmt.Errorf("vocab entry %d: %w", i, err)
		}
		var err error
		if exact {
			scores[i], err = strconv.ParseFloat(string(e[1]), 64)
		} else {
			scores[i], err = serdeParseFloat(string(e[1]))
		}
		if err != nil {
			return nil, nil, fmt.Errorf("vocab entry %d (%q): score: %w", i, pieces[i], err)
		}
	}
	return pieces, scores, nil
}

type t5JSONNormalizer struct {
	Type        string            `json:"type"`
	Normalizers []json.RawMessage `json:"normalizers"`
	Charsmap    *string           `json:"precompiled_charsmap"`
	StripLeft   bool              `json:"strip_left"`
	StripRight  bool              `json:"strip_right"`
	Pattern     struct {
		String *string `json:"String"`
		Regex  *string `json:"Regex"`
	} `json:"pattern"`
	Content string `json:"content"`
}

// t5ParseNormalizer flattens a normalizer (Sequence, Precompiled, Strip, Replace) into steps.
func t5ParseNormalizer(raw json.RawMessage) ([]t5NormStep, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var n t5JSONNormalizer
	if err := json.Unmarshal(raw, &n); err != nil {
		return nil, fmt.Errorf("normalizer: %w", err)
	}
	switch n.Type {
	case "Sequence":
		var steps []t5NormStep
		for _, sub := range n.Normalizers {
			s, err := t5ParseNormalizer(sub)
			if err != nil {
				return nil, err
			}
			steps = append(steps, s...)
		}
		return steps, nil
	case "Precompiled":
		if n.Charsmap == nil || *n.Charsmap == "" {
			return nil, nil // HF: an empty charsmap normalizes nothing
		}
		blob, err := base64.StdEncoding.DecodeString(*n.Charsmap)
		if err != nil {
			return nil, fmt.Errorf("normalizer Precompiled: precompiled_charsmap is not valid base64: %w", err)
		}
		p, err := parsePrecompiledCharsmap(blob)
		if err != nil {
			return nil, fmt.Errorf("normalizer Precompiled: %w", err)
		}
		return []t5NormStep{p}, nil
	case "Strip":
		return []t5NormStep{t5Strip{n.StripLeft, n.StripRight}}, nil
	case "Replace":
		var r t5Replace
		var err error
		switch {
		case n.Pattern.Regex != nil:
			r, err = newT5Replace(*n.Pattern.Regex, true, n.Content)
		case n.Pattern.String != nil:
			r, err = newT5Replace(*n.Pattern.String, false, n.Content)
		default:
			err = errors.New("a Replace normalizer without a pattern")
		}
		if err != nil {
			return nil, fmt.Errorf("normalizer: %w", err)
		}
		return []t5NormStep{r}, nil
	}
	return nil, fmt.Errorf("normalizer type %q is not supported", n.Type)
}

// t5ParseMetaspace reads the Metaspace pre-tokenizer (null: none); override replaces its scheme.
func t5ParseMetaspace(raw json.RawMessage, override string) (*t5Metaspace, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var p struct {
		Type           string  `json:"type"`
		Replacement    string  `json:"replacement"`
		PrependScheme  *string `json:"prepend_scheme"`
		AddPrefixSpace *bool   `json:"add_prefix_space"`
		Split          *bool   `json:"split"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("pre_tokenizer: %w", err)
	}
	if p.Type != "Metaspace" {
		return nil, fmt.Errorf("pre_tokenizer type %q: only Metaspace is supported", p.Type)
	}
	if utf8.RuneCountInString(p.Replacement) != 1 {
		return nil, fmt.Errorf("pre_tokenizer Metaspace: replacement %q is not one char", p.Replacement)
	}
	m := &t5Metaspace{repl: p.Replacement, prepend: prependAlways, split: p.Split == nil || *p.Split}
	switch {
	case p.PrependScheme != nil:
		m.prepend = *p.PrependScheme
	case p.AddPrefixSpace != nil && !*p.AddPrefixSpace:
		m.prepend = prependNever
	}
	if override != "" {
		m.prepend = override
	}
	switch m.prepend {
	case prependAlways, prependFirst, prependNever:
		return m, nil
	}
	return nil, fmt.Errorf("pre_tokenizer Metaspace: prepend_scheme %q is not supported", m.prepend)
}

// t5ParseTemplate reads a TemplateProcessing post-processor's single template: the special tokens
// before and after $A (null: none).
func t5ParseTemplate(raw json.RawMessage) (prefix, suffix []int64, err error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil, nil
	}
	var p struct {
		Type   string `json:"type"`
		Single []struct {
			Sequence     *struct{ ID string } `json:"Sequence"`
			SpecialToken *struct{ ID string } `json:"SpecialToken"`
		} `json:"single"`
		SpecialTokens map[string]struct {
			IDs []int64 `json:"ids"`
		} `json:"special_tokens"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, nil, fmt.Errorf("post_processor: %w", err)
	}
	if p.Type != "TemplateProcessing" {
		return nil, nil, fmt.Errorf("post_processor type %q: only TemplateProcessing is supported", p.Type)
	}
	seen := false
	for _, piece := range p.Single {
		switch {
		case piece.Sequence != nil:
			seen = true
		case piece.SpecialToken != nil:
			st, ok := p.SpecialTokens[piece.SpecialToken.ID]
			if !ok {
				return nil, nil, fmt.Errorf("post_processor: special token %q has no ids", piece.SpecialToken.ID)
			}
			if seen {
				suffix = append(suffix, st.IDs...)
			} else {
				prefix = append(prefix, st.IDs...)
			}
		}
	}
	if !seen {
		return nil, nil, errors.New("post_processor: single template without $A")
	}
	return prefix, suffix, nil
}

// setAddedTokens installs the added-token matchers and the id range; t.steps must be set.
func (t *T5Tokenizer) setAddedTokens(toks []t5AddedToken, nPieces int) {
	var raw, norm []t5AddedToken
	t.vocabSz = nPieces
	for _, tk := range toks {
		if tk.normalized {
			for _, st := range t.steps { // HF matches the normalized form of the content
				tk.content = st.apply(tk.content)
			}
			norm = append(norm, tk)
		} else {
			raw = append(raw, tk)
		}
		t.vocabSz = max(t.vocabSz, int(tk.id)+1)
	}
	t.raw, t.norm = newT5AddedMatcher(raw), newT5AddedMatcher(norm)
}

// tokenID resolves a token's text to its id (added tokens first, then the model vocabulary);
// unknown text gives 0.
func (t *T5Tokenizer) tokenID(s string, toks []t5AddedToken) int64 {
	for _, tk := range toks {
		if tk.content == s {
			return tk.id
		}
	}
	if id, ok := t.model.tokenIDs[s]; ok {
		return int64(id)
	}
	return 0
}
