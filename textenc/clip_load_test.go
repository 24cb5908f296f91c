package textenc

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// clipTokSmallFolder writes a small custom vocabulary in the slow files' format: the 256 byte tokens
// (ids 0–255 in byte order), a few words with "</w>", the merges that build them, and the two specials.
func clipTokSmallFolder(t testing.TB) string {
	t.Helper()
	vocab := map[string]int{}
	for b := range 256 {
		vocab[string(clipByteRunes[b])] = b
	}
	for i, w := range []string{"a</w>", "t</w>", "g</w>", "s</w>", "ca", "cat</w>", "cat", "cats</w>", "do", "dog</w>",
		"<|startoftext|>", "<|endoftext|>"} {
		vocab[w] = 256 + i
	}
	data, err := json.Marshal(vocab)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	clipTokWrite(t, dir, "vocab.json", string(data))
	clipTokWrite(t, dir, "merges.txt", "#version: 0.2\nc a\nca t</w>\nca t\ncat s</w>\nd o\ndo g</w>\n")
	return dir
}

func clipTokWrite(t testing.TB, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCLIPSmallVocabulary(t *testing.T) {
	dir := clipTokSmallFolder(t)
	for _, slow := range []bool{false, true} {
		tok, err := LoadCLIPTokenizer(dir, CLIPOptions{SlowCompat: slow})
		if err != nil {
			t.Fatal(err)
		}
		if tok.BOS() != 266 || tok.EOS() != 267 || tok.PadID() != 267 || tok.MaxLength() != 77 || tok.VocabSize() != 268 {
			t.Fatalf("bos %d eos %d pad %d max %d vocab %d", tok.BOS(), tok.EOS(), tok.PadID(), tok.MaxLength(), tok.VocabSize())
		}
		for _, c := range []struct {
			text string
			want []int64
		}{
			// a → a</w>; cat → c a → ca t</w> → cat</w>; "," and "!" have no "</w>" byte token → unknown
			// (<|endoftext|>); cats → ca t → cat s</w> → cats</w>; dog → do g</w> → dog</w>.
			{"A cat, cats dog!", []int64{266, 256, 261, 267, 263, 265, 267, 267}},
			// c o w</w>: w</w> is unknown and c o has no merge.
			{"cow", []int64{266, 'c', 'o', 267, 267}},
			{"", []int64{266, 267}},
			{"<|endoftext|>dog", []int64{266, 267, 265, 267}},
		} {
			if got := tok.Encode(c.text); !slices.Equal(got, c.want) {
				t.Errorf("slow=%v %q = %v, want %v", slow, c.text, got, c.want)
			}
		}
		if got := tok.EncodePadded("dog", 5); !slices.Equal(got, []int64{266, 265, 267, 267, 267}) {
			t.Errorf("padded = %v", got)
		}
		if tok.Token(265) != "dog</w>" || tok.Token(268) != "" || tok.Token(-1) != "" {
			t.Errorf("Token: %q %q", tok.Token(265), tok.Token(268))
		}
	}
}

func TestCLIPLoadErrors(t *testing.T) {
	small := clipTokSmallFolder(t)
	vocab, err := os.ReadFile(filepath.Join(small, "vocab.json"))
	if err != nil {
		t.Fatal(err)
	}
	merges := "#version: 0.2\nc a\n"
	cases := []struct {
		name  string
		files map[string]string
		want  string // substring of the error; "DIR" stands for the folder
	}{
		{"empty folder", nil, "DIR: no tokenizer files: looked for tokenizer.json, or vocab.json with merges.txt"},
		{"truncated vocab.json", map[string]string{"vocab.json": string(vocab[:100]), "merges.txt": merges},
			"textenc: clip tokenizer: read DIR/vocab.json: unexpected end of JSON input"},
		{"missing merges.txt", map[string]string{"vocab.json": string(vocab)}, "read DIR/merges.txt: no such file"},
		{"missing vocab.json", map[string]string{"merges.txt": merges}, "read DIR/vocab.json: no such file"},
		{"bad merges line", map[string]string{"vocab.json": string(vocab), "merges.txt": "#version: 0.2\nc a\nbad\n"},
			`read DIR/merges.txt: line 3: bad merge "bad": want two tokens separated by one space`},
		{"three-part merge", map[string]string{"vocab.json": string(vocab), "merges.txt": "c a t\n"}, `line 1: bad merge "c a t"`},
		{"merge not in vocab", map[string]string{"vocab.json": string(vocab), "merges.txt": "#version: 0.2\nx y\n"},
			`DIR/merges.txt: merge 1 ("x" "y"): the merged token "xy" is not in the vocabulary`},
		{"huge id", map[string]string{"vocab.json": `{"a": 100000000}`, "merges.txt": merges},
			`DIR/vocab.json: token "a" has id 100000000, want 0 ≤ id < 16777216`},
		{"empty vocab", map[string]string{"vocab.json": "{}", "merges.txt": merges}, "read DIR/vocab.json: empty vocabulary"},
		{"vocab not an object", map[string]string{"vocab.json": "[1,2]", "merges.txt": merges}, "read DIR/vocab.json: json: cannot unmarshal array"},
		{"truncated tokenizer.json", map[string]string{"tokenizer.json": `{"model": {"type": "BPE", "vocab": {"a": 1`},
			"read DIR/tokenizer.json: unexpected end of JSON input"},
		{"not CLIP tokenizer.json", map[string]string{"tokenizer.json": `{"model": {"type": "Unigram"}}`},
			`DIR/tokenizer.json: model.type is "Unigram", want BPE`},
		{"bad tokenizer_config.json", map[string]string{"vocab.json": string(vocab), "merges.txt": merges, "tokenizer_config.json": "{"},
			"read DIR/tokenizer_config.json: unexpected end of JSON input"},
		{"bad model_max_length", map[string]string{"vocab.json": string(vocab), "merges.txt": merges,
			"tokenizer_config.json": `{"model_max_length": 1.5}`}, "model_max_length 1.5: want an integer ≥ 2"},
		{"bad pad_token", map[string]string{"vocab.json": string(vocab), "merges.txt": merges,
			"special_tokens_map.json": `{"pad_token": 7}`}, `read DIR/special_tokens_map.json: pad_token: want a string or {"content": …}`},
		{"pad_token not in vocab", map[string]string{"vocab.json": string(vocab), "merges.txt": merges,
			"tokenizer_config.json": `{"pad_token": {"content": "<pad>"}}`}, `DIR: pad_token "<pad>" is not in the vocabulary`},
	}
	for _, c := range cases {
		dir := t.TempDir()
		for name, content := range c.files {
			clipTokWrite(t, dir, name, content)
		}
		_, err := LoadCLIPTokenizer(dir, CLIPOptions{})
		want := strings.ReplaceAll(c.want, "DIR", dir)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, want)
		}
	}
	if _, err := LoadCLIPTokenizer(filepath.Join(small, "nope"), CLIPOptions{}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("missing folder: %v", err)
	}
}

// TestCLIPConfigOverrides: special_tokens_map.json overrides tokenizer_config.json; pad and
// model_max_length come from the configs; "no limit" (1e30) keeps the default 77.
func TestCLIPConfigOverrides(t *testing.T) {
	dir := clipTokSmallFolder(t)
	clipTokWrite(t, dir, "tokenizer_config.json", `{"model_max_length": 1e30, "pad_token": "<|startoftext|>"}`)
	clipTokWrite(t, dir, "special_tokens_map.json", `{"pad_token": {"content": "cat</w>", "normalized": false}}`)
	tok, err := LoadCLIPTokenizer(dir, CLIPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if tok.PadID() != 261 || tok.MaxLength() != 77 {
		t.Errorf("pad %d max %d, want 261 77", tok.PadID(), tok.MaxLength())
	}
	clipTokWrite(t, dir, "tokenizer_config.json", `{"model_max_length": 16}`)
	if tok, err = LoadCLIPTokenizer(dir, CLIPOptions{}); err != nil || tok.MaxLength() != 16 || len(tok.EncodePadded("dog", 0)) != 16 {
		t.Errorf("max length: %v", err)
	}
}

// TestCLIPInvalidUTF8: every invalid byte reads as U+FFFD (Go's range loop); the slow pre-pass drops
// U+FFFD like BasicTokenizer.
func TestCLIPInvalidUTF8(t *testing.T) {
	fast, slow := clipTokLoad(t, "json", false), clipTokLoad(t, "json", true)
	for in, same := range map[string]string{
		"a\xffb":          "a\uFFFDb",
		"x\xe4\xb8y":      "x\uFFFD\uFFFDy",
		"\xed\xa0\x80":    "\uFFFD\uFFFD\uFFFD", // an encoded surrogate
		"\xc0\xaf cat":    "\uFFFD\uFFFD cat",
		"cat\x80":         "cat\uFFFD",
		"<|endoftext\xff": "<|endoftext\uFFFD",
	} {
		if got, want := fast.Encode(in), fast.Encode(same); !slices.Equal(got, want) {
			t.Errorf("fast %q = %v, want %v", in, got, want)
		}
		if got, want := slow.Encode(in), slow.Encode(strings.ReplaceAll(same, "\uFFFD", "")); !slices.Equal(got, want) {
			t.Errorf("slow %q = %v, want %v", in, got, want)
		}
	}
}

// TestCLIPConcurrent encodes every case from 8 goroutines at once, starting from an empty cache.
func TestCLIPConcurrent(t *testing.T) {
	cases := clipTokCases(t)
	tok, err := LoadCLIPTokenizer(clipTokFolder(t, "json"), CLIPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range cases {
				c := cases[(i+g*61)%len(cases)]
				if got := tok.Encode(c.Text); !slices.Equal(got, c.Fast) {
					errs <- c.Text
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for text := range errs {
		t.Errorf("concurrent encode of %q differs", text)
	}
}

// TestCLIPCacheBound: the cache never holds more than clipCacheSize words and keeps working past it.
func TestCLIPCacheBound(t *testing.T) {
	tok := clipTokLoad(t, "json", false)
	tok.resetCache()
	want := tok.Encode("zebra")
	var b strings.Builder
	for i := range clipCacheSize + 10 {
		b.Reset()
		for n := i; ; n /= 26 {
			b.WriteByte(byte('a' + n%26))
			if n < 26 {
				break
			}
		}
		tok.Encode(b.String())
		if n := len(tok.cache.m); n > clipCacheSize {
			t.Fatalf("cache holds %d words", n)
		}
	}
	if got := tok.Encode("zebra"); !slices.Equal(got, want) {
		t.Errorf("after refill: %v, want %v", got, want)
	}
}

// TestCLIPSmallTokenizerJSON loads the small vocabulary from a tokenizer.json with merges as pairs
// (the newer format) and checks it encodes like the vocab.json + merges.txt folder.
func TestCLIPSmallTokenizerJSON(t *testing.T) {
	files := clipTokSmallFolder(t)
	vocab, err := os.ReadFile(filepath.Join(files, "vocab.json"))
	if err != nil {
		t.Fatal(err)
	}
	pattern, err := json.Marshal(clipSplitPattern)
	if err != nil {
		t.Fatal(err)
	}
	tj := `{"version": "1.0",
 "added_tokens": [{"id": 266, "content": "<|startoftext|>", "normalized": true, "special": true},
                  {"id": 267, "content": "<|endoftext|>", "normalized": false, "special": true}],
 "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"},
   {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "}, {"type": "Lowercase"}]},
 "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
   {"type": "Split", "pattern": {"Regex": ` + string(pattern) + `}, "behavior": "Removed", "invert": true},
   {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]},
 "post_processor": {"type": "RobertaProcessing", "sep": ["<|endoftext|>", 267], "cls": ["<|startoftext|>", 266]},
 "model": {"type": "BPE", "dropout": null, "unk_token": "<|endoftext|>", "continuing_subword_prefix": "",
   "end_of_word_suffix": "</w>", "fuse_unk": false, "byte_fallback": false, "vocab": ` + string(vocab) + `,
   "merges": [["c", "a"], ["ca", "t</w>"], ["ca", "t"], ["cat", "s</w>"], ["d", "o"], ["do", "g</w>"]]}}`
	dir := t.TempDir()
	clipTokWrite(t, dir, "tokenizer.json", tj)
	a, err := LoadCLIPTokenizer(dir, CLIPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadCLIPTokenizer(files, CLIPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"A cat, cats dog!", "cow", "<|startoftext|>dog<|endoftext|>", "ΟΔΟΣ 中文"} {
		if got, want := a.Encode(text), b.Encode(text); !slices.Equal(got, want) {
			t.Errorf("%q: tokenizer.json %v, files %v", text, got, want)
		}
	}
	// A pipeline other than CLIP's is refused.
	clipTokWrite(t, dir, "tokenizer.json", strings.Replace(tj, `"invert": true`, `"invert": false`, 1))
	if _, err := LoadCLIPTokenizer(dir, CLIPOptions{}); err == nil || !strings.Contains(err.Error(), "pre_tokenizer must be") {
		t.Errorf("non-CLIP pre_tokenizer: %v", err)
	}
}
