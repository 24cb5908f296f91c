package pipeline

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// ManifestItem is one image of a batch manifest, expanded: a stable ID, its index in the manifest's
// item list (which decides its shard) and the settings it overrides. Zero numeric settings and empty
// names take the batch defaults (and, below them, the model's).
type ManifestItem struct {
	ID    string
	Index int
	// Prompt and NegativePrompt are the texts; Seed the item's seed (always set after expansion).
	Prompt, NegativePrompt string
	Seed                   uint64
	Steps, Width, Height   int
	CFGScale, Guidance     float64
	FlowShift              float64
	Sampler, Scheduler     string
}

// manifestEntry is one JSONL line; the names follow rflow txt2img's flags.
type manifestEntry struct {
	ID             string   `json:"id"`
	Count          *int     `json:"count"`
	Prompt         *string  `json:"prompt"`
	NegativePrompt *string  `json:"negative_prompt"`
	Seed           *uint64  `json:"seed"`
	Steps          *int     `json:"steps"`
	Width          *int     `json:"width"`
	Height         *int     `json:"height"`
	CFGScale       *float64 `json:"cfg_scale"`
	Guidance       *float64 `json:"guidance"`
	FlowShift      *float64 `json:"flow_shift"`
	Sampler        *string  `json:"sampler"`
	Scheduler      *string  `json:"scheduler"`
}

// Manifest limits: a line's length and how many items one manifest may expand to.
const (
	maxManifestLine  = 1 << 20
	maxManifestItems = 10_000_000
	maxItemIDLength  = 128
)

// ErrManifest is wrapped by every error about a manifest's content.
var ErrManifest = errors.New("manifest")

var itemIDPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*$`)

// ParseManifest reads a batch manifest and expands it into items. The format is told by the content:
// if the first line that is neither blank nor a '#' comment starts with '{', every such line is a JSON
// object (JSONL) with the fields prompt, negative_prompt, seed, steps, width, height, cfg_scale,
// guidance, sampler, scheduler, flow_shift, id and count (an unknown field is an error naming the
// line and field); otherwise every such line is one prompt. An entry with count n > 1 becomes n items
// with IDs "<id>-0" … "<id>-(n−1)" (seeds seed+k when a seed is given); items without an id are named
// "item-%06d" after their index. Items without a seed get defaults.Seed + their index, so the same
// manifest and flags always give the same images whatever the sharding. defaults supplies the
// negative prompt and seed base; other zero settings stay zero (the run's defaults apply).
func ParseManifest(r io.Reader, defaults ManifestItem) ([]ManifestItem, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), maxManifestLine)
	var items []ManifestItem
	jsonl, decided := false, false
	ids := map[string]int{}
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if !decided {
			jsonl, decided = strings.HasPrefix(text, "{"), true
		}
		e := manifestEntry{Prompt: &text}
		if jsonl {
			var err error
			if e, err = decodeEntry(text, line); err != nil {
				return nil, err
			}
		}
		var err error
		if items, err = expandEntry(items, e, defaults, line, ids); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: read: %w", ErrManifest, err)
	}
	return items, nil
}

// decodeEntry parses one JSONL line strictly.
func decodeEntry(text string, line int) (manifestEntry, error) {
	var e manifestEntry
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		msg := err.Error()
		if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
			return e, fmt.Errorf("%w: line %d: unknown field %s (known: id, count, prompt, negative_prompt, seed, steps, "+
				"width, height, cfg_scale, guidance, sampler, scheduler, flow_shift)", ErrManifest, line, f)
		}
		return e, fmt.Errorf("%w: line %d: %s", ErrManifest, line, strings.TrimPrefix(msg, "json: "))
	}
	if dec.More() {
		return e, fmt.Errorf("%w: line %d: more than one JSON value", ErrManifest, line)
	}
	if rest, _ := io.ReadAll(dec.Buffered()); len(bytes.TrimSpace(rest)) > 0 {
		return e, fmt.Errorf("%w: line %d: text after the JSON object", ErrManifest, line)
	}
	if e.Prompt == nil {
		return e, fmt.Errorf("%w: line %d: no prompt", ErrManifest, line)
	}
	return e, nil
}

// expandEntry appends the items of one entry.
func expandEntry(items []ManifestItem, e manifestEntry, d ManifestItem, line int, ids map[string]int) ([]ManifestItem, error) {
	count := 1
	if e.Count != nil {
		count = *e.Count
	}
	if count < 1 || len(items)+count > maxManifestItems {
		return nil, fmt.Errorf("%w: line %d: count %d is outside [1, %d]", ErrManifest, line, count, maxManifestItems-len(items))
	}
	if e.ID != "" && (len(e.ID) > maxItemIDLength || !itemIDPattern.MatchString(e.ID)) {
		return nil, fmt.Errorf("%w: line %d: id %q: use at most %d letters, digits, '.', '_' and '-' (not first)",
			ErrManifest, line, e.ID, maxItemIDLength)
	}
	for k := range count {
		it := entryItem(e, d)
		it.Index = len(items)
		switch {
		case e.ID == "":
			it.ID = fmt.Sprintf("item-%06d", it.Index)
		case count > 1:
			it.ID = fmt.Sprintf("%s-%d", e.ID, k)
		default:
			it.ID = e.ID
		}
		if e.Seed != nil {
			it.Seed = *e.Seed + uint64(k)
		} else {
			it.Seed = d.Seed + uint64(it.Index)
		}
		if prev, dup := ids[it.ID]; dup {
			return nil, fmt.Errorf("%w: line %d: id %q is also item %d's", ErrManifest, line, it.ID, prev)
		}
		ids[it.ID] = it.Index
		items = append(items, it)
	}
	return items, nil
}

// entryItem applies an entry's fields over the defaults.
func entryItem(e manifestEntry, d ManifestItem) ManifestItem {
	it := d
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	seti := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	setf := func(dst *float64, v *float64) {
		if v != nil {
			*dst = *v
		}
	}
	set(&it.Prompt, e.Prompt)
	set(&it.NegativePrompt, e.NegativePrompt)
	set(&it.Sampler, e.Sampler)
	set(&it.Scheduler, e.Scheduler)
	seti(&it.Steps, e.Steps)
	seti(&it.Width, e.Width)
	seti(&it.Height, e.Height)
	setf(&it.CFGScale, e.CFGScale)
	setf(&it.Guidance, e.Guidance)
	setf(&it.FlowShift, e.FlowShift)
	return it
}
