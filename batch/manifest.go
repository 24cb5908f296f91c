package batch

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/rflowrt/rflow/pipeline"
	"github.com/rflowrt/rflow/scheduler"
)

// Item is one image of a batch manifest, expanded: a stable ID, its index in the manifest's
// item list (which decides its shard) and the settings it overrides. Zero numeric settings and empty
// names take the batch defaults (and, below them, the model's).
// The JSON names are the manifest's; a pin file stores the batch defaults as an Item.
type Item struct {
	ID    string `json:"id,omitempty"`
	Index int    `json:"index,omitempty"`
	// Prompt and NegativePrompt are the texts; Seed the item's seed (always set after expansion).
	Prompt         string  `json:"prompt,omitempty"`
	NegativePrompt string  `json:"negative_prompt"`
	Seed           uint64  `json:"seed"`
	Steps          int     `json:"steps"`
	Width          int     `json:"width"`
	Height         int     `json:"height"`
	CFGScale       float64 `json:"cfg_scale"`
	Guidance       float64 `json:"guidance"`
	FlowShift      float64 `json:"flow_shift"`
	Sampler        string  `json:"sampler"`
	Scheduler      string  `json:"scheduler"`
	// LoRAs are the item's own LoRAs as FILE:WEIGHT (pipeline.ParseLoRA), merged after the run's --lora
	// ones: items with other LoRAs run on another compiled model.
	LoRAs []string `json:"loras,omitempty"`
	// InitImage (img2img, inpainting), Mask (inpainting, FLUX Fill) and RefImages (FLUX Kontext) are
	// picture files, relative to the manifest's folder or absolute (ResolveInputs joins them);
	// Strength is the img2img strength (zero: 0.75, or 1 with a mask on a FLUX Fill model) and
	// MaskBlur the mask's blur radius. Items with any of them run alone, not in a shared batch.
	InitImage string   `json:"init_image,omitempty"`
	Strength  float64  `json:"strength,omitempty"`
	Mask      string   `json:"mask,omitempty"`
	MaskBlur  float64  `json:"mask_blur,omitempty"`
	RefImages []string `json:"ref_images,omitempty"`
	// InputSHA256 holds the hex SHA-256 of each picture file's content by field ("init_image",
	// "mask", "ref_images[0]", …), set by ResolveInputs: the fingerprint takes these instead of the
	// paths, so a file whose content changed counts as changed and a moved manifest does not.
	InputSHA256 map[string]string `json:"input_sha256,omitempty"`
}

// Edits reports whether the item edits pictures (an init image, a mask or references).
func (it Item) Edits() bool {
	return it.InitImage != "" || it.Mask != "" || len(it.RefImages) > 0
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
	LoRAs          []string `json:"loras"`
	InitImage      *string  `json:"init_image"`
	Strength       *float64 `json:"strength"`
	Mask           *string  `json:"mask"`
	MaskBlur       *float64 `json:"mask_blur"`
	RefImages      []string `json:"ref_images"`
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

// ParseManifest reads a batch manifest and expands it into items. The format is told by the content
// (a UTF-8 byte order mark first is skipped): if the first line that is neither blank nor a '#'
// comment starts a JSON array ('[' then '{', ']' or the end of the line), the rest is one JSON array
// of objects; if it starts with '{', every such line is a JSON object (JSONL); otherwise every such
// line is one prompt. Objects have the fields prompt, negative_prompt, seed, steps, width, height,
// cfg_scale, guidance, sampler, scheduler, flow_shift, loras (["FILE:WEIGHT", …]), the edit inputs init_image,
// strength, mask, mask_blur and ref_images (picture paths relative to the manifest's folder: see
// ResolveInputs), id and count (an unknown field is an error naming the line and field). An entry with count n > 1 becomes n items with IDs "<id>-0" …
// "<id>-(n−1)" (seeds seed+k when a seed is given); items without an id are named "item-%06d" after
// their index. Items without a seed get defaults.Seed + their index, so the same manifest and flags
// always give the same images whatever the sharding. defaults supplies the negative prompt and seed
// base; other zero settings stay zero (the run's defaults apply).
func ParseManifest(r io.Reader, defaults Item) ([]Item, error) {
	br := bufio.NewReaderSize(r, manifestPeek)
	if b, err := br.Peek(len(utf8BOM)); err == nil && bytes.Equal(b, utf8BOM) {
		_, _ = br.Discard(len(utf8BOM))
	}
	m := manifestReader{defaults: defaults, ids: map[string]int{}}
	// Skip blank and comment lines to the first significant one, which tells an array from lines
	// (an array may well be a single long line, so it is only peeked at).
	for line := 1; ; line++ {
		b, err := br.Peek(manifestPeek)
		if len(b) == 0 {
			if err != nil && err != io.EOF {
				return nil, fmt.Errorf("%w: read: %w", ErrManifest, err)
			}
			return m.items, nil
		}
		end := bytes.IndexByte(b, '\n')
		first := b
		if end >= 0 {
			first = b[:end]
		}
		text := strings.TrimSpace(string(first))
		switch {
		case text != "" && !strings.HasPrefix(text, "#"):
			if startsJSONArray(text) {
				return m.readArray(br, line)
			}
			return m.readLines(br, line)
		case end >= 0:
			_, _ = br.Discard(end + 1)
		default: // a comment longer than the peek
			if _, err := br.ReadString('\n'); err != nil {
				return m.items, nil
			}
		}
	}
}

// manifestPeek is how much of a manifest's first significant line is looked at to tell its format.
const manifestPeek = 4096

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// startsJSONArray tells a JSON array's first line ("[", "[{…", "[ ]") from a prompt that starts with a
// bracket ("[cinematic] a cat").
func startsJSONArray(text string) bool {
	rest, ok := strings.CutPrefix(text, "[")
	rest = strings.TrimSpace(rest)
	return ok && (rest == "" || rest[0] == '{' || rest[0] == ']')
}

// manifestReader accumulates the items of one manifest.
type manifestReader struct {
	defaults Item
	items    []Item
	ids      map[string]int
	jsonl    bool
}

// addLine adds the items of one significant line (a JSON object or a prompt).
func (m *manifestReader) addLine(text string, line int) error {
	e := manifestEntry{Prompt: &text}
	if m.jsonl {
		var err error
		if e, err = decodeEntry(text, line); err != nil {
			return err
		}
	}
	var err error
	m.items, err = expandEntry(m.items, e, m.defaults, line, m.ids)
	return err
}

// readLines reads a JSONL or text manifest from line first on; its first significant line tells which.
func (m *manifestReader) readLines(r io.Reader, first int) ([]Item, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), maxManifestLine)
	decided := false
	for line := first; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if !decided {
			m.jsonl, decided = strings.HasPrefix(text, "{"), true
		}
		if err := m.addLine(text, line); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: read: %w", ErrManifest, err)
	}
	return m.items, nil
}

// readArray reads a manifest that is one JSON array of objects; r starts with the array's first
// line, line first. Errors name the line where the object starts.
func (m *manifestReader) readArray(r io.Reader, first int) ([]Item, error) {
	lines := &newlineIndex{r: r}
	lineAt := func(off int64) int {
		n, _ := slices.BinarySearch(lines.at, off)
		return first + n
	}
	dec := json.NewDecoder(lines)
	syntax := func(err error) error {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: line %d: the file ends inside the JSON array", ErrManifest, first+len(lines.at))
		}
		return fmt.Errorf("%w: line %d: %s", ErrManifest, lineAt(dec.InputOffset()), strings.TrimPrefix(err.Error(), "json: "))
	}
	if _, err := dec.Token(); err != nil { // the '['
		return nil, syntax(err)
	}
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, syntax(err)
		}
		line := lineAt(dec.InputOffset() - int64(len(raw)))
		e, err := decodeEntry(string(raw), line)
		if err != nil {
			return nil, err
		}
		if m.items, err = expandEntry(m.items, e, m.defaults, line, m.ids); err != nil {
			return nil, err
		}
	}
	if _, err := dec.Token(); err != nil { // the ']'
		return nil, syntax(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: line %d: text after the JSON array", ErrManifest, lineAt(dec.InputOffset()))
	}
	return m.items, nil
}

// newlineIndex passes r through, recording the offset of every newline read.
type newlineIndex struct {
	r   io.Reader
	off int64
	at  []int64
}

func (n *newlineIndex) Read(p []byte) (int, error) {
	k, err := n.r.Read(p)
	for i, c := range p[:k] {
		if c == '\n' {
			n.at = append(n.at, n.off+int64(i))
		}
	}
	n.off += int64(k)
	return k, err
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
				"width, height, cfg_scale, guidance, sampler, scheduler, flow_shift, loras, init_image, strength, mask, mask_blur, "+
				"ref_images)", ErrManifest, line, f)
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
func expandEntry(items []Item, e manifestEntry, d Item, line int, ids map[string]int) ([]Item, error) {
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
	for i, l := range e.LoRAs {
		x, err := pipeline.ParseLoRA(l)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: loras[%d]: %w", ErrManifest, line, i, err)
		}
		e.LoRAs[i] = pipeline.LoRAStrings([]pipeline.LoRA{x})[0]
	}
	if err := checkEditEntry(e); err != nil {
		return nil, fmt.Errorf("%w: line %d: %w", ErrManifest, line, err)
	}
	for k := range count {
		it := entryItem(e, d)
		if len(e.LoRAs) > 0 {
			it.LoRAs = slices.Clone(e.LoRAs)
		}
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
func entryItem(e manifestEntry, d Item) Item {
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
	if info, err := scheduler.LookupSampler(it.Sampler); err == nil && e.Sampler != nil {
		it.Sampler = info.Name // "Euler a", "euler_a": the registry's spelling, recorded with the image
	}
	set(&it.Scheduler, e.Scheduler)
	seti(&it.Steps, e.Steps)
	seti(&it.Width, e.Width)
	seti(&it.Height, e.Height)
	setf(&it.CFGScale, e.CFGScale)
	setf(&it.Guidance, e.Guidance)
	setf(&it.FlowShift, e.FlowShift)
	set(&it.InitImage, e.InitImage)
	set(&it.Mask, e.Mask)
	setf(&it.Strength, e.Strength)
	setf(&it.MaskBlur, e.MaskBlur)
	if len(e.RefImages) > 0 {
		it.RefImages = slices.Clone(e.RefImages)
	}
	return it
}

// checkEditEntry checks an entry's edit inputs against each other.
func checkEditEntry(e manifestEntry) error {
	has := func(s *string) bool { return s != nil && *s != "" }
	switch {
	case e.InitImage != nil && *e.InitImage == "":
		return errors.New("init_image is empty")
	case e.Mask != nil && *e.Mask == "":
		return errors.New("mask is empty")
	case has(e.Mask) && !has(e.InitImage):
		return errors.New("mask needs init_image (the picture to repaint)")
	case e.Strength != nil && !has(e.InitImage):
		return errors.New("strength needs init_image")
	case e.Strength != nil && (*e.Strength <= 0 || *e.Strength > 1):
		return fmt.Errorf("strength %g: want a value in (0, 1]", *e.Strength)
	case e.MaskBlur != nil && !has(e.Mask):
		return errors.New("mask_blur needs mask")
	case e.MaskBlur != nil && *e.MaskBlur < 0:
		return fmt.Errorf("mask_blur %g: want a radius ≥ 0 pixels", *e.MaskBlur)
	}
	for i, p := range e.RefImages {
		if p == "" {
			return fmt.Errorf("ref_images[%d] is empty", i)
		}
	}
	return nil
}
