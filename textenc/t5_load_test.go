package textenc

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// TestT5ScoreTables checks that spiece.model gives exactly the vocabulary, scores and charsmap HF
// reads from tokenizer.json (serde-parsed, and the exact variant), and that the two parses differ.
func TestT5ScoreTables(t *testing.T) {
	for _, exact := range []string{"", " exact"} {
		a, b := t5For(t, "sd3/tokenizer.json"+exact), t5For(t, "sd3/spiece.model"+exact)
		if len(a.model.scores) != 32100 || len(b.model.scores) != len(a.model.scores) {
			t.Fatalf("vocab sizes %d, %d, want 32100", len(a.model.scores), len(b.model.scores))
		}
		for i := range a.model.scores {
			if math.Float64bits(a.model.scores[i]) != math.Float64bits(b.model.scores[i]) {
				t.Fatalf("%s: score %d: tokenizer.json %v, spiece.model %v", exact, i, a.model.scores[i], b.model.scores[i])
			}
		}
		if !t5MapsEqual(a.model.tokenIDs, b.model.tokenIDs) || a.model.unkID != b.model.unkID {
			t.Fatalf("%s: piece tables differ", exact)
		}
	}
	serde, exact := t5For(t, "sd3/tokenizer.json"), t5For(t, "sd3/tokenizer.json exact")
	diff := 0
	for i, s := range serde.model.scores {
		if s != exact.model.scores[i] {
			diff++
			if d := math.Abs(s - exact.model.scores[i]); d > 2*t5ULP(s) {
				t.Errorf("score %d: serde %v vs exact %v: more than 2 ulp apart", i, s, exact.model.scores[i])
			}
		}
	}
	t.Logf("%d of %d scores differ between serde_json and a correctly rounded parse", diff, len(serde.model.scores))
	if diff < 1000 {
		t.Errorf("only %d scores differ between the serde and exact parses: serde emulation inactive?", diff)
	}
	pa, pb := serde.steps[0].(*precompiledCharsmap), t5For(t, "sd3/spiece.model").steps[0].(*precompiledCharsmap)
	if !slices.Equal(pa.units, pb.units) || pa.normalized != pb.normalized {
		t.Error("precompiled charsmaps of tokenizer.json and spiece.model differ")
	}
}

func t5ULP(f float64) float64 { return math.Nextafter(math.Abs(f), math.Inf(1)) - math.Abs(f) }

func t5MapsEqual(a, b map[string]int32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestSerdeParseFloat(t *testing.T) {
	for _, c := range []struct {
		lit  string
		want float64
	}{
		{"0.0", 0}, {"-0.0", math.Copysign(0, -1)}, {"1", 1}, {"-2", -2}, {"1.5", 1.5}, {"1e3", 1000},
		{"1E-3", 1.0 / 1000}, {"-2.5e+2", -250},
		// 20 digits fill the u64; the remaining integer digits only scale: f64(12345678901234567890)×1e4
		{"123456789012345678901234", float64(uint64(12345678901234567890)) * 1e4},
		{"1e400000000000", 0}, // exponent overflow is an error only with a non-zero significand
		{"0e400000000000", 0}, {"1e-400", 0}, {"4.9e-324", 5e-324},
		// 17-digit significands: one rounding in u64→f64, one in the division (1 ulp off)
		{"-9.481786727905273", -9.481786727905271},
	} {
		if c.lit == "1e400000000000" {
			if _, err := serdeParseFloat(c.lit); err == nil {
				t.Errorf("serdeParseFloat(%q): want out-of-range error", c.lit)
			}
			continue
		}
		got, err := serdeParseFloat(c.lit)
		if err != nil || math.Float64bits(got) != math.Float64bits(c.want) {
			t.Errorf("serdeParseFloat(%q) = %v, %v; want %v", c.lit, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "-", "01", "1.", ".5", "1e", "1e+", "abc", "1.5x", "\"1\"", "null"} {
		if _, err := serdeParseFloat(bad); err == nil {
			t.Errorf("serdeParseFloat(%q): want error", bad)
		}
	}
}

func TestGraphemeEnd(t *testing.T) {
	for _, c := range []struct {
		s    string
		want []string
	}{
		{"ab", []string{"a", "b"}},
		{"a\r\nb\n\r", []string{"a", "\r\n", "b", "\n", "\r"}},
		{"e\u0301\u0301x", []string{"e\u0301\u0301", "x"}},
		{"👨‍👩‍👧‍👦!", []string{"👨‍👩‍👧‍👦", "!"}},
		{"👍🏽👍", []string{"👍🏽", "👍"}},
		{"🇫🇷🇩🇪🇩", []string{"🇫🇷", "🇩🇪", "🇩"}},
		{"a\u200d🐶", []string{"a\u200d", "🐶"}},
		{"\u1100\u1161\u11a8\uac00\u11a8", []string{"\u1100\u1161\u11a8", "\uac00\u11a8"}},
		{"\u0600a", []string{"\u0600a"}},                 // Prepend
		{"\u0915\u0903x", []string{"\u0915\u0903", "x"}}, // SpacingMark
		{"\u0e01\u0e33", []string{"\u0e01\u0e33"}},
		{"a\u00adb", []string{"a", "\u00ad", "b"}}, // soft hyphen is Control
		{"ｶﾞ", []string{"ｶﾞ"}},
		{"🏳️‍🌈x", []string{"🏳️‍🌈", "x"}},
	} {
		var got []string
		for i := 0; i < len(c.s); {
			j := graphemeEnd(c.s, i)
			got = append(got, c.s[i:j])
			i = j
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("clusters of %+q = %+q, want %+q", c.s, got, c.want)
		}
	}
}

// TestT5PrependScheme checks the override and the spiece.model defaults.
func TestT5PrependScheme(t *testing.T) {
	needSharedT5(t)
	for _, c := range []struct {
		scheme string
		want   []int64
	}{
		{"always", []int64{3, 9, 1, 3, 115, 1}},
		{"first", []int64{3, 9, 1, 115, 1}},
		{"never", []int64{9, 1, 115, 1}},
	} {
		tok, err := LoadT5Tokenizer(sharedT5, T5Options{PrependScheme: c.scheme})
		if err != nil {
			t.Fatal(err)
		}
		if got := tok.Encode("a</s>b"); !slices.Equal(got, c.want) {
			t.Errorf("%s: Encode(a</s>b) = %v, want %v", c.scheme, got, c.want)
		}
	}
	if tok := t5For(t, "sd3/spiece.model"); tok.meta.prepend != prependAlways {
		t.Errorf("spiece.model with SD3 config: prepend %q, want always", tok.meta.prepend)
	}
	if tok := t5For(t, "flux/spiece.model"); tok.meta.prepend != prependFirst {
		t.Errorf("spiece.model with FLUX config (legacy=false): prepend %q, want first", tok.meta.prepend)
	}
}

// TestT5Defaults loads tokenizer.json and spiece.model without tokenizer_config.json.
func TestT5Defaults(t *testing.T) {
	needSharedT5(t)
	for _, f := range []string{"tokenizer.json", "spiece.model"} {
		dir := t.TempDir()
		t5CopyFile(t, filepath.Join(sharedT5, f), filepath.Join(dir, f))
		tok, err := LoadT5Tokenizer(dir, T5Options{})
		if err != nil {
			t.Fatal(err)
		}
		if tok.MaxLength() != 512 || tok.PadID() != 0 {
			t.Errorf("%s alone: MaxLength %d PadID %d, want 512 0", f, tok.MaxLength(), tok.PadID())
		}
		if got, want := tok.Encode("x<extra_id_1>y"), []int64{3, 226, 32098, 3, 63, 1}; !slices.Equal(got, want) {
			t.Errorf("%s alone: %v, want %v", f, got, want)
		}
	}
}

// t5WriteTokenizerJSON writes the SD3 tokenizer.json after edit into a fresh folder.
func t5WriteTokenizerJSON(t *testing.T, edit func(m map[string]any)) string {
	t.Helper()
	var m map[string]any
	t5ReadJSON(t, filepath.Join(sharedT5, "tokenizer.json"), &m)
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

type t5ErrCase struct {
	name, dir string
	o         T5Options
	want      []string // substrings of the error
}

// t5ErrorCases builds broken tokenizer folders.
func t5ErrorCases(t *testing.T) []t5ErrCase {
	spiece, err := os.ReadFile(filepath.Join(sharedT5, "spiece.model"))
	if err != nil {
		t.Fatal(err)
	}
	tj, err := os.ReadFile(filepath.Join(sharedT5, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	withFile := func(name string, data []byte) string {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	charsmap := func(v string) string {
		return t5WriteTokenizerJSON(t, func(m map[string]any) {
			m["normalizer"].(map[string]any)["normalizers"].([]any)[0].(map[string]any)["precompiled_charsmap"] = v
		})
	}
	model := func(edit func(m map[string]any)) string {
		return t5WriteTokenizerJSON(t, func(m map[string]any) { edit(m["model"].(map[string]any)) })
	}
	dirAsFile := withFile("x", nil)
	if err := os.Mkdir(filepath.Join(dirAsFile, "tokenizer.json"), 0o755); err != nil {
		t.Fatal(err)
	}
	none := []string{"neither tokenizer.json nor spiece.model"}
	return []t5ErrCase{
		{"missing folder", filepath.Join(t.TempDir(), "nope"), T5Options{}, none},
		{"empty folder", t.TempDir(), T5Options{}, none},
		{"bad option", t.TempDir(), T5Options{PrependScheme: "sometimes"}, []string{"PrependScheme", "sometimes"}},
		{"truncated spiece.model", withFile("spiece.model", spiece[:len(spiece)/2]), T5Options{}, []string{"spiece.model", "truncated"}},
		{"spiece.model cut at the end", withFile("spiece.model", spiece[:len(spiece)-7]), T5Options{}, []string{"spiece.model", "truncated"}},
		{"spiece.model garbage", withFile("spiece.model", []byte("\xff\xff\xff\xff")), T5Options{}, []string{"spiece.model"}},
		{"truncated tokenizer.json", withFile("tokenizer.json", tj[:len(tj)/3]), T5Options{}, []string{"tokenizer.json", "unexpected end"}},
		{"unreadable tokenizer.json", dirAsFile, T5Options{}, []string{"tokenizer.json"}},
		{"bad config", withFile("tokenizer_config.json", []byte("{")), T5Options{}, []string{"tokenizer_config.json"}},
		{"corrupt base64 charsmap", charsmap("!!not base64!!"), T5Options{}, []string{"tokenizer.json", "base64"}},
		{"short charsmap", charsmap("AAA="), T5Options{}, []string{"tokenizer.json", "header"}},
		{"oversized trie", charsmap("/////wAAAAA="), T5Options{}, []string{"tokenizer.json", "trie size"}},
		{"BPE model", model(func(m map[string]any) { m["type"] = "BPE" }), T5Options{}, []string{"only Unigram"}},
		{"bad score", model(func(m map[string]any) { m["vocab"].([]any)[5].([]any)[1] = "x" }), T5Options{}, []string{"vocab entry 5", "score"}},
		{"no unk_id", model(func(m map[string]any) { delete(m, "unk_id") }), T5Options{}, []string{"unk_id"}},
		{"unknown normalizer", t5WriteTokenizerJSON(t, func(m map[string]any) { m["normalizer"] = map[string]any{"type": "NFKC"} }),
			T5Options{}, []string{"NFKC"}},
	}
}

func TestT5LoadErrors(t *testing.T) {
	needSharedT5(t)
	for _, c := range t5ErrorCases(t) {
		_, err := LoadT5Tokenizer(c.dir, c.o)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", c.name, err, w)
			}
		}
	}
}

// spTiny builds a small SentencePiece model: pieces (text, score, type), trainer and normalizer.
func spTiny(modelType int, pieces ...any) []byte {
	var b []byte
	for i := 0; i+2 < len(pieces); i += 3 {
		var p []byte
		p = protowire.AppendTag(p, spPieceText, protowire.BytesType)
		p = protowire.AppendString(p, pieces[i].(string))
		p = protowire.AppendTag(p, spPieceScore, protowire.Fixed32Type)
		p = protowire.AppendFixed32(p, math.Float32bits(pieces[i+1].(float32)))
		p = protowire.AppendTag(p, spPieceType, protowire.VarintType)
		p = protowire.AppendVarint(p, uint64(pieces[i+2].(int)))
		b = protowire.AppendTag(b, spFieldPieces, protowire.BytesType)
		b = protowire.AppendBytes(b, p)
	}
	var tr []byte
	tr = protowire.AppendTag(tr, spTrainerModelType, protowire.VarintType)
	tr = protowire.AppendVarint(tr, uint64(modelType))
	tr = protowire.AppendTag(tr, spTrainerUnkID, protowire.VarintType)
	tr = protowire.AppendVarint(tr, 2)
	b = protowire.AppendTag(b, spFieldTrainer, protowire.BytesType)
	b = protowire.AppendBytes(b, tr)
	var nm []byte
	nm = protowire.AppendTag(nm, spNormName, protowire.BytesType)
	nm = protowire.AppendString(nm, "identity")
	b = protowire.AppendTag(b, spFieldNormalizer, protowire.BytesType)
	return protowire.AppendBytes(b, nm)
}

// TestT5TinySentencePiece converts a hand-made model: no charsmap, a USER_DEFINED piece, unk fusing.
func TestT5TinySentencePiece(t *testing.T) {
	model := spTiny(1, "<pad>", float32(0), spControl, "</s>", float32(0), spControl, "<unk>", float32(0), spUnknown,
		"▁", float32(-1), spNormal, "a", float32(-2), spNormal, "b", float32(-2), spNormal, "▁ab", float32(-2.5), spNormal,
		"<sep>", float32(0), spUserDefined, "xy", float32(-30), spUnused)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "spiece.model"), model, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(`{"extra_ids": 2, "model_max_length": 8}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := LoadT5Tokenizer(dir, T5Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		in   string
		want []int64
	}{
		{"ab", []int64{6, 1}},
		{"ab  a", []int64{6, 3, 4, 1}},                 // the space run becomes one ▁
		{"a<sep>b", []int64{3, 4, 7, 3, 5, 1}},         // USER_DEFINED piece is an added token
		{"a<extra_id_1> b", []int64{3, 4, 9, 3, 5, 1}}, // lstrip/rstrip by default
		{"qq", []int64{3, 2, 1}},                       // unknown chars fuse into one <unk>
		{"xy", []int64{3, 8, 1}},                       // UNUSED pieces still match (HF keeps them)
		{"a\tb", []int64{3, 4, 2, 5, 1}},               // no charsmap: tab is an unknown char
	} {
		if got := tok.Encode(c.in); !slices.Equal(got, c.want) {
			t.Errorf("Encode(%q) = %v, want %v", c.in, got, c.want)
		}
	}
	if tok.MaxLength() != 8 || tok.VocabSize() != 11 || len(tok.EncodePadded("a", 0)) != 8 {
		t.Errorf("MaxLength %d VocabSize %d", tok.MaxLength(), tok.VocabSize())
	}
	if err := os.WriteFile(filepath.Join(dir, "spiece.model"), spTiny(2, "a", float32(0), spNormal), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadT5Tokenizer(dir, T5Options{}); err == nil || !strings.Contains(err.Error(), "only Unigram") {
		t.Errorf("BPE spiece.model: error %v, want only Unigram", err)
	}
}

// TestT5AddedTokenFlags appends added tokens with every flag combination to the SD3 tokenizer.json
// and compares with the library's ids (testdata: "added").
func TestT5AddedTokenFlags(t *testing.T) {
	needSharedT5(t)
	var data struct {
		Added struct {
			Tokens []map[string]any `json:"tokens"`
			Cases  []struct {
				Text string  `json:"text"`
				SD3  []int64 `json:"sd3"`
			} `json:"cases"`
		} `json:"added"`
	}
	t5ReadJSON(t, "testdata/t5_cases.json", &data)
	if len(data.Added.Tokens) == 0 || len(data.Added.Cases) == 0 {
		t.Fatal("testdata/t5_cases.json has no added-token cases")
	}
	dir := t5WriteTokenizerJSON(t, func(m map[string]any) {
		for _, tk := range data.Added.Tokens {
			m["added_tokens"] = append(m["added_tokens"].([]any), tk)
		}
	})
	tok, err := LoadT5Tokenizer(dir, T5Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range data.Added.Cases {
		if got := tok.Encode(c.Text); !slices.Equal(got, c.SD3) {
			t.Errorf("Encode(%q)\n got %v\nwant %v", c.Text, got, c.SD3)
		}
	}
}

// TestT5DefaultScoresFollowTransformers: with the zero T5Options, SD3's folder (add_prefix_space set)
// and a spiece.model-only folder get the exact float32 scores, FLUX's tokenizer.json the serde parse —
// observable on a tie case, a run of 7 dashes, where the two differ.
func TestT5DefaultScoresFollowTransformers(t *testing.T) {
	needSharedT5(t)
	const tie = "a ------- b"
	for _, c := range []struct {
		name string
		load func() (*T5Tokenizer, error)
		same string
	}{
		{"sd3 tokenizer.json", func() (*T5Tokenizer, error) { return LoadT5Tokenizer(sharedT5, T5Options{}) }, "sd3/tokenizer.json exact"},
		{"flux tokenizer.json", func() (*T5Tokenizer, error) { return LoadT5Tokenizer(sharedT5+"/flux", T5Options{}) }, "flux/tokenizer.json"},
		{"sd3 spiece.model", func() (*T5Tokenizer, error) { return loadSpieceOnly(t, "", T5Options{}) }, "sd3/spiece.model exact"},
		{"flux spiece.model", func() (*T5Tokenizer, error) { return loadSpieceOnly(t, "flux", T5Options{}) }, "flux/spiece.model exact"},
	} {
		tok, err := c.load()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := tok.Encode(tie), t5For(t, c.same).Encode(tie); !slices.Equal(got, want) {
			t.Errorf("%s: default %v, want %s's %v", c.name, got, c.same, want)
		}
	}
	exact, serde := t5For(t, "sd3/tokenizer.json exact").Encode(tie), t5For(t, "sd3/tokenizer.json").Encode(tie)
	if slices.Equal(exact, serde) {
		t.Fatalf("%q no longer distinguishes the score parses (%v); pick another tie case", tie, exact)
	}
	if _, err := LoadT5Tokenizer(sharedT5, T5Options{Scores: 7}); err == nil {
		t.Fatal("an unknown Scores value was accepted")
	}
}
