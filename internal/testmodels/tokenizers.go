package testmodels

import (
	"fmt"
	"os"
	"path/filepath"
)

// tokFile is one file of a tokenizer folder and its source path under shared/tokenizers.
type tokFile struct{ name, from string }

// tokenizerDir is one tokenizer subfolder: the real files to copy, or the generated stand-ins.
type tokenizerDir struct {
	dir    string
	shared []tokFile
	gen    func() map[string][]byte
}

// CLIP-L's real folder (SD3 tokenizer, FLUX tokenizer) and CLIP-G's (SD3 tokenizer_2: the same vocabulary
// and merges, pad "!").
var (
	clipLFiles = []tokFile{{"merges.txt", "clip/merges.txt"}, {"special_tokens_map.json", "clip/special_tokens_map.json"},
		{"tokenizer.json", "clip/tokenizer.json"}, {"tokenizer_config.json", "clip/tokenizer_config.json"}, {"vocab.json", "clip/vocab.json"}}
	clipGFiles = []tokFile{{"merges.txt", "clip/merges.txt"}, {"special_tokens_map.json", "clip/clip_g/special_tokens_map.json"},
		{"tokenizer.json", "clip/tokenizer.json"}, {"tokenizer_config.json", "clip/clip_g/tokenizer_config.json"}, {"vocab.json", "clip/vocab.json"}}
	t5SD3Files = []tokFile{{"special_tokens_map.json", "t5/special_tokens_map.json"}, {"spiece.model", "t5/spiece.model"},
		{"tokenizer.json", "t5/tokenizer.json"}, {"tokenizer_config.json", "t5/tokenizer_config.json"}}
	t5FluxFiles = []tokFile{{"special_tokens_map.json", "t5/flux/special_tokens_map.json"}, {"spiece.model", "t5/spiece.model"},
		{"tokenizer.json", "t5/flux/tokenizer.json"}, {"tokenizer_config.json", "t5/flux/tokenizer_config.json"}}
)

func clipGen(pad string) func() map[string][]byte {
	return func() map[string][]byte {
		vocab, merges := generatedCLIP()
		config, specials := clipConfigFiles(pad)
		return map[string][]byte{"vocab.json": vocab, "merges.txt": merges, "tokenizer_config.json": config,
			"special_tokens_map.json": specials}
	}
}

func t5Gen(prepend string) func() map[string][]byte {
	return func() map[string][]byte {
		tok, config, specials := generatedT5(prepend)
		return map[string][]byte{"tokenizer.json": tok, "tokenizer_config.json": config, "special_tokens_map.json": specials}
	}
}

// tokenizerDirs lists the tokenizer subfolders of a kind.
func tokenizerDirs(k Kind) []tokenizerDir {
	clipL := tokenizerDir{"tokenizer", clipLFiles, clipGen(clipEOSToken)}
	if k.IsFlux() {
		return []tokenizerDir{clipL, {"tokenizer_2", t5FluxFiles, t5Gen("first")}}
	}
	dirs := []tokenizerDir{clipL, {"tokenizer_2", clipGFiles, clipGen("!")}}
	if k.HasT5() {
		dirs = append(dirs, tokenizerDir{"tokenizer_3", t5SD3Files, t5Gen("always")})
	}
	return dirs
}

// missingShared returns the first file Write would copy that dir lacks, or "".
func missingShared(dir string) string {
	for _, files := range [][]tokFile{clipLFiles, clipGFiles, t5SD3Files, t5FluxFiles} {
		for _, f := range files {
			if st, err := os.Stat(filepath.Join(dir, f.from)); err != nil || !st.Mode().IsRegular() {
				return f.from
			}
		}
	}
	return ""
}

// findSharedTokenizers looks for shared/tokenizers beside the module root (the nearest parent of the
// working directory with a go.mod); "" when there is none or it is incomplete.
func findSharedTokenizers() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			cand := filepath.Join(filepath.Dir(dir), "shared", "tokenizers")
			if missingShared(cand) == "" {
				return cand
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// tokenizerSource resolves where the tokenizer files come from: an absolute shared/tokenizers path,
// or "" for the generated vocabulary.
func (o Options) tokenizerSource() (string, error) {
	switch {
	case o.GeneratedVocab:
		return "", nil
	case o.SharedDir == "":
		return findSharedTokenizers(), nil
	}
	if m := missingShared(o.SharedDir); m != "" {
		return "", fmt.Errorf("testmodels: shared tokenizers %s: %s is missing", o.SharedDir, m)
	}
	return filepath.Abs(o.SharedDir)
}

// writeTokenizers writes the tokenizer subfolders of k under dir, copied from src or generated.
func writeTokenizers(dir string, k Kind, src string) error {
	for _, td := range tokenizerDirs(k) {
		out := filepath.Join(dir, td.dir)
		if err := resetDir(dir, td.dir); err != nil {
			return err
		}
		if src == "" {
			for name, data := range td.gen() {
				if err := os.WriteFile(filepath.Join(out, name), data, 0o644); err != nil {
					return err
				}
			}
			continue
		}
		for _, f := range td.shared {
			data, err := os.ReadFile(filepath.Join(src, f.from))
			if err != nil {
				return fmt.Errorf("testmodels: %w", err)
			}
			if err := os.WriteFile(filepath.Join(out, f.name), data, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}
