package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"

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

func parseLoRA(v string) (pipeline.LoRA, error) {
	x := pipeline.LoRA{Path: v, Weight: 1}
	if i := strings.LastIndex(v, ":"); i >= 0 {
		w, err := strconv.ParseFloat(v[i+1:], 64)
		if err == nil {
			if math.IsNaN(w) || math.IsInf(w, 0) {
				return x, fmt.Errorf("LoRA weight %q is not a finite number", v[i+1:])
			}
			x.Path, x.Weight = v[:i], w
		}
	}
	if x.Path == "" {
		return x, fmt.Errorf("no LoRA file in %q (want FILE[:WEIGHT])", v)
	}
	return x, nil
}

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

// loraHashes is A1111's "Lora hashes" field: "NAME: HASH12, …", names without ':' and ','
// (extensions-builtin/Lora/extra_networks_lora.py).
func loraHashes(ls []pipeline.AppliedLoRA) string {
	var parts []string
	for _, l := range ls {
		name := strings.NewReplacer(":", "", ",", "").Replace(l.Name)
		if name == "" || l.Hash == "" {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s: %s", name, l.Hash[:min(12, len(l.Hash))]))
	}
	return strings.Join(parts, ", ")
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
