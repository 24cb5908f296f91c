package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"

	"github.com/rflowrt/rflow/internal/imagefile"
	"github.com/rflowrt/rflow/pipeline"
	"github.com/rflowrt/rflow/scheduler"
)

// newImageMeta records an image of model m drawn with settings s; what the model's family does not
// use (FLUX: the third prompt and clip skip) is left out.
func newImageMeta(m *pipeline.Model, s pipeline.Resolved, prompt, prompt2, prompt3, negative string, seed uint64) imageMeta {
	im := imageMeta{model: m, prompt: prompt, prompt2: prompt2, prompt3: prompt3, negative: negative, settings: s, seed: seed}
	if m.Family == scheduler.FamilyFLUX {
		im.prompt3, im.settings.ClipSkip = "", 0
	}
	return im
}

// imageMeta is what one image's metadata records. Its params and rflowJSON methods are the one place
// where the A1111 "parameters" text and rflow's JSON chunk are built, for txt2img and batch alike.
type imageMeta struct {
	model *pipeline.Model
	id    string // the batch item's id; "" for txt2img
	// The texts as given (empty prompt2/prompt3: the prompt).
	prompt, prompt2, prompt3, negative string
	settings                           pipeline.Resolved
	// seed is the seed that reproduces the image; when one generator drew a whole batch (batchSize
	// > 1), the image is entry batchPos of that seed's batch.
	seed                uint64
	batchSize, batchPos int
}

// params is the A1111 "parameters" text's fields. FLUX follows Forge: "CFG scale" is the true CFG
// scale (1 when off; Forge runs the negative prompt exactly when it is > 1) and "Distilled CFG Scale"
// the guidance input.
func (im imageMeta) params() imagefile.Params {
	s := im.settings
	p := imagefile.Params{Prompt: im.prompt, NegativePrompt: im.negative, Steps: s.Steps,
		Sampler: imagefile.SamplerDisplayName(s.Sampler), ScheduleType: imagefile.ScheduleDisplayName(s.Scheduler),
		CFGScale: s.CFGScale, DistilledCFGScale: s.Guidance, Seed: im.seed, Width: s.Width, Height: s.Height,
		Model: im.model.Name, DenoisingStrength: s.Strength, ClipSkip: s.ClipSkip, RNG: imagefile.RNGDisplayName(s.RNG),
		Version: "rflow " + versionString()}
	if im.model.Family == scheduler.FamilyFLUX {
		p.CFGScale = s.TrueCFGScale
	}
	if !negativeUsed(im.model, s) {
		p.NegativePrompt = "" // not written as if it had been used
	}
	if s.Shift != 0 {
		p.Extra = append(p.Extra, imagefile.KV{Key: "Shift", Value: fmt.Sprint(s.Shift)})
	}
	for _, kv := range s.GuidanceInfo() { // the server's infotexts use the same entries
		p.Extra = append(p.Extra, imagefile.KV{Key: kv[0], Value: kv[1]})
	}
	if h := pipeline.LoRAHashes(im.model.LoRAs); h != "" {
		p.Extra = append(p.Extra, imagefile.KV{Key: "Lora hashes", Value: h})
	}
	if im.batchSize > 1 { // Seed alone does not redraw it: A1111's keys for a place in a batch
		p.Extra = append(p.Extra, imagefile.KV{Key: "Batch size", Value: fmt.Sprint(im.batchSize)},
			imagefile.KV{Key: "Batch pos", Value: fmt.Sprint(im.batchPos)})
	}
	return p
}

// rflowChunk is the rflow JSON chunk: every setting needed to reproduce the image, keys in snake_case
// like manifests and results logs.
type rflowChunk struct {
	Version        string          `json:"version"`
	Model          string          `json:"model"`
	ModelDir       string          `json:"model_dir"`
	Family         string          `json:"family"`
	ID             string          `json:"id,omitempty"`
	Prompt         string          `json:"prompt"`
	Prompt2        string          `json:"prompt_2,omitempty"`
	Prompt3        string          `json:"prompt_3,omitempty"`
	NegativePrompt string          `json:"negative_prompt,omitempty"`
	Seed           uint64          `json:"seed"`
	BatchSize      int             `json:"batch_size,omitempty"` // > 1: one generator drew the batch; the image is entry batch_pos
	BatchPos       *int            `json:"batch_pos,omitempty"`
	Settings       json.RawMessage `json:"settings"`
	LoRAs          []chunkLoRA     `json:"loras,omitempty"`
}

// rflowJSON is the rflow chunk's bytes. Texts the run did not use are left out.
func (im imageMeta) rflowJSON() ([]byte, error) {
	if !negativeUsed(im.model, im.settings) {
		im.negative = ""
	}
	settings, err := snakeCaseJSON(im.settings)
	if err != nil {
		return nil, err
	}
	c := rflowChunk{Version: versionString(), Model: im.model.Name, ModelDir: im.model.Dir, Family: string(im.model.Family),
		ID: im.id, Prompt: im.prompt, Prompt2: im.prompt2, Prompt3: im.prompt3, NegativePrompt: im.negative, Seed: im.seed,
		Settings: settings}
	if im.batchSize > 1 {
		c.BatchSize, c.BatchPos = im.batchSize, &im.batchPos
	}
	c.LoRAs = chunkLoRAs(im.model.LoRAs)
	return json.Marshal(c)
}

// snakeCaseJSON encodes v with every object key turned into snake_case ("CFGScale" → "cfg_scale"),
// numbers kept exactly as encoded.
func snakeCaseJSON(v any) (json.RawMessage, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, err
	}
	return json.Marshal(snakeKeys(tree))
}

func snakeKeys(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[snakeCase(k)] = snakeKeys(x)
		}
		return out
	case []any:
		for i := range t {
			t[i] = snakeKeys(t[i])
		}
	}
	return v
}

// snakeCase turns a Go field name into snake_case, keeping initialisms together: "CFGScale" →
// "cfg_scale", "TrueCFGScale" → "true_cfg_scale", "ModelTimesteps" → "model_timesteps".
func snakeCase(s string) string {
	r := []rune(s)
	var b strings.Builder
	for i, c := range r {
		if unicode.IsUpper(c) && i > 0 {
			prevLower := unicode.IsLower(r[i-1]) || unicode.IsDigit(r[i-1])
			nextLower := i+1 < len(r) && unicode.IsLower(r[i+1])
			if prevLower || (unicode.IsUpper(r[i-1]) && nextLower) {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}
