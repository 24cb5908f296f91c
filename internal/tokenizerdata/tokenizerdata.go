// Package tokenizerdata embeds the tokenizer files SD3 and FLUX use (CLIP BPE vocabulary and merges, the
// T5 v1.1 SentencePiece model, and the per-repo tokenizer configs), so a checkpoint that carries no
// tokenizer (a single .safetensors file) needs no other download. The files are byte-identical copies
// of the Hugging Face Hub artifacts; files/SOURCES.md gives their provenance, hashes and licenses.
package tokenizerdata

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

//go:embed files
var files embed.FS

// Kind is a tokenizer folder as a diffusers repository lays it out.
type Kind string

// The tokenizer folders of SD3 (tokenizer, tokenizer_2, tokenizer_3) and FLUX (tokenizer, tokenizer_2).
const (
	CLIPL  Kind = "clip-l"  // SD3 tokenizer/, FLUX tokenizer/ (pad <|endoftext|>)
	CLIPG  Kind = "clip-g"  // SD3 tokenizer_2/ (pad "!" = id 0)
	T5SD3  Kind = "t5-sd3"  // SD3 tokenizer_3/
	T5Flux Kind = "t5-flux" // FLUX tokenizer_2/
)

// layout lists each kind's files: folder file name → embedded path.
var layout = map[Kind][][2]string{
	CLIPL: {{"merges.txt", "clip/merges.txt"}, {"special_tokens_map.json", "clip/special_tokens_map.json"},
		{"tokenizer_config.json", "clip/tokenizer_config.json"}, {"vocab.json", "clip/vocab.json"}},
	CLIPG: {{"merges.txt", "clip/merges.txt"}, {"special_tokens_map.json", "clip/clip_g/special_tokens_map.json"},
		{"tokenizer_config.json", "clip/clip_g/tokenizer_config.json"}, {"vocab.json", "clip/vocab.json"}},
	T5SD3: {{"special_tokens_map.json", "t5/special_tokens_map.json"}, {"spiece.model", "t5/spiece.model"},
		{"tokenizer_config.json", "t5/tokenizer_config.json"}},
	T5Flux: {{"special_tokens_map.json", "t5/flux/special_tokens_map.json"}, {"spiece.model", "t5/spiece.model"},
		{"tokenizer_config.json", "t5/flux/tokenizer_config.json"}},
}

// WriteFolder writes the tokenizer folder of the given kind into dir (created if needed).
func WriteFolder(dir string, k Kind) error {
	entries, ok := layout[k]
	if !ok {
		return fmt.Errorf("tokenizerdata: unknown tokenizer kind %q", k)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, e := range entries {
		data, err := fs.ReadFile(files, path.Join("files", e[1]))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, e[0]), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
