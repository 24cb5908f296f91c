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

// PromptLoRAs takes A1111's <lora:NAME:WEIGHT> tags out of a prompt, as A1111 and stable-diffusion.cpp
// do before tokenizing: each tag is removed from the text (the rest is left as it is) and becomes a LoRA
// dir/NAME.safetensors (NAME may name a subfolder; WEIGHT defaults to 1). A tag naming no file is an
// error saying where it looked.
func PromptLoRAs(prompt, dir string) (string, []LoRA, error) {
	var loras []LoRA
	var firstErr error
	clean := loraTag.ReplaceAllStringFunc(prompt, func(tag string) string {
		l, err := parseLoRATag(loraTag.FindStringSubmatch(tag)[1], dir)
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("%s: %w", tag, err)
		}
		loras = append(loras, l)
		return ""
	})
	if firstErr != nil {
		return prompt, nil, firstErr
	}
	return clean, loras, nil
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

func parseLoRATag(body, dir string) (LoRA, error) {
	fields := strings.Split(body, ":")
	name := strings.TrimSpace(fields[0])
	if name == "" {
		return LoRA{}, errors.New("no LoRA name")
	}
	l := LoRA{Weight: 1}
	switch len(fields) {
	case 1:
	case 2:
		w, err := strconv.ParseFloat(strings.TrimSpace(fields[1]), 64)
		if err != nil || math.IsNaN(w) || math.IsInf(w, 0) {
			return LoRA{}, fmt.Errorf("weight %q is not a finite number", fields[1])
		}
		l.Weight = w
	default:
		return LoRA{}, fmt.Errorf("want <lora:NAME> or <lora:NAME:WEIGHT> (separate text-encoder and transformer weights are not supported)")
	}
	if dir == "" {
		return LoRA{}, fmt.Errorf("%w: no LoRA folder given to look for %s.safetensors in", ErrLoRANotFound, name)
	}
	var tried []string
	for _, p := range []string{name + ".safetensors", name} {
		path := filepath.Join(dir, filepath.FromSlash(p))
		if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
			l.Path = path
			return l, nil
		}
		tried = append(tried, path)
	}
	return LoRA{}, fmt.Errorf("%w: no %s (looked for %s)", ErrLoRANotFound, name, strings.Join(tried, " and "))
}
