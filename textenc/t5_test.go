package textenc

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// sharedT5 is the T5 tokenizer data (shared/tokenizers/t5, next to the repository).
const sharedT5 = "../../shared/tokenizers/t5"

func needSharedT5(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(sharedT5, "tokenizer.json")); err != nil {
		t.Skipf("T5 tokenizer data not available (%v): these tests need ../../shared/tokenizers", err)
	}
}

// t5Flavours are the tokenizers under test, built once: name → loader.
var (
	t5Once  sync.Map // name → *t5Loaded
	t5Kinds = map[string]func(t testing.TB) (*T5Tokenizer, error){
		"sd3/tokenizer.json": func(t testing.TB) (*T5Tokenizer, error) {
			return LoadT5Tokenizer(sharedT5, T5Options{Scores: ScoresFromJSON})
		},
		"flux/tokenizer.json": func(t testing.TB) (*T5Tokenizer, error) {
			return LoadT5Tokenizer(sharedT5+"/flux", T5Options{Scores: ScoresFromJSON})
		},
		"sd3/spiece.model": func(t testing.TB) (*T5Tokenizer, error) {
			return loadSpieceOnly(t, "", T5Options{Scores: ScoresFromJSON})
		},
		"flux/spiece.model": func(t testing.TB) (*T5Tokenizer, error) {
			return loadSpieceOnly(t, "flux", T5Options{Scores: ScoresFromJSON})
		},
		"sd3/tokenizer.json exact": func(t testing.TB) (*T5Tokenizer, error) {
			return LoadT5Tokenizer(sharedT5, T5Options{Scores: ScoresExact})
		},
		"flux/tokenizer.json exact": func(t testing.TB) (*T5Tokenizer, error) {
			return LoadT5Tokenizer(sharedT5+"/flux", T5Options{Scores: ScoresExact})
		},
		"sd3/spiece.model exact": func(t testing.TB) (*T5Tokenizer, error) { return loadSpieceOnly(t, "", T5Options{Scores: ScoresExact}) },
		"flux/spiece.model exact": func(t testing.TB) (*T5Tokenizer, error) {
			return loadSpieceOnly(t, "flux", T5Options{Scores: ScoresExact})
		},
	}
)

type t5Loaded struct {
	once sync.Once
	tok  *T5Tokenizer
	err  error
}

func t5For(t testing.TB, name string) *T5Tokenizer {
	t.Helper()
	needSharedT5(t)
	v, _ := t5Once.LoadOrStore(name, &t5Loaded{})
	l := v.(*t5Loaded)
	l.once.Do(func() { l.tok, l.err = t5Kinds[name](t) })
	if l.err != nil {
		t.Fatalf("load %s: %v", name, l.err)
	}
	return l.tok
}

// loadSpieceOnly loads spiece.model (the SD3 folder's; FLUX ships the same model) from a folder
// without tokenizer.json, with the flavour's tokenizer_config.json beside it.
func loadSpieceOnly(t testing.TB, flavour string, o T5Options) (*T5Tokenizer, error) {
	dir, err := os.MkdirTemp("", "t5spiece")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	t5CopyFile(t, filepath.Join(sharedT5, "spiece.model"), filepath.Join(dir, "spiece.model"))
	t5CopyFile(t, filepath.Join(sharedT5, flavour, "tokenizer_config.json"), filepath.Join(dir, "tokenizer_config.json"))
	return LoadT5Tokenizer(dir, o)
}

func t5CopyFile(t testing.TB, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func t5ReadJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestT5ReferenceIDs(t *testing.T) {
	needSharedT5(t)
	var ref struct {
		Cases []struct {
			Text   string  `json:"text"`
			T5     []int64 `json:"t5"`
			T5Flux []int64 `json:"t5_flux"`
		} `json:"cases"`
	}
	t5ReadJSON(t, "../../shared/tokenizers/reference-ids.json", &ref)
	if len(ref.Cases) == 0 {
		t.Fatal("reference-ids.json has no cases")
	}
	for _, name := range []string{"sd3/tokenizer.json", "sd3/spiece.model", "flux/tokenizer.json", "flux/spiece.model"} {
		tok := t5For(t, name)
		for _, c := range ref.Cases {
			want := c.T5
			if c.T5Flux != nil && name[:4] == "flux" {
				want = c.T5Flux
			}
			if got := tok.Encode(c.Text); !slices.Equal(got, want) {
				t.Errorf("%s: Encode(%q)\n got %v\nwant %v", name, c.Text, got, want)
			}
		}
	}
}

type t5Case struct {
	Text      string  `json:"text"`
	SD3       []int64 `json:"sd3"`
	Flux      []int64 `json:"flux"`
	SD3Exact  []int64 `json:"sd3_exact"`
	FluxExact []int64 `json:"flux_exact"`
}

type t5Cases struct {
	Cases  []t5Case `json:"cases"`  // hand-written prompts
	Random []t5Case `json:"random"` // seeded random Unicode strings
	Padded []struct {
		Text      string  `json:"text"`
		MaxLength int     `json:"max_length"`
		SD3       []int64 `json:"sd3"`
	} `json:"padded"`
}

func loadT5Cases(t testing.TB) t5Cases {
	var c t5Cases
	t5ReadJSON(t, "testdata/t5_cases.json", &c)
	if len(c.Cases) < 150 || len(c.Random) < 500 {
		t.Fatalf("testdata/t5_cases.json: %d cases and %d random, want ≥ 150 and ≥ 500", len(c.Cases), len(c.Random))
	}
	return c
}

// TestT5Cases checks every loader against the ids of the official library (testdata/gen_t5_ids.js).
func TestT5Cases(t *testing.T) {
	cases := loadT5Cases(t)
	want := func(name string, c t5Case) []int64 {
		flux, exact := name[:4] == "flux", len(name) > 6 && name[len(name)-6:] == " exact"
		switch {
		case flux && exact && c.FluxExact != nil:
			return c.FluxExact
		case flux:
			return c.Flux
		case exact && c.SD3Exact != nil:
			return c.SD3Exact
		}
		return c.SD3
	}
	all := append(slices.Clone(cases.Cases), cases.Random...)
	for name := range t5Kinds {
		t.Run(name, func(t *testing.T) {
			tok := t5For(t, name)
			bad := 0
			for _, c := range all {
				w := want(name, c)
				if got := tok.Encode(c.Text); !slices.Equal(got, w) {
					if bad++; bad <= 10 {
						t.Errorf("Encode(%q)\n got %v\nwant %v", c.Text, got, w)
					}
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d cases differ", bad, len(all))
			}
		})
	}
}

// TestT5CasesCover makes sure the generated data still exercises what it is meant to.
func TestT5CasesCover(t *testing.T) {
	cases := loadT5Cases(t)
	var flavourDiff, exactDiff, long int
	for _, c := range cases.Cases {
		if !slices.Equal(c.SD3, c.Flux) {
			flavourDiff++
		}
		if c.SD3Exact != nil {
			exactDiff++
		}
		if len(c.SD3) > 512 {
			long++
		}
	}
	if flavourDiff == 0 || exactDiff == 0 || long == 0 {
		t.Errorf("t5_cases.json: sd3≠flux %d, exact≠serde %d, >512 ids %d: each should be > 0", flavourDiff, exactDiff, long)
	}
}

func TestT5Padded(t *testing.T) {
	cases := loadT5Cases(t)
	if len(cases.Padded) == 0 {
		t.Fatal("no padded cases")
	}
	for _, name := range []string{"sd3/tokenizer.json", "sd3/spiece.model"} {
		tok := t5For(t, name)
		for _, c := range cases.Padded {
			if got := tok.EncodePadded(c.Text, c.MaxLength); !slices.Equal(got, c.SD3) {
				t.Errorf("%s: EncodePadded(%.40q, %d)\n got %v\nwant %v", name, c.Text, c.MaxLength, got, c.SD3)
			}
		}
	}
}

func TestT5PaddedLengths(t *testing.T) {
	tok := t5For(t, "sd3/tokenizer.json")
	long := ""
	for i := 0; i < 300; i++ {
		long += "red fox "
	}
	full := tok.Encode(long)
	if len(full) <= 512 {
		t.Fatalf("long prompt has only %d ids", len(full))
	}
	for _, n := range []int{1, 2, 4, 77, 256, 512, 0, -1} {
		for _, text := range []string{"", "a photo of a cat", long} {
			got := tok.EncodePadded(text, n)
			want := n
			if n <= 0 {
				want = tok.MaxLength()
			}
			if len(got) != want {
				t.Fatalf("EncodePadded(%.20q, %d): %d ids, want %d", text, n, len(got), want)
			}
			content := tok.Encode(text)
			content = content[:len(content)-1]
			k := min(len(content), want-1)
			exp := append(append(slices.Clone(content[:k]), 1), make([]int64, want-1-k)...)
			if !slices.Equal(got, exp) {
				t.Errorf("EncodePadded(%.20q, %d) = %v…, want first %d content ids + EOS + pad 0", text, n, got[:min(8, len(got))], k)
			}
		}
	}
	if tok.MaxLength() != 512 || tok.PadID() != 0 || tok.VocabSize() != 32100 {
		t.Errorf("MaxLength %d PadID %d VocabSize %d, want 512 0 32100", tok.MaxLength(), tok.PadID(), tok.VocabSize())
	}
}

func TestT5InvalidUTF8(t *testing.T) {
	tok := t5For(t, "sd3/tokenizer.json")
	for _, c := range [][2]string{
		{"a\xffb", "a\uFFFDb"},
		{"\xff\xfe", "\uFFFD\uFFFD"},
		{"caf\xc3", "caf\uFFFD"},
		{"\xe2\x96", "\uFFFD\uFFFD"},
		{"x\xed\xa0\x80y", "x\uFFFD\uFFFD\uFFFDy"}, // UTF-16 surrogate encoded in UTF-8
	} {
		got, want := tok.Encode(c[0]), tok.Encode(c[1])
		if !slices.Equal(got, want) {
			t.Errorf("Encode(%q) = %v, want Encode(%q) = %v", c[0], got, c[1], want)
		}
	}
	// nmt_nfkc maps U+FFFD to a space.
	if got, want := tok.Encode("a\xffb"), tok.Encode("a b"); !slices.Equal(got, want) {
		t.Errorf("Encode(%q) = %v, want %v", "a\xffb", got, want)
	}
}

func TestT5Concurrent(t *testing.T) {
	tok := t5For(t, "sd3/tokenizer.json")
	cases := loadT5Cases(t)
	want := make([][]int64, len(cases.Cases))
	for i, c := range cases.Cases {
		want[i] = c.SD3
	}
	tok.resetCache()
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for r := 0; r < 3; r++ {
				for k := range cases.Cases {
					i := (k*7 + g*31) % len(cases.Cases)
					if got := tok.Encode(cases.Cases[i].Text); !slices.Equal(got, want[i]) {
						errs <- fmt.Sprintf("goroutine %d: Encode(%q) = %v, want %v", g, cases.Cases[i].Text, got, want[i])
						return
					}
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestT5CacheBounded checks the piece cache stops growing and stays correct when full.
func TestT5CacheBounded(t *testing.T) {
	tok := t5For(t, "sd3/tokenizer.json")
	tok.resetCache()
	defer tok.resetCache()
	for i := 0; i < t5PieceCacheMax+500; i++ {
		tok.Encode(fmt.Sprintf("w%dq", i))
	}
	tok.model.cache.mu.RLock()
	n := len(tok.model.cache.m)
	tok.model.cache.mu.RUnlock()
	if n > t5PieceCacheMax {
		t.Errorf("cache holds %d entries, limit %d", n, t5PieceCacheMax)
	}
	if got, want := tok.Encode("a photo of a cat"), []int64{3, 9, 1202, 13, 3, 9, 1712, 1}; !slices.Equal(got, want) {
		t.Errorf("with a full cache: %v, want %v", got, want)
	}
}

// TestT5UnkPenalty pins HF's K_UNK_PENALTY (10): "a" has no piece, so "ab" is either the piece "ab"
// (score −50 = min) or <unk>(−50−10) + "b"; the library flips between b = 9.5 and 10.5.
func TestT5UnkPenalty(t *testing.T) {
	for _, c := range []struct {
		b    float64
		want []int64
	}{{9.5, []int64{1}}, {10.5, []int64{0, 2}}} {
		u := newT5Unigram([]string{"<unk>", "ab", "b"}, []float64{0, -50, c.b}, 0)
		if got := u.encode(nil, "ab"); !slices.Equal(got, c.want) {
			t.Errorf("score(b) = %v: %v, want %v", c.b, got, c.want)
		}
	}
}
