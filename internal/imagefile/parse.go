package imagefile

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// reParam is A1111's re_param (infotext_utils.py) with Python's Unicode \w and \s spelled out,
// since Go's are ASCII-only:
//
//	\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)
var reParam = func() *regexp.Regexp {
	const w = `[\p{L}\p{N}_]`
	const s = `[\s\v\x{1c}-\x{1f}\x{85}\p{Z}]`
	return regexp.MustCompile(s + `*(` + w + `[\p{L}\p{N}_ \-/]+):` + s +
		`*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)`)
}()

var reSize = regexp.MustCompile(`^(\d+)x(\d+)$`)

// ParseText parses an A1111 "parameters" text the way A1111's parse_generation_parameters
// does: the last line holds the parameters if A1111's regex finds at least three "Key: value"
// pairs in it, and the lines before are the prompt, up to a line starting with
// "Negative prompt:", and the negative prompt. Quoted values are JSON-decoded.
//
// It inverts [Params.Text]: ParseText(p.Text()) gives p back except where A1111's format itself
// loses information: whitespace around the whole text, a prompt line starting with
// "Negative prompt:", a value starting with whitespace, and a value starting with '"' that
// holds no ',', ':' or newline (A1111's quote leaves it bare and its parser then unquotes it).
// Unlike A1111 it keeps the whitespace at the ends of prompt lines.
// Keys Params has no field for go to Extra, in order.
//
// A text without a parameters line parses as a prompt alone, without error, as in A1111. A
// value that does not parse for its field (e.g. "Steps: many") is an error; the other fields
// are still filled in.
func ParseText(s string) (Params, error) {
	var p Params
	lines := strings.Split(pyStrip(s), "\n")
	last := lines[len(lines)-1]
	lines = lines[:len(lines)-1]
	found := reParam.FindAllStringSubmatch(last, -1)
	if len(found) < 3 {
		lines = append(lines, last)
		found = nil
	}
	p.Prompt, p.NegativePrompt = splitPrompts(lines)
	var errs []error
	for _, m := range found {
		if err := p.set(m[1], unquote(m[2])); err != nil {
			errs = append(errs, fmt.Errorf("%q: %w", m[1], err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return p, fmt.Errorf("imagefile: parse parameters: %w", err)
	}
	return p, nil
}

// splitPrompts splits the lines before the parameters line into prompt and negative prompt.
func splitPrompts(lines []string) (prompt, negative string) {
	var pos, neg []string
	inNeg := false
	for _, line := range lines {
		if rest, ok := strings.CutPrefix(line, negativePrefix); ok && !inNeg {
			inNeg = true
			line = strings.TrimPrefix(rest, " ")
		}
		if inNeg {
			neg = append(neg, line)
		} else {
			pos = append(pos, line)
		}
	}
	return strings.Join(pos, "\n"), strings.Join(neg, "\n")
}

// unquote is A1111's unquote: a value in double quotes is JSON-decoded, falling back to the
// raw text if that fails.
func unquote(v string) string {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return v
	}
	var s string
	if err := json.Unmarshal([]byte(v), &s); err != nil {
		return v
	}
	return s
}

// set stores one parsed "key: value" pair.
func (p *Params) set(key, v string) error {
	var err error
	switch key {
	case keySteps:
		p.Steps, err = strconv.Atoi(v)
	case keySampler:
		p.Sampler = v
	case keySchedule:
		p.ScheduleType = v
	case keyCFG:
		p.CFGScale, err = strconv.ParseFloat(v, 64)
	case keyDistilled:
		p.DistilledCFGScale, err = strconv.ParseFloat(v, 64)
	case keySeed:
		p.Seed, err = strconv.ParseUint(v, 10, 64)
	case keySize:
		m := reSize.FindStringSubmatch(v)
		if m == nil {
			return fmt.Errorf("size %q is not WIDTHxHEIGHT", v)
		}
		p.Width, err = strconv.Atoi(m[1])
		if err == nil {
			p.Height, err = strconv.Atoi(m[2])
		}
	case keyModel:
		p.Model = v
	case keyDenoise:
		p.DenoisingStrength, err = strconv.ParseFloat(v, 64)
	case keyClipSkip:
		p.ClipSkip, err = strconv.Atoi(v)
	case keyRNG:
		p.RNG = v
	case keyVersion:
		p.Version = v
	default:
		p.Extra = append(p.Extra, KV{key, v})
	}
	return err
}
