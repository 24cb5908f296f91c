package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/rflowrt/rflow/batch"
	"github.com/rflowrt/rflow/pipeline"
)

// loraFlag is the repeatable --lora FILE[:WEIGHT].
type loraFlag []pipeline.LoRA

func (l *loraFlag) String() string {
	var s []string
	for _, x := range *l {
		s = append(s, fmt.Sprintf("%s:%g", x.Path, x.Weight))
	}
	return strings.Join(s, ",")
}

func (l *loraFlag) Type() string { return "FILE[:WEIGHT]" }

// Set parses FILE[:WEIGHT]: the text after the last colon is the weight when it is a number (so paths
// with colons still work), else the whole value is the file at weight 1.
func (l *loraFlag) Set(v string) error {
	x, err := parseLoRA(v)
	if err != nil {
		return err
	}
	*l = append(*l, x)
	return nil
}

func parseLoRA(v string) (pipeline.LoRA, error) { return pipeline.ParseLoRA(v) }

// promptLoRAs moves the <lora:NAME:WEIGHT> tags of a prompt into the checkpoint flags' LoRAs (after the
// --lora ones) and returns the prompt without them.
func (c *checkpointFlags) promptLoRAs(prompt string) (string, error) {
	if !strings.Contains(prompt, "<lora:") {
		return prompt, nil
	}
	clean, ls, err := pipeline.PromptLoRAs(prompt, c.loraDir)
	if err != nil {
		if c.loraDir == "" {
			return prompt, fmt.Errorf("%w; give --lora-dir DIR (or set RFLOW_LORA_DIR)", err)
		}
		return prompt, err
	}
	c.loras = append(c.loras, ls...)
	return clean, nil
}

// chunkLoRA is one LoRA in the rflow JSON chunk.
type chunkLoRA struct {
	Name    string  `json:"name"`
	File    string  `json:"file"`
	Weight  float64 `json:"weight"`
	Hash    string  `json:"hash"`
	Modules int     `json:"modules"`
}

func chunkLoRAs(ls []pipeline.AppliedLoRA) []chunkLoRA {
	var out []chunkLoRA
	for _, l := range ls {
		out = append(out, chunkLoRA{Name: l.Name, File: l.Path, Weight: l.Weight, Hash: l.Hash, Modules: l.Modules})
	}
	return out
}

// with is the flags with more LoRAs after their own.
func (c checkpointFlags) with(more []pipeline.LoRA) checkpointFlags {
	c.loras = append(slices.Clone(c.loras), more...)
	return c
}

// itemPromptLoRAs moves each batch item's <lora:NAME:WEIGHT> prompt tags into its LoRAs (resolved in
// --lora-dir), before the items are pinned.
func (c *checkpointFlags) itemPromptLoRAs(items []batch.Item) error {
	for i := range items {
		it := &items[i]
		if !strings.Contains(it.Prompt, "<lora:") {
			continue
		}
		clean, ls, err := pipeline.PromptLoRAs(it.Prompt, c.loraDir)
		if err != nil {
			if c.loraDir == "" {
				err = fmt.Errorf("%w; give --lora-dir DIR (or set RFLOW_LORA_DIR)", err)
			}
			return fmt.Errorf("item %s: %w", it.ID, err)
		}
		it.Prompt = clean
		it.LoRAs = append(it.LoRAs, pipeline.LoRAStrings(ls)...)
	}
	return nil
}

// loraGroup is the items of a batch that run on one compiled model: the same LoRAs.
type loraGroup struct {
	loras []pipeline.LoRA
	items []batch.Item
}

// groupByLoRAs splits items by their LoRAs, groups in the order their first item comes; with no items,
// one empty group (the run's model still opens).
func groupByLoRAs(items []batch.Item) ([]loraGroup, error) {
	var groups []loraGroup
	at := map[string]int{}
	for _, it := range items {
		key := strings.Join(it.LoRAs, "\x00")
		i, ok := at[key]
		if !ok {
			var ls []pipeline.LoRA
			for _, s := range it.LoRAs {
				l, err := pipeline.ParseLoRA(s)
				if err != nil {
					return nil, fmt.Errorf("item %s: %w", it.ID, err)
				}
				ls = append(ls, l)
			}
			i = len(groups)
			at[key] = i
			groups = append(groups, loraGroup{loras: ls})
		}
		groups[i].items = append(groups[i].items, it)
	}
	if len(groups) == 0 {
		groups = []loraGroup{{}}
	}
	return groups, nil
}

// reportLoRAs says what each LoRA patched.
func reportLoRAs(w io.Writer, m *pipeline.Model, quiet bool) {
	if m == nil || quiet {
		return
	}
	for _, l := range m.LoRAs {
		fmt.Fprintf(w, "rflow: LoRA %s × %g: %d modules patched (%s)\n", l.Name, l.Weight, l.Modules, strings.Join(l.Components, ", "))
	}
}

// promptsLoRAs takes the <lora:NAME:WEIGHT> tags out of several prompts that run on one model (compare):
// they must name the same LoRAs, which join the flags' LoRAs.
func (c *checkpointFlags) promptsLoRAs(prompts []string) error {
	var first []pipeline.LoRA
	for i, p := range prompts {
		before := len(c.loras)
		clean, err := c.promptLoRAs(p)
		if err != nil {
			return err
		}
		tagged := slices.Clone(c.loras[before:])
		c.loras = c.loras[:before]
		if i == 0 {
			first = tagged
		} else if !slices.Equal(tagged, first) {
			return fmt.Errorf("prompt %d names other LoRAs than prompt 1; the prompts of one comparison run on one model", i+1)
		}
		prompts[i] = clean
	}
	c.loras = append(c.loras, first...)
	return nil
}
