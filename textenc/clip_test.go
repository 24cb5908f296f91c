package textenc

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode"
)

// clipTokShared is the shared tokenizer data, relative to the package directory.
const clipTokShared = "../../shared/tokenizers"

func clipTokSharedDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(clipTokShared, "clip")
	if _, err := os.Stat(filepath.Join(dir, "tokenizer.json")); err != nil {
		t.Skipf("CLIP tokenizer files not available (%v): the shared folder %s sits next to the repository", err, clipTokShared)
	}
	return dir
}

// clipTokFolder builds a folder from the shared files: kind "json" (tokenizer.json + configs), "files"
// (vocab.json + merges.txt + configs), "g-json"/"g-files" (the same with CLIP-G's configs).
func clipTokFolder(t testing.TB, kind string) string {
	t.Helper()
	src := clipTokSharedDir(t)
	dir := t.TempDir()
	files := []string{"tokenizer.json"}
	if strings.HasSuffix(kind, "files") {
		files = []string{"vocab.json", "merges.txt"}
	}
	cfg := src
	if strings.HasPrefix(kind, "g-") {
		cfg = filepath.Join(src, "clip_g")
	}
	for _, f := range files {
		clipTokCopy(t, filepath.Join(src, f), filepath.Join(dir, f))
	}
	for _, f := range []string{"tokenizer_config.json", "special_tokens_map.json"} {
		clipTokCopy(t, filepath.Join(cfg, f), filepath.Join(dir, f))
	}
	return dir
}

func clipTokCopy(t testing.TB, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

var (
	clipTokMu    sync.Mutex
	clipTokCache = map[string]*CLIPTokenizer{}
)

// clipTokLoad loads (once per test binary) the tokenizer of a folder kind with or without SlowCompat.
func clipTokLoad(t testing.TB, kind string, slow bool) *CLIPTokenizer {
	t.Helper()
	clipTokSharedDir(t)
	key := fmt.Sprint(kind, slow)
	clipTokMu.Lock()
	defer clipTokMu.Unlock()
	if tok := clipTokCache[key]; tok != nil {
		return tok
	}
	dir := clipTokSharedDir(t)
	if kind != "shared" {
		dir = clipTokFolder(t, kind)
	}
	tok, err := LoadCLIPTokenizer(dir, CLIPOptions{SlowCompat: slow})
	if err != nil {
		t.Fatal(err)
	}
	clipTokCache[key] = tok
	return tok
}

// TestCLIPReferenceIDs checks shared/tokenizers/reference-ids.json: keys clip (fast) and
// clip_slow_noftfy (slow, where it differs from clip).
func TestCLIPReferenceIDs(t *testing.T) {
	clipTokSharedDir(t)
	data, err := os.ReadFile(filepath.Join(clipTokShared, "reference-ids.json"))
	if err != nil {
		t.Skipf("reference ids not available: %v", err)
	}
	var ref struct {
		Cases []struct {
			Text string  `json:"text"`
			CLIP []int64 `json:"clip"`
			Slow []int64 `json:"clip_slow_noftfy"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	fast, slow := clipTokLoad(t, "shared", false), clipTokLoad(t, "shared", true)
	n := 0
	for _, c := range ref.Cases {
		if c.CLIP == nil {
			continue
		}
		n++
		clipTokCheck(t, "fast", fast, c.Text, c.CLIP)
		clipTokCheck(t, "slow", slow, c.Text, clipTokOr(c.Slow, c.CLIP))
	}
	if n == 0 {
		t.Fatal("reference-ids.json has no clip cases")
	}
	t.Logf("%d reference prompts, fast and slow", n)
}

func clipTokOr(a, b []int64) []int64 {
	if a != nil {
		return a
	}
	return b
}

func clipTokCheck(t *testing.T, name string, tok *CLIPTokenizer, text string, want []int64) bool {
	t.Helper()
	got := tok.Encode(text)
	if slices.Equal(got, want) {
		return true
	}
	var gs, ws []string
	for _, id := range got {
		gs = append(gs, tok.Token(id))
	}
	for _, id := range want {
		ws = append(ws, tok.Token(id))
	}
	t.Errorf("%s %q:\n got %v %q\nwant %v %q", name, text, got, gs, want, ws)
	return false
}

// clipTokCase is one case of testdata/clip_ids.json (see gen_clip_ids.js).
type clipTokCase struct {
	Text  string  `json:"text"`
	Fast  []int64 `json:"fast"`
	Slow  []int64 `json:"slow"`
	G     []int64 `json:"g"`
	GSlow []int64 `json:"g_slow"`
}

func clipTokCases(t testing.TB) []clipTokCase {
	t.Helper()
	data, err := os.ReadFile("testdata/clip_ids.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Cases []clipTokCase }
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Cases) < 150 {
		t.Fatalf("testdata/clip_ids.json: %d cases, want ≥ 150", len(f.Cases))
	}
	return f.Cases
}

// clipTokNewerThanGo reports whether text has a code point Go's Unicode tables do not assign: the slow
// tokenizer drops those as category Cn, so its ids depend on the Unicode version of the Python that
// runs it (the generator's reference used Unicode 17).
func clipTokNewerThanGo(text string) bool {
	for _, r := range text {
		if !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs) {
			return true
		}
	}
	return false
}

// TestCLIPGeneratedIDs checks every case of testdata/clip_ids.json with tokenizers loaded from
// tokenizer.json and from vocab.json + merges.txt, fast and slow, CLIP-L and CLIP-G configs.
func TestCLIPGeneratedIDs(t *testing.T) {
	cases := clipTokCases(t)
	type variant struct {
		kind string
		slow bool
		want func(c clipTokCase) []int64
	}
	slowWant := func(c clipTokCase) []int64 { return clipTokOr(c.Slow, c.Fast) }
	variants := []variant{
		{"json", false, func(c clipTokCase) []int64 { return c.Fast }},
		{"files", false, func(c clipTokCase) []int64 { return c.Fast }},
		{"json", true, slowWant},
		{"files", true, slowWant},
		{"g-json", false, func(c clipTokCase) []int64 { return clipTokOr(c.G, c.Fast) }},
		{"g-files", true, func(c clipTokCase) []int64 { return clipTokOr(c.GSlow, slowWant(c)) }},
	}
	clipTokSharedDir(t)
	for _, v := range variants {
		t.Run(fmt.Sprintf("%s/slow=%v", v.kind, v.slow), func(t *testing.T) {
			tok := clipTokLoad(t, v.kind, v.slow)
			ok, skipped, bad := 0, 0, 0
			for _, c := range cases {
				if v.slow && clipTokNewerThanGo(c.Text) {
					skipped++
					continue
				}
				if !clipTokCheck(t, v.kind, tok, c.Text, v.want(c)) {
					if bad++; bad > 20 {
						t.Fatal("too many failures")
					}
					continue
				}
				ok++
			}
			t.Logf("%d cases equal, %d skipped (code points newer than Go's Unicode %s)", ok, skipped, unicode.Version)
		})
	}
}

// TestCLIPJSONAndFilesAgree checks that tokenizer.json and vocab.json + merges.txt load the same model.
func TestCLIPJSONAndFilesAgree(t *testing.T) {
	a, b := clipTokLoad(t, "json", false), clipTokLoad(t, "files", false)
	if a.VocabSize() != b.VocabSize() || len(a.bpe.merges) != len(b.bpe.merges) || len(a.bpe.merges) != 48894 {
		t.Fatalf("vocab %d/%d, merges %d/%d (want 48894)", a.VocabSize(), b.VocabSize(), len(a.bpe.merges), len(b.bpe.merges))
	}
	for id := range int64(a.VocabSize()) {
		if a.Token(id) != b.Token(id) {
			t.Fatalf("token %d: %q vs %q", id, a.Token(id), b.Token(id))
		}
	}
	for k, r := range a.bpe.merges {
		if r2, ok := b.bpe.merges[k]; !ok || r2 != r || a.bpe.mergeID[r] != b.bpe.mergeID[r] {
			t.Fatalf("merge %x differs", k)
		}
	}
	for _, tok := range []*CLIPTokenizer{a, b} {
		if tok.BOS() != 49406 || tok.EOS() != 49407 || tok.PadID() != 49407 || tok.MaxLength() != 77 || tok.VocabSize() != 49408 {
			t.Errorf("bos %d eos %d pad %d max %d vocab %d", tok.BOS(), tok.EOS(), tok.PadID(), tok.MaxLength(), tok.VocabSize())
		}
	}
}

func TestCLIPEncodePadded(t *testing.T) {
	long := strings.Repeat("token ", 300)
	for _, kind := range []string{"json", "files", "g-json", "g-files"} {
		tok := clipTokLoad(t, kind, false)
		wantPad := int64(49407)
		if strings.HasPrefix(kind, "g-") {
			wantPad = 0
		}
		if tok.PadID() != wantPad || tok.MaxLength() != 77 {
			t.Fatalf("%s: pad %d max %d, want %d 77", kind, tok.PadID(), tok.MaxLength(), wantPad)
		}
		for _, text := range []string{"", "a photo of a cat", long, strings.Repeat("a ", 75), strings.Repeat("a ", 76)} {
			full := tok.Encode(text)
			for _, n := range []int{0, 77, 10, 2, 1} {
				got := tok.EncodePadded(text, n)
				clipTokCheckPadded(t, kind, tok, full, got, n)
			}
		}
		got := tok.EncodePadded("a photo of a cat", 0)
		want := append([]int64{49406, 320, 1125, 539, 320, 2368, 49407}, slices.Repeat([]int64{wantPad}, 70)...)
		if !slices.Equal(got, want) {
			t.Errorf("%s: EncodePadded = %v, want %v", kind, got, want)
		}
	}
}

func clipTokCheckPadded(t *testing.T, kind string, tok *CLIPTokenizer, full, got []int64, n int) {
	t.Helper()
	if n <= 0 {
		n = tok.MaxLength()
	}
	if len(got) != n {
		t.Fatalf("%s: EncodePadded(%d) has %d ids", kind, n, len(got))
	}
	if n == 1 {
		if got[0] != tok.BOS() {
			t.Errorf("%s: EncodePadded(1) = %v", kind, got)
		}
		return
	}
	content := full[1 : len(full)-1]
	keep := min(len(content), n-2)
	want := append([]int64{tok.BOS()}, content[:keep]...)
	want = append(want, tok.EOS())
	for len(want) < n {
		want = append(want, tok.PadID())
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s: EncodePadded(%d) = %v, want %v", kind, n, got, want)
	}
}

// TestCLIPGExclamation: SD3/SDXL tokenizer_2 configs declare "!" (id 0) an added special token, so
// every "!" in a prompt is id 0 there (diffusers issue #4153), while CLIP-L gives "!</w>" 256.
func TestCLIPGExclamation(t *testing.T) {
	l, g := clipTokLoad(t, "json", false), clipTokLoad(t, "g-json", false)
	wow := int64(l.bpe.vocab["wow</w>"])
	if got := l.Encode("wow! !!"); !slices.Equal(got, []int64{49406, wow, 256, 748, 49407}) {
		t.Errorf("CLIP-L: %v", got)
	}
	if got := g.Encode("wow! !!"); !slices.Equal(got, []int64{49406, wow, 0, 0, 0, 49407}) {
		t.Errorf("CLIP-G: %v", got)
	}
}

// TestCLIPSlowCompatByHand checks the three documented slow/fast differences on hand-derived ids.
func TestCLIPSlowCompatByHand(t *testing.T) {
	fast, slow := clipTokLoad(t, "json", false), clipTokLoad(t, "json", true)
	id := func(tok string) int64 { return int64(fast.bpe.vocab[tok]) }
	b := func(s string) string { // byte-level spelling
		var out []rune
		for i := 0; i < len(s); i++ {
			out = append(out, clipByteRunes[s[i]])
		}
		return string(out)
	}
	cases := []struct {
		text       string
		fast, slow []int64
	}{
		// ZWSP U+200B: a word of its own in fast, dropped in slow (then "ab" is one word).
		{"a\u200bb", []int64{id("a</w>"), id(b("\u200b") + "</w>"), id("b</w>")}, []int64{id("ab</w>")}},
	}
	for _, c := range cases {
		gotF, gotS := fast.Encode(c.text), slow.Encode(c.text)
		if c.fast != nil && !slices.Equal(gotF[1:len(gotF)-1], c.fast) {
			t.Errorf("fast %q = %v, want %v", c.text, gotF, c.fast)
		}
		if c.slow != nil && !slices.Equal(gotS[1:len(gotS)-1], c.slow) {
			t.Errorf("slow %q = %v, want %v", c.text, gotS, c.slow)
		}
	}
	zh, wen := fast.Encode("中"), fast.Encode("文")
	// CJK: one word in fast, one word per ideograph in slow.
	want := append(zh[:len(zh)-1:len(zh)-1], wen[1:]...)
	if got := slow.Encode("中文"); !slices.Equal(got, want) {
		t.Errorf("slow 中文 = %v, want %v", got, want)
	}
	if got := fast.Encode("中文"); slices.Equal(got, want) {
		t.Errorf("fast 中文 = %v, should be one word", got)
	}
	if got := clipSlowPrepass("ΟΔΟΣ ΣΑΣ Σ aΣ. \u4e2d\u6587\u200d x\u00a0y\u2028z"); got != "οδος σας σ aς. 中 文 x y z" {
		t.Errorf("prepass = %q", got)
	}
	if got := clipNormalize("ΟΔΟΣ", &clipScratch{}); got != "οδοσ" {
		t.Errorf("fast normalize = %q", got)
	}
}
