package pipeline

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// loraTag is A1111's extra-network syntax for LoRAs: <lora:NAME> or <lora:NAME:WEIGHT>.
var loraTag = regexp.MustCompile(`<lora:([^>]*)>`)

// ErrLoRANotFound is wrapped by PromptLoRAs' error for a <lora:NAME> with no file NAME.safetensors.
var ErrLoRANotFound = errors.New("LoRA not found")

// LoRATag is one <lora:NAME> or <lora:NAME:WEIGHT> tag of a prompt, before NAME is looked up.
type LoRATag struct {
	Text   string // the tag as written, for messages
	Name   string
	Weight float64 // 1 when the tag gives none
}

// TakeLoRATags removes A1111's <lora:NAME:WEIGHT> tags from a prompt (the rest of the text is left as it
// is) and returns them in order, NAME not looked up: a server that must not open files by request names
// matches them against what it loaded. A malformed tag is an error naming it.
func TakeLoRATags(prompt string) (string, []LoRATag, error) {
	if !strings.Contains(prompt, "<lora:") {
		return prompt, nil, nil
	}
	var tags []LoRATag
	var firstErr error
	clean := loraTag.ReplaceAllStringFunc(prompt, func(tag string) string {
		t, err := parseLoRATag(tag, loraTag.FindStringSubmatch(tag)[1])
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("%s: %w", tag, err)
		}
		tags = append(tags, t)
		return ""
	})
	if firstErr != nil {
		return prompt, nil, firstErr
	}
	return clean, tags, nil
}

// PromptLoRAs takes A1111's <lora:NAME:WEIGHT> tags out of a prompt, as A1111 and stable-diffusion.cpp
// do before tokenizing: each tag is removed from the text (the rest is left as it is) and becomes a LoRA
// dir/NAME.safetensors (NAME may name a subfolder; WEIGHT defaults to 1). A tag naming no file is an
// error saying where it looked.
func PromptLoRAs(prompt, dir string) (string, []LoRA, error) {
	clean, tags, err := TakeLoRATags(prompt)
	if err != nil {
		return prompt, nil, err
	}
	var loras []LoRA
	for _, t := range tags {
		path, err := findLoRA(t.Name, dir)
		if err != nil {
			return prompt, nil, fmt.Errorf("%s: %w", t.Text, err)
		}
		loras = append(loras, LoRA{Path: path, Weight: t.Weight})
	}
	return clean, loras, nil
}

// LoRAHashes is A1111's "Lora hashes" generation parameter: "NAME: HASH12, …", names without ':' and ','
// (A1111's extensions-builtin/Lora/extra_networks_lora.py); LoRAs without a hash are left out.
func LoRAHashes(ls []AppliedLoRA) string {
	var parts []string
	for _, l := range ls {
		name := strings.NewReplacer(":", "", ",", "").Replace(l.Name)
		if name == "" || l.Hash == "" {
			continue
		}
		parts = append(parts, name+": "+l.Hash[:min(12, len(l.Hash))])
	}
	return strings.Join(parts, ", ")
}

// ParseLoRA reads FILE[:WEIGHT] (rflow's --lora, a manifest's loras entries): the text after the last
// colon is the weight when it is a number, so paths with colons still work; without one the weight is 1.
// A NaN or infinite weight is an error.
func ParseLoRA(v string) (LoRA, error) {
	x := LoRA{Path: v, Weight: 1}
	if i := strings.LastIndex(v, ":"); i >= 0 {
		if w, err := strconv.ParseFloat(v[i+1:], 64); err == nil {
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

// String is FILE:WEIGHT, which ParseLoRA reads back exactly.
func loraString(l LoRA) string { return l.Path + ":" + strconv.FormatFloat(l.Weight, 'g', -1, 64) }

// LoRAStrings are the LoRAs as FILE:WEIGHT texts (ParseLoRA's form).
func LoRAStrings(ls []LoRA) []string {
	var out []string
	for _, l := range ls {
		out = append(out, loraString(l))
	}
	return out
}

func parseLoRATag(tag, body string) (LoRATag, error) {
	fields := strings.Split(body, ":")
	t := LoRATag{Text: tag, Name: strings.TrimSpace(fields[0]), Weight: 1}
	if t.Name == "" {
		return t, errors.New("no LoRA name")
	}
	switch len(fields) {
	case 1:
	case 2:
		w, err := strconv.ParseFloat(strings.TrimSpace(fields[1]), 64)
		if err != nil || math.IsNaN(w) || math.IsInf(w, 0) {
			return t, fmt.Errorf("weight %q is not a finite number", fields[1])
		}
		t.Weight = w
	default:
		return t, errors.New("want <lora:NAME> or <lora:NAME:WEIGHT> (separate text-encoder and transformer weights are not supported)")
	}
	return t, nil
}

// findLoRA is the file a <lora:NAME> names in dir: NAME.safetensors, else NAME itself.
func findLoRA(name, dir string) (string, error) {
	if dir == "" {
		return "", fmt.Errorf("%w: no LoRA folder given to look for %s.safetensors in", ErrLoRANotFound, name)
	}
	var tried []string
	for _, p := range []string{name + ".safetensors", name} {
		path := filepath.Join(dir, filepath.FromSlash(p))
		if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
			return path, nil
		}
		tried = append(tried, path)
	}
	return "", fmt.Errorf("%w: no %s (looked for %s)", ErrLoRANotFound, name, strings.Join(tried, " and "))
}
