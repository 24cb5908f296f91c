package pipeline

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rflowrt/rflow/scheduler"
	"github.com/rflowrt/rflow/textenc"
)

// Tokenizer folder names of the diffusers layout.
const (
	tokCLIP  = "tokenizer"   // CLIP-L (SD3 and FLUX)
	tokCLIP2 = "tokenizer_2" // SD3: CLIP-G; FLUX: T5
	tokT5SD3 = "tokenizer_3" // SD3's T5
)

// clipFastClass is the class a model_index.json names for the fast CLIP tokenizer; anything else
// (CLIPTokenizer in the SD3 and FLUX repositories) is what diffusers loads as the slow one.
const clipFastClass = "CLIPTokenizerFast"

// tokenizerSpec is one tokenizer folder a family's pipeline loads.
type tokenizerSpec struct {
	name string
	kind tokenizerKind
}

// familyTokenizers lists the tokenizer folders the family's pipeline loads; SD3's T5 tokenizer only
// when withT5.
func familyTokenizers(f scheduler.Family, withT5 bool) []tokenizerSpec {
	if f == scheduler.FamilyFLUX {
		return []tokenizerSpec{{tokCLIP, tokenizerCLIP}, {tokCLIP2, tokenizerT5}}
	}
	specs := []tokenizerSpec{{tokCLIP, tokenizerCLIP}, {tokCLIP2, tokenizerCLIP}}
	if withT5 {
		specs = append(specs, tokenizerSpec{tokT5SD3, tokenizerT5})
	}
	return specs
}

// loadTokenizer loads one tokenizer folder the way the pipeline runs it. class is the tokenizer class
// model_index.json names for it: diffusers loads that class, so CLIP follows the slow CLIPTokenizer's
// rules unless the class is CLIPTokenizerFast. T5 follows transformers' T5TokenizerFast either way
// (textenc.ScoresAsTransformers; the slow and fast T5 differ only on exact score ties).
func loadTokenizer(dir string, kind tokenizerKind, class string) (textenc.Tokenizer, error) {
	if kind == tokenizerT5 {
		t, err := textenc.LoadT5Tokenizer(dir, textenc.T5Options{})
		if err != nil {
			return nil, err
		}
		return t, nil
	}
	t, err := textenc.LoadCLIPTokenizer(dir, textenc.CLIPOptions{SlowCompat: class != clipFastClass})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// LoadModelTokenizer loads the tokenizer folder name ("tokenizer", "tokenizer_2" or "tokenizer_3") of
// the model folder dir exactly as Generate does: its kind (CLIP or T5) from the family in
// model_index.json, and for CLIP the slow or fast rules after the class model_index.json names. Only
// model_index.json and the tokenizer folder are read.
func LoadModelTokenizer(dir, name string) (textenc.Tokenizer, error) {
	mi, err := ReadModelIndex(dir)
	if err != nil {
		return nil, err
	}
	for _, s := range familyTokenizers(mi.Family, true) {
		if s.name != name {
			continue
		}
		t, err := loadTokenizer(filepath.Join(dir, name), s.kind, mi.Components[name][1])
		if err != nil {
			return nil, fmt.Errorf("pipeline: %s: %w", name, err)
		}
		return t, nil
	}
	return nil, fmt.Errorf("pipeline: a %s model has no tokenizer folder %q", mi.Family, name)
}

// tokenizerLoadProblem turns a tokenizer that does not load into a problem about the file the error
// names (the folder when it names none), with paths relative to the model folder.
func (s *scanner) tokenizerLoadProblem(name, dir string, err error) {
	file := name
	msg := err.Error()
	for _, f := range []string{"tokenizer.json", "vocab.json", "merges.txt", "spiece.model", "tokenizer_config.json", "special_tokens_map.json"} {
		if p := filepath.Join(dir, f); strings.Contains(msg, p) {
			if _, statErr := os.Stat(p); statErr == nil {
				file = name + "/" + f
				break
			}
		}
	}
	msg = strings.ReplaceAll(msg, s.dir+string(filepath.Separator), "")
	s.problem(name, file, "the tokenizer does not load: %s", msg)
}
