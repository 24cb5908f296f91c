package textenc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// clipMaxMerges is how many merges.txt lines (after the "#version" header) the slow CLIPTokenizer
// reads: merges[1 : 49152-256-2+1].
const clipMaxMerges = 49152 - 256 - 2

// CLIP's special tokens, the defaults of CLIPTokenizer: bos; eos, unk and pad.
const (
	clipSOT = "<|startoftext|>"
	clipEOT = "<|endoftext|>"
)

// clipMaxID bounds the ids a vocabulary may use (CLIP's largest is 49407).
const clipMaxID = 1 << 24

// clipDefaultMaxLength is model_max_length when the folder does not give one.
const clipDefaultMaxLength = 77

func clipErrorf(format string, args ...any) error {
	return fmt.Errorf("textenc: clip tokenizer: "+format, args...)
}

// clipReadFile reads a file; the error reads "textenc: clip tokenizer: read PATH: REASON".
func clipReadFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, clipErrorf("read %s: %w", path, err)
	}
	return data, nil
}

// jsonHint says what a JSON syntax error in a tokenizer file usually means.
func jsonHint(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "unexpected end of JSON input") {
		return " (the file is not valid JSON: it is probably truncated or corrupt; copy it again from the model)"
	}
	return ""
}

// clipAddedDef is an added token as a file declares it; id -1 when the file gives none.
type clipAddedDef struct {
	content    string
	id         int32
	normalized bool
}

// clipModelFiles is what the model files (tokenizer.json, or vocab.json + merges.txt) give.
type clipModelFiles struct {
	vocab      map[string]int32
	merges     [][2]string
	vocabFrom  string // file the vocabulary comes from, for errors
	mergesFrom string // file the merges come from, for errors
	added      []clipAddedDef
	unk        string // "" when the file does not name one
	bos, eos   string // from tokenizer.json's post-processor; "" otherwise
	bosID      int32
	eosID      int32
}

// LoadCLIPTokenizer loads a CLIP tokenizer folder: tokenizer.json when present, else vocab.json +
// merges.txt (the slow tokenizer's files); tokenizer_config.json and special_tokens_map.json, when
// present, give pad_token, bos/eos/unk tokens, model_max_length (default 77) and added tokens.
// Every error names the file and what is wrong with it.
func LoadCLIPTokenizer(dir string, o CLIPOptions) (*CLIPTokenizer, error) {
	cfg, err := clipReadConfig(dir)
	if err != nil {
		return nil, err
	}
	mf, err := clipReadModelFiles(dir)
	if err != nil {
		return nil, err
	}
	t := &CLIPTokenizer{slow: o.SlowCompat, maxLength: clipDefaultMaxLength}
	if cfg.maxLength > 0 {
		t.maxLength = cfg.maxLength
	}
	if err := t.bpe.build(mf); err != nil {
		return nil, err
	}
	if err := t.resolveSpecials(dir, mf, cfg); err != nil {
		return nil, err
	}
	return t, nil
}

// clipReadModelFiles picks and reads the model files of dir.
func clipReadModelFiles(dir string) (*clipModelFiles, error) {
	tj := filepath.Join(dir, "tokenizer.json")
	if _, err := os.Stat(tj); err == nil {
		return clipReadTokenizerJSON(tj)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, clipErrorf("%w", err)
	}
	vj, mt := filepath.Join(dir, "vocab.json"), filepath.Join(dir, "merges.txt")
	_, errV := os.Stat(vj)
	_, errM := os.Stat(mt)
	if errors.Is(errV, fs.ErrNotExist) && errors.Is(errM, fs.ErrNotExist) {
		if _, err := os.Stat(dir); err != nil {
			return nil, clipErrorf("%w", err)
		}
		return nil, clipErrorf("%s: no tokenizer files: looked for tokenizer.json, or vocab.json with merges.txt", dir)
	}
	mf := &clipModelFiles{bosID: -1, eosID: -1, vocabFrom: vj, mergesFrom: mt}
	data, err := clipReadFile(vj)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &mf.vocab); err != nil {
		return nil, clipErrorf("read %s: %v%s", vj, err, jsonHint(err))
	}
	if len(mf.vocab) == 0 {
		return nil, clipErrorf("read %s: empty vocabulary", vj)
	}
	data, err = clipReadFile(mt)
	if err != nil {
		return nil, err
	}
	if mf.merges, err = clipParseMergesTxt(data); err != nil {
		return nil, clipErrorf("read %s: %w", mt, err)
	}
	return mf, nil
}

// clipParseMergesTxt parses merges.txt: an optional "#version" first line, then one "left right"
// pair per line, at most clipMaxMerges of them. Blank lines are skipped.
func clipParseMergesTxt(data []byte) ([][2]string, error) {
	var merges [][2]string
	line := 0
	for len(data) > 0 && len(merges) < clipMaxMerges {
		line++
		var l []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i], data[i+1:]
		} else {
			l, data = data, nil
		}
		if len(l) > 0 && l[len(l)-1] == '\r' {
			l = l[:len(l)-1]
		}
		if line == 1 && len(l) > 0 && l[0] == '#' || len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		m, err := clipSplitMerge(string(l))
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		merges = append(merges, m)
	}
	return merges, nil
}

// clipSplitMerge splits "left right"; anything but two non-empty parts around one space is an error.
func clipSplitMerge(s string) ([2]string, error) {
	i := strings.IndexByte(s, ' ')
	if i <= 0 || i == len(s)-1 || strings.IndexByte(s[i+1:], ' ') >= 0 {
		return [2]string{}, fmt.Errorf("bad merge %q: want two tokens separated by one space", s)
	}
	return [2]string{s[:i], s[i+1:]}, nil
}

// build fills the model from the files: the id → token table, the byte symbols and the merge map.
func (m *clipBPE) build(mf *clipModelFiles) error {
	m.vocab = mf.vocab
	size := int32(0)
	for tok, id := range mf.vocab {
		if id < 0 || id >= clipMaxID {
			return clipErrorf("%s: token %q has id %d, want 0 ≤ id < %d", mf.vocabFrom, tok, id, clipMaxID)
		}
		size = max(size, id+1)
	}
	for _, a := range mf.added {
		if a.id >= clipMaxID {
			return clipErrorf("%s: added token %q has id %d, want < %d", mf.vocabFrom, a.content, a.id, clipMaxID)
		}
		size = max(size, a.id+1)
	}
	m.tokens = make([]string, size)
	for tok, id := range mf.vocab {
		m.tokens[id] = tok
	}
	for _, a := range mf.added {
		if a.id >= 0 && m.tokens[a.id] == "" {
			m.tokens[a.id] = a.content
		}
	}
	for b := range 256 {
		m.byteID[b], m.byteEndID[b] = -1, -1
		if id, ok := mf.vocab[string(clipByteRunes[b])]; ok {
			m.byteID[b] = id
		}
		if id, ok := mf.vocab[string(clipByteRunes[b])+clipEndOfWord]; ok {
			m.byteEndID[b] = id
		}
	}
	m.merges = make(map[uint64]uint32, len(mf.merges))
	m.mergeID = make([]int32, len(mf.merges))
	var buf []byte
	for rank, mg := range mf.merges {
		a, okA := mf.vocab[mg[0]]
		b, okB := mf.vocab[mg[1]]
		buf = append(append(buf[:0], mg[0]...), mg[1]...)
		n, okN := mf.vocab[string(buf)]
		switch {
		case !okA:
			return clipErrorf("%s: merge %d (%q %q): %q is not in the vocabulary", mf.mergesFrom, rank+1, mg[0], mg[1], mg[0])
		case !okB:
			return clipErrorf("%s: merge %d (%q %q): %q is not in the vocabulary", mf.mergesFrom, rank+1, mg[0], mg[1], mg[1])
		case !okN:
			return clipErrorf("%s: merge %d (%q %q): the merged token %q is not in the vocabulary", mf.mergesFrom, rank+1, mg[0], mg[1], buf)
		}
		m.merges[clipPairKey(a, b)] = uint32(rank) // a later duplicate wins, as in HF and Python
		m.mergeID[rank] = n
	}
	return nil
}

// clipAddedTokens lists the added tokens in transformers' order: tokenizer.json's, the config's
// added_tokens_decoder by id, then the special tokens (transformers adds all_special_tokens; a token
// the files do not name gets CLIPTokenizer's default).
func clipAddedTokens(mf *clipModelFiles, cfg clipConfig) []clipAddedDef {
	added := append([]clipAddedDef(nil), mf.added...)
	sort.SliceStable(cfg.added, func(i, j int) bool { return cfg.added[i].id < cfg.added[j].id })
	added = append(added, cfg.added...)
	for _, s := range []struct {
		tok clipAddedDef
		def string
	}{{cfg.bos, clipSOT}, {cfg.eos, clipEOT}, {cfg.unk, clipEOT}, {cfg.pad, clipEOT}} {
		if s.tok.content == "" {
			s.tok = clipAddedDef{content: s.def, id: -1}
		}
		added = append(added, s.tok)
	}
	return added
}

// resolveSpecials sets the added-token sets, unk, BOS, EOS and pad.
func (t *CLIPTokenizer) resolveSpecials(dir string, mf *clipModelFiles, cfg clipConfig) error {
	added := clipAddedTokens(mf, cfg)
	lookup := func(content string) (int32, bool) {
		if id, ok := t.bpe.vocab[content]; ok {
			return id, true
		}
		for _, a := range added {
			if a.content == content && a.id >= 0 && int(a.id) < len(t.bpe.tokens) {
				return a.id, true
			}
		}
		return -1, false
	}
	seen := map[string]bool{}
	for _, a := range added {
		id, ok := lookup(a.content)
		if !ok || seen[a.content] {
			continue // the first definition of a token wins
		}
		seen[a.content] = true
		t.all.add(a.content, id)
		if a.normalized {
			t.normed.add(clipNormalize(a.content, &clipScratch{}), id)
		} else {
			t.raw.add(a.content, id)
		}
	}
	t.bpe.unkID, _ = lookup(clipFirst(mf.unk, cfg.unk.content, clipEOT))
	for _, s := range []struct {
		name, content string
		fromFile      int32
		dst           *int64
	}{
		{"bos_token", clipFirst(mf.bos, cfg.bos.content, clipSOT), mf.bosID, &t.bos},
		{"eos_token", clipFirst(mf.eos, cfg.eos.content, clipEOT), mf.eosID, &t.eos},
		{"pad_token", clipFirst(cfg.pad.content, clipEOT), -1, &t.pad},
	} {
		id, ok := s.fromFile, s.fromFile >= 0 && int(s.fromFile) < len(t.bpe.tokens)
		if !ok {
			id, ok = lookup(s.content)
		}
		if !ok {
			return clipErrorf("%s: %s %q is not in the vocabulary", dir, s.name, s.content)
		}
		*s.dst = int64(id)
	}
	return nil
}

func clipFirst(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
