package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/rflowrt/rflow/pipeline"
	"github.com/rflowrt/rflow/scheduler"
	"github.com/rflowrt/rflow/textenc"
)

// tokenizerKinds maps --tokenizer to the model-folder subdirectory per family.
var tokenizerKinds = map[string]map[scheduler.Family]string{
	"clip":   {scheduler.FamilySD3: "tokenizer", scheduler.FamilyFLUX: "tokenizer"},
	"clip-g": {scheduler.FamilySD3: "tokenizer_2"},
	"t5":     {scheduler.FamilySD3: "tokenizer_3", scheduler.FamilyFLUX: "tokenizer_2"},
}

func runTokenize(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := pflag.NewFlagSet("tokenize", pflag.ContinueOnError)
	kind := fs.String("tokenizer", "", "clip, clip-g or t5")
	model := fs.StringP("model", "m", "", "model folder or embedded demo: the tokenizer comes from its tokenizer/, tokenizer_2/ or tokenizer_3/")
	dir := fs.String("dir", "", "a tokenizer folder (tokenizer.json, vocab.json+merges.txt or spiece.model); its configs decide padding")
	text := fs.String("text", "", "text to tokenize")
	pad := fs.Bool("pad", false, "truncate and pad to the encoder length (CLIP: 77; T5: 256 for SD3, 512 for FLUX and plain folders)")
	maxLen := fs.Int("max-length", 0, "encoder length for --pad (T5 --max-sequence-length)")
	slow := fs.Bool("slow", false, "CLIP with --dir: reproduce diffusers' slow CLIPTokenizer without ftfy (with --model, model_index.json's class decides, as in txt2img)")
	asJSON := fs.Bool("json", false, `print {"ids":[…]}`)
	if err := parseFlags(fs, args, out); err != nil {
		return err
	}
	usage := func(format string, a ...any) error { return &usageError{fs: fs, err: fmt.Errorf(format, a...)} }
	if _, ok := tokenizerKinds[*kind]; !ok {
		return usage("--tokenizer must be clip, clip-g or t5, got %q", *kind)
	}
	if (*model == "") == (*dir == "") {
		return usage("give exactly one of --model DIR and --dir TOKENIZER_DIR")
	}
	if *maxLen < 0 {
		return usage("--max-length must be positive")
	}
	if *slow && *model != "" {
		return usage("--slow applies to --dir; with --model the tokenizer class in model_index.json decides, as in txt2img")
	}
	length := *maxLen
	var tok textenc.Tokenizer
	var err error
	if *model != "" {
		if *model, err = modelFolder(*model); err != nil {
			return err
		}
		mi, err := pipeline.ReadModelIndex(*model)
		if err != nil {
			return err
		}
		sub, ok := tokenizerKinds[*kind][mi.Family]
		if !ok {
			return fmt.Errorf("a %s model has no %s tokenizer", mi.Family, *kind)
		}
		// The pipeline's own loader: the same files and the same slow/fast rules as txt2img.
		if tok, err = pipeline.LoadModelTokenizer(*model, sub); err != nil {
			return err
		}
		if *kind == "t5" && length == 0 {
			p, _ := scheduler.LookupPreset(map[scheduler.Family]string{scheduler.FamilySD3: "sd3", scheduler.FamilyFLUX: "flux-dev"}[mi.Family])
			length = p.MaxSequenceLength
		}
	}
	switch {
	case tok != nil:
	case *kind == "t5":
		tok, err = textenc.LoadT5Tokenizer(*dir, textenc.T5Options{})
	default:
		tok, err = textenc.LoadCLIPTokenizer(*dir, textenc.CLIPOptions{SlowCompat: *slow})
	}
	if err != nil {
		return err
	}
	ids := tok.Encode(*text)
	if *pad {
		ids = tok.EncodePadded(*text, length)
	}
	if *asJSON {
		return json.NewEncoder(out).Encode(struct {
			IDs []int64 `json:"ids"`
		}{ids})
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
	}
	fmt.Fprintf(out, "%d ids: %s\n", len(ids), strings.Join(s, " "))
	return nil
}
