package imagefile

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// TemplateVars are the values an output-name template can refer to.
type TemplateVars struct {
	Seed    uint64
	Index   int // image index within the run, from 0
	Prompt  string
	Steps   int
	Sampler string
	Width   int
	Height  int
	Model   string
	// Step is the denoising step of a preview image (from 1); 0 means the name is not a preview's,
	// and {step} is then an unknown placeholder.
	Step int
}

// templateNames lists the placeholders in the order error messages show them ({step} only where
// TemplateVars.Step is set).
var templateNames = []string{"seed", "index", "prompt", "steps", "sampler", "width", "height", "model", "step"}

func (v TemplateVars) lookup(name string) (string, bool) {
	switch name {
	case "step":
		if v.Step <= 0 {
			return "", false
		}
		return strconv.Itoa(v.Step), true
	case "seed":
		return strconv.FormatUint(v.Seed, 10), true
	case "index":
		return strconv.Itoa(v.Index), true
	case "prompt":
		return Slug(v.Prompt), true
	case "steps":
		return strconv.Itoa(v.Steps), true
	case "sampler":
		return safeComponent(v.Sampler), true
	case "width":
		return strconv.Itoa(v.Width), true
	case "height":
		return strconv.Itoa(v.Height), true
	case "model":
		return safeComponent(v.Model), true
	}
	return "", false
}

// ExpandTemplate expands the placeholders of an output-name template: {seed}, {index},
// {prompt} (the prompt's [Slug]), {steps}, {sampler}, {width}, {height}, {model} and, for previews
// (v.Step > 0), {step}. "{{" and "}}" stand for literal braces; a lone "}" is kept. Sampler and
// model names have path separators and characters that Windows forbids in file names replaced by
// '_', so a value never adds a directory level; the template's own text may. An unknown or unclosed
// placeholder is an error that lists the valid names, and so is an empty template.
func ExpandTemplate(tmpl string, v TemplateVars) (string, error) {
	return expand(tmpl, v.Step > 0, v.lookup)
}

// TemplateFields returns the placeholder names tmpl uses, in order, or the error ExpandTemplate
// would give for its syntax; preview says whether {step} is allowed. A caller can check a
// template before it knows every value.
func TemplateFields(tmpl string, preview bool) ([]string, error) {
	var names []string
	probe := TemplateVars{}
	if preview {
		probe.Step = 1
	}
	_, err := expand(tmpl, preview, func(name string) (string, bool) {
		_, ok := probe.lookup(name)
		if ok {
			names = append(names, name)
		}
		return "", ok
	})
	return names, err
}

func expand(tmpl string, preview bool, lookup func(string) (string, bool)) (string, error) {
	if tmpl == "" {
		return "", errors.New("imagefile: empty output name template")
	}
	var b strings.Builder
	for i := 0; i < len(tmpl); {
		c := tmpl[i]
		switch {
		case c == '{' && strings.HasPrefix(tmpl[i:], "{{"), c == '}' && strings.HasPrefix(tmpl[i:], "}}"):
			b.WriteByte(c)
			i += 2
		case c == '{':
			end := strings.IndexByte(tmpl[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("imagefile: template %q: unclosed '{' at byte %d (write {{ for a literal brace)", tmpl, i)
			}
			name := tmpl[i+1 : i+end]
			val, ok := lookup(name)
			if !ok {
				return "", fmt.Errorf("imagefile: template %q: unknown placeholder {%s}; valid: %s (write {{ for a literal brace)",
					tmpl, name, validPlaceholders(preview))
			}
			b.WriteString(val)
			i += end + 1
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), nil
}

func validPlaceholders(preview bool) string {
	var names []string
	for _, n := range templateNames {
		if n != "step" || preview {
			names = append(names, "{"+n+"}")
		}
	}
	return strings.Join(names, ", ")
}

// safeComponent makes a value safe as part of one file-name component: '/', '\\', control
// characters and the characters Windows forbids (:*?"<>|) become '_', and a value of only dots
// ("." or "..") becomes underscores.
func safeComponent(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(`/\:*?"<>|`, r) {
			return '_'
		}
		return r
	}, valid(s))
	if s != "" && strings.Trim(s, ".") == "" {
		s = strings.Repeat("_", len(s))
	}
	return s
}

// slugMax is the most characters (runes) Slug returns.
const slugMax = 48

// Slug turns a prompt into a file-name-safe slug: letters and digits of any script are kept (letters
// lower-cased), with the combining marks that follow them (so "हिन्दी" keeps its vowel signs);
// every run of other characters becomes one '-', leading and trailing '-' are dropped, and the
// result is cut to at most 48 characters (again without a trailing '-'). A prompt with no letter or
// digit (say only emoji or punctuation) gives "image".
func Slug(s string) string {
	b := make([]rune, 0, slugMax+1)
	gap := false
	for _, r := range valid(s) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			r = unicode.ToLower(r)
		case unicode.IsMark(r) && !gap && len(b) > 0:
		default:
			gap = true
			continue
		}
		if gap && len(b) > 0 {
			b = append(b, '-')
		}
		gap = false
		b = append(b, r)
		if len(b) >= slugMax {
			break
		}
	}
	if len(b) > slugMax {
		b = b[:slugMax]
	}
	out := strings.TrimRight(string(b), "-")
	if out == "" {
		return "image"
	}
	return out
}
