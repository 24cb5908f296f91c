package demo

import (
	"regexp"
	"strings"
	"sync"

	"golang.org/x/text/unicode/norm"
)

// Kinds of vocabulary words.
const (
	KindNone       = iota // known but carries no attribute (articles, "and", …)
	KindShape             // Index into Shapes
	KindColor             // Index into Colors
	KindOn                // "on": colours after it are background colours
	KindBackground        // "background": a colour right before it is a background colour
)

// Word is one whole-word vocabulary entry.
type Word struct {
	Text  string
	Kind  int
	Index int
}

// Words is the demo vocabulary's whole words, in the order their merge chains are built.
var Words = buildWords()

func buildWords() []Word {
	var ws []Word
	add := func(kind, index int, texts ...string) {
		for _, t := range texts {
			ws = append(ws, Word{t, kind, index})
		}
	}
	synonyms := [][]string{
		{"circle", "circles", "disc", "discs", "disk", "disks", "dot", "dots"},
		{"square", "squares", "box", "boxes"},
		{"triangle", "triangles"},
		{"star", "stars"},
		{"ring", "rings", "donut", "donuts", "doughnut", "doughnuts"},
		{"stripes", "stripe", "striped", "lines"},
	}
	for s, texts := range synonyms {
		add(KindShape, s, texts...)
	}
	for c, name := range Colors {
		add(KindColor, c, name)
	}
	add(KindColor, 5, "violet")
	add(KindOn, 0, "on")
	add(KindBackground, 0, "background")
	add(KindNone, 0, "a", "an", "the", "and", "with", "of", "in")
	return ws
}

// Token feature layout: one row per vocabulary id in the encoder's table.
const (
	FeatShape      = 0  // 6 columns: shape one-hot
	FeatColor      = 6  // 8 columns: colour one-hot
	FeatOn         = 14 // the word "on"
	FeatBackground = 15 // the word "background"
	TokenFeatures  = 16
)

// Special tokens of the demo CLIP vocabulary (the last two ids, as in CLIP).
const (
	BOS = "<|startoftext|>"
	EOS = "<|endoftext|>"
	eow = "</w>"
)

// ByteSymbols is GPT-2/CLIP's bytes_to_unicode table: the vocabulary spelling of each byte.
var ByteSymbols = buildByteSymbols()

// byteOrder lists the bytes in bytes_to_unicode's order (printable ranges first).
var byteOrder []byte

func buildByteSymbols() [256]string {
	var sym [256]string
	var printable []int
	for r := '!'; r <= '~'; r++ {
		printable = append(printable, int(r))
	}
	for r := 0xA1; r <= 0xAC; r++ {
		printable = append(printable, r)
	}
	for r := 0xAE; r <= 0xFF; r++ {
		printable = append(printable, r)
	}
	seen := map[int]bool{}
	for _, b := range printable {
		sym[b] = string(rune(b))
		seen[b] = true
		byteOrder = append(byteOrder, byte(b))
	}
	n := 0
	for b := range 256 {
		if !seen[b] {
			sym[b] = string(rune(256 + n))
			n++
			byteOrder = append(byteOrder, byte(b))
		}
	}
	return sym
}

// Tokenizer is the demo vocabulary: merges and the id of every token, built deterministically.
type Tokenizer struct {
	Vocab  []string // id → token
	Merges [][2]string
	ranks  map[[2]string]int
	ids    map[string]int
}

var (
	tokOnce sync.Once
	tok     *Tokenizer
)

// Vocabulary returns the demo tokenizer, built on first use: byte tokens (256, then 256 with </w>)
// in CLIP's order, then each merge's result in merge order, then BOS and EOS. The merges give every
// Word a full chain: each word's chain is extended until BPE with all merges so far yields the
// single token word</w>, and later merges (higher rank) never change an earlier word.
func Vocabulary() *Tokenizer {
	tokOnce.Do(func() {
		t := &Tokenizer{ranks: map[[2]string]int{}, ids: map[string]int{}}
		for _, b := range byteOrder {
			t.add(ByteSymbols[b])
		}
		for _, b := range byteOrder {
			t.add(ByteSymbols[b] + eow)
		}
		for _, w := range Words {
			for {
				s := t.bpe(w.Text)
				if len(s) == 1 {
					break
				}
				m := [2]string{s[0], s[1]}
				t.ranks[m] = len(t.Merges)
				t.Merges = append(t.Merges, m)
				t.add(s[0] + s[1])
			}
		}
		t.add(BOS)
		t.add(EOS)
		tok = t
	})
	return tok
}

func (t *Tokenizer) add(s string) {
	if _, ok := t.ids[s]; !ok {
		t.ids[s] = len(t.Vocab)
		t.Vocab = append(t.Vocab, s)
	}
}

// ID returns a token's id, or -1.
func (t *Tokenizer) ID(tok string) int {
	if id, ok := t.ids[tok]; ok {
		return id
	}
	return -1
}

// bpe splits one pre-token into tokens with CLIP's BPE: byte symbols, the last with </w>, then the
// lowest-ranked adjacent pair merged (everywhere) until none has a rank.
func (t *Tokenizer) bpe(word string) []string {
	s := make([]string, len(word))
	for i := range len(word) {
		s[i] = ByteSymbols[word[i]]
	}
	s[len(s)-1] += eow
	for len(s) > 1 {
		best, rank := [2]string{}, -1
		for i := 0; i+1 < len(s); i++ {
			if r, ok := t.ranks[[2]string{s[i], s[i+1]}]; ok && (rank < 0 || r < rank) {
				best, rank = [2]string{s[i], s[i+1]}, r
			}
		}
		if rank < 0 {
			break
		}
		var next []string
		for i := 0; i < len(s); i++ {
			if i+1 < len(s) && s[i] == best[0] && s[i+1] == best[1] {
				next = append(next, s[i]+s[i+1])
				i++
			} else {
				next = append(next, s[i])
			}
		}
		s = next
	}
	return s
}

// clipPreTokens is the CLIP pre-tokenizer pattern (without the special-token literals).
var clipPreTokens = regexp.MustCompile(`'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+`)

// MaxContent is the number of content tokens that fit the 77-token CLIP window (BOS … EOS).
const MaxContent = 75

// Tokens returns the demo CLIP tokens of a prompt (no BOS/EOS), truncated as the encoder sees them.
// It mirrors textenc's CLIP tokenizer over the demo files exactly for prompts whose letters are ASCII
// (it lowercases with Go's rules and does not split off special-token literals).
func (t *Tokenizer) Tokens(prompt string) []string {
	text := strings.ToLower(norm.NFC.String(prompt))
	var out []string
	for _, p := range clipPreTokens.FindAllString(text, -1) {
		out = append(out, t.bpe(p)...)
	}
	if len(out) > MaxContent {
		out = out[:MaxContent]
	}
	return out
}

// Lookup returns the vocabulary word a token spells (word</w>), if any.
func Lookup(token string) (Word, bool) {
	text, ok := strings.CutSuffix(token, eow)
	if !ok {
		return Word{}, false
	}
	for _, w := range Words {
		if w.Text == text {
			return w, true
		}
	}
	return Word{}, false
}

// Attributes applies the encoder's rule to a prompt: every shape word counts; a colour word is a
// background colour when the word "on" came before it anywhere in the prompt or the next token is
// "background", otherwise a foreground colour. Results are indices in prompt order.
func Attributes(prompt string) (shapes, fgs, bgs []int) {
	toks := Vocabulary().Tokens(prompt)
	on := false
	for i, tk := range toks {
		w, ok := Lookup(tk)
		if !ok {
			continue
		}
		switch w.Kind {
		case KindOn:
			on = true
		case KindShape:
			shapes = append(shapes, w.Index)
		case KindColor:
			if next, ok := Lookup(at(toks, i+1)); on || ok && next.Kind == KindBackground {
				bgs = append(bgs, w.Index)
			} else {
				fgs = append(fgs, w.Index)
			}
		}
	}
	return shapes, fgs, bgs
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return ""
}
