package textenc

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// SentencePiece ModelProto (sentencepiece_model.proto), the fields a Unigram T5 model needs.
const (
	spFieldPieces     = 1 // ModelProto.pieces (repeated SentencePiece)
	spFieldTrainer    = 2 // ModelProto.trainer_spec
	spFieldNormalizer = 3 // ModelProto.normalizer_spec

	spPieceText  = 1 // SentencePiece.piece (string)
	spPieceScore = 2 // SentencePiece.score (float)
	spPieceType  = 3 // SentencePiece.type (enum)

	spTrainerModelType    = 3  // TrainerSpec.model_type (UNIGRAM = 1)
	spTrainerByteFallback = 35 // TrainerSpec.byte_fallback
	spTrainerUnkID        = 40 // TrainerSpec.unk_id
	spTrainerEOSID        = 42 // TrainerSpec.eos_id
	spTrainerPadID        = 43 // TrainerSpec.pad_id

	spNormName           = 1 // NormalizerSpec.name
	spNormCharsmap       = 2 // NormalizerSpec.precompiled_charsmap
	spNormAddDummyPrefix = 3 // NormalizerSpec.add_dummy_prefix
	spNormRemoveExtraWS  = 4 // NormalizerSpec.remove_extra_whitespaces
	spNormEscapeWS       = 5 // NormalizerSpec.escape_whitespaces
)

// SentencePiece piece types.
const (
	spNormal      = 1
	spUnknown     = 2
	spControl     = 3
	spUserDefined = 4
	spUnused      = 5
	spByte        = 6
)

type spPiece struct {
	text  string
	score float32
	typ   int
}

type spModel struct {
	pieces []spPiece
	// trainer_spec
	modelType    int
	byteFallback bool
	unkID        int
	eosID, padID int
	// normalizer_spec
	normName                                    string
	charsmap                                    []byte
	addDummyPrefix, removeExtraWS, escapeWhites bool
}

// spFields walks the fields of one message, calling fn with each field's number, wire type and
// value bytes (varint and fixed values decoded into v).
func spFields(b []byte, fn func(num protowire.Number, typ protowire.Type, v uint64, data []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v uint64
		var data []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var v32 uint32
			v32, n = protowire.ConsumeFixed32(b)
			v = uint64(v32)
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			data, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(num, typ, v, data); err != nil {
			return err
		}
	}
	return nil
}

// parseSentencePiece decodes a serialized ModelProto.
func parseSentencePiece(b []byte) (*spModel, error) {
	m := &spModel{modelType: 1, eosID: 2, padID: -1, addDummyPrefix: true, removeExtraWS: true, escapeWhites: true}
	var haveTrainer, haveNormalizer bool
	err := spFields(b, func(num protowire.Number, typ protowire.Type, _ uint64, data []byte) error {
		switch {
		case num == spFieldPieces && typ == protowire.BytesType:
			p, err := parseSPPiece(data)
			if err != nil {
				return fmt.Errorf("piece %d: %w", len(m.pieces), err)
			}
			m.pieces = append(m.pieces, p)
		case num == spFieldTrainer && typ == protowire.BytesType:
			haveTrainer = true
			return m.parseTrainer(data)
		case num == spFieldNormalizer && typ == protowire.BytesType:
			haveNormalizer = true
			return m.t5ParseNormalizer(data)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("not a valid SentencePiece model (truncated or corrupt?): %w", err)
	}
	// spm_train always writes pieces, trainer_spec, normalizer_spec, in this order: a file that
	// lacks the specs was cut short (a cut between two fields still parses).
	if len(m.pieces) == 0 || !haveTrainer || !haveNormalizer {
		return nil, fmt.Errorf("not a valid SentencePiece model (truncated?): %d pieces, trainer_spec %v, normalizer_spec %v",
			len(m.pieces), haveTrainer, haveNormalizer)
	}
	return m, nil
}

func parseSPPiece(b []byte) (spPiece, error) {
	p := spPiece{typ: spNormal}
	err := spFields(b, func(num protowire.Number, typ protowire.Type, v uint64, data []byte) error {
		switch {
		case num == spPieceText && typ == protowire.BytesType:
			if !utf8.Valid(data) {
				return errors.New("piece text is not valid UTF-8")
			}
			p.text = string(data)
		case num == spPieceScore && typ == protowire.Fixed32Type:
			p.score = math.Float32frombits(uint32(v))
		case num == spPieceType && typ == protowire.VarintType:
			p.typ = int(int32(v))
		}
		return nil
	})
	return p, err
}

func (m *spModel) parseTrainer(b []byte) error {
	return spFields(b, func(num protowire.Number, typ protowire.Type, v uint64, _ []byte) error {
		if typ != protowire.VarintType {
			return nil
		}
		switch num {
		case spTrainerModelType:
			m.modelType = int(int32(v))
		case spTrainerByteFallback:
			m.byteFallback = v != 0
		case spTrainerUnkID:
			m.unkID = int(int32(v))
		case spTrainerEOSID:
			m.eosID = int(int32(v))
		case spTrainerPadID:
			m.padID = int(int32(v))
		}
		return nil
	})
}

func (m *spModel) t5ParseNormalizer(b []byte) error {
	return spFields(b, func(num protowire.Number, typ protowire.Type, v uint64, data []byte) error {
		switch {
		case num == spNormName && typ == protowire.BytesType:
			m.normName = string(data)
		case num == spNormCharsmap && typ == protowire.BytesType:
			m.charsmap = append([]byte(nil), data...)
		case num == spNormAddDummyPrefix && typ == protowire.VarintType:
			m.addDummyPrefix = v != 0
		case num == spNormRemoveExtraWS && typ == protowire.VarintType:
			m.removeExtraWS = v != 0
		case num == spNormEscapeWS && typ == protowire.VarintType:
			m.escapeWhites = v != 0
		}
		return nil
	})
}

// t5FromSentencePiece builds what transformers' T5Converter (convert_slow_tokenizer, legacy) builds
// from spiece.model: Unigram over the pieces plus <extra_id_{n-1}> … <extra_id_0> (score 0);
// normalizer Precompiled(charsmap) → Strip(right) → Replace(" {2,}", "▁"); Metaspace("▁", always |
// first if legacy=false | never if add_prefix_space=false); template "$A </s>"; added tokens:
// CONTROL and USER_DEFINED pieces, <unk>, and the extra ids with lstrip/rstrip (T5Tokenizer's
// legacy defaults), each overridden by tokenizer_config.json's added_tokens_decoder.
//
// Scores: the converter hands the float32 scores to tokenizers exactly (o.exact); a tokenizer.json
// written from it and read back by HF tokenizers has them parsed serde-style, which is what the
// other choice gives, so the tokenizer then equals the shipped tokenizer.json.
func t5FromSentencePiece(data []byte, cfg t5Config, o T5Options) (*T5Tokenizer, error) {
	m, err := parseSentencePiece(data)
	if err != nil {
		return nil, err
	}
	if m.modelType != 1 {
		return nil, fmt.Errorf("SentencePiece model type %d: only Unigram (1) is supported", m.modelType)
	}
	n := len(m.pieces)
	if m.unkID < 0 || m.unkID >= n {
		return nil, fmt.Errorf("unk_id %d out of range [0, %d)", m.unkID, n)
	}
	pieces := make([]string, n, n+cfg.extraIDs)
	scores := make([]float64, n, n+cfg.extraIDs)
	for i, p := range m.pieces {
		pieces[i] = p.text
		if o.exact {
			scores[i] = float64(p.score)
		} else if scores[i], err = f32ScoreAsHF(p.score); err != nil {
			return nil, fmt.Errorf("piece %d (%q): %w", i, p.text, err)
		}
	}
	for i := cfg.extraIDs - 1; i >= 0; i-- {
		pieces = append(pieces, fmt.Sprintf("<extra_id_%d>", i))
		scores = append(scores, 0)
	}
	t := &T5Tokenizer{model: newT5Unigram(pieces, scores, m.unkID), maxLen: cfg.maxLen}
	if len(m.charsmap) > 0 {
		p, err := parsePrecompiledCharsmap(m.charsmap)
		if err != nil {
			return nil, fmt.Errorf("normalizer_spec: %w", err)
		}
		t.steps = append(t.steps, p)
	}
	spaces, _ := newT5Replace(" {2,}", true, "▁")
	t.steps = append(t.steps, t5Strip{right: true}, spaces)
	t.meta = &t5Metaspace{repl: "▁", prepend: spPrependScheme(cfg, o), split: true}
	toks := spAddedTokens(m, cfg, n)
	t.setAddedTokens(toks, len(pieces))
	t.suffix = []int64{t.model.pieceID(cfg.eosToken)} // convert_tokens_to_ids: unk when absent
	t.padID = t.tokenID(cfg.padToken, toks)
	return t, nil
}

// spPrependScheme is transformers' _get_prepend_scheme for the converter (or the override).
func spPrependScheme(cfg t5Config, o T5Options) string {
	switch {
	case o.PrependScheme != "":
		return o.PrependScheme
	case !cfg.addPrefixSpace:
		return prependNever
	case !cfg.legacy:
		return prependFirst
	}
	return prependAlways
}

// spAddedTokens lists the added tokens the converted T5TokenizerFast has.
func spAddedTokens(m *spModel, cfg t5Config, nPieces int) []t5AddedToken {
	var toks []t5AddedToken
	byContent := map[string]int{}
	add := func(tk t5AddedToken) {
		if dec, ok := cfg.addedTokens[tk.id]; ok && dec.content == tk.content {
			tk = dec
		}
		if i, ok := byContent[tk.content]; ok {
			toks[i] = tk
			return
		}
		byContent[tk.content] = len(toks)
		toks = append(toks, tk)
	}
	for id, p := range m.pieces {
		if p.typ == spControl || p.typ == spUserDefined {
			add(t5AddedToken{content: p.text, id: int64(id), spc: p.typ == spControl})
		}
	}
	for _, s := range []string{cfg.unkToken, cfg.eosToken, cfg.padToken} {
		for id, p := range m.pieces {
			if p.text == s {
				add(t5AddedToken{content: s, id: int64(id), spc: true})
				break
			}
		}
	}
	for i := 0; i < cfg.extraIDs; i++ {
		add(t5AddedToken{content: fmt.Sprintf("<extra_id_%d>", i), id: int64(nPieces + cfg.extraIDs - 1 - i),
			lstrip: true, rstrip: true, spc: true})
	}
	extra := make([]int64, 0, len(cfg.addedTokens))
	for id, tk := range cfg.addedTokens {
		if _, ok := byContent[tk.content]; !ok {
			extra = append(extra, id)
		}
	}
	slices.Sort(extra)
	for _, id := range extra {
		add(cfg.addedTokens[id])
	}
	return toks
}
