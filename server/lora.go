package server

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/rflowrt/rflow/pipeline"
)

// loraTag is A1111's extra-network syntax for LoRAs, <lora:NAME> or <lora:NAME:WEIGHT>, as
// pipeline.PromptLoRAs reads it. The server resolves NAME among the LoRAs loaded at start, never as a
// file: no request field names a file.
var loraTag = regexp.MustCompile(`<lora:([^>]*)>`)

// promptTag is one <lora:…> tag of a request's prompt.
type promptTag struct {
	text   string // the tag as written, for messages
	name   string
	weight float64
}

// takeLoRATags removes the <lora:…> tags from a prompt (the rest of the text is left as it is, as
// pipeline.PromptLoRAs leaves it) and returns them.
func takeLoRATags(prompt string) (string, []promptTag, error) {
	if !strings.Contains(prompt, "<lora:") {
		return prompt, nil, nil
	}
	var tags []promptTag
	var firstErr error
	clean := loraTag.ReplaceAllStringFunc(prompt, func(tag string) string {
		t, err := parseTag(tag, loraTag.FindStringSubmatch(tag)[1])
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

func parseTag(tag, body string) (promptTag, error) {
	fields := strings.Split(body, ":")
	t := promptTag{text: tag, name: strings.TrimSpace(fields[0]), weight: 1}
	if t.name == "" {
		return t, errors.New("no LoRA name")
	}
	switch len(fields) {
	case 1:
	case 2:
		w, err := strconv.ParseFloat(strings.TrimSpace(fields[1]), 64)
		if err != nil || math.IsNaN(w) || math.IsInf(w, 0) {
			return t, fmt.Errorf("weight %q is not a finite number", fields[1])
		}
		t.weight = w
	default:
		return t, errors.New("want <lora:NAME> or <lora:NAME:WEIGHT> (separate text-encoder and transformer weights are not supported)")
	}
	return t, nil
}

// useLoRATags takes the <lora:NAME:WEIGHT> tags out of the prompt and the negative prompt. The LoRAs
// were merged into the model when the server started, so a tag is accepted only when it names one of
// them (by file stem, as A1111 names LoRAs) at its loaded weight; the request then runs exactly as one
// without the tags. Anything else is a request error naming what was asked and what is loaded.
func (s *Server) useLoRATags(p *params) error {
	for _, text := range []*string{&p.Prompt, &p.Negative} {
		seen := map[string]bool{}
		clean, tags, err := takeLoRATags(*text)
		if err != nil {
			return badRequest("%v", err)
		}
		for _, t := range tags {
			if err := s.loadedLoRA(t); err != nil {
				return err
			}
			key := t.name + "\x00" + strconv.FormatFloat(t.weight, 'g', -1, 64)
			if seen[key] {
				return badRequest("%s is given twice in one prompt (rflow txt2img would merge it twice); each loaded LoRA is merged once", t.text)
			}
			seen[key] = true
		}
		*text = clean
	}
	p.LoRAHashes = loraHashes(s.m.LoRAs)
	return nil
}

// loadedLoRA checks that a tag names a loaded LoRA at its loaded weight.
func (s *Server) loadedLoRA(t promptTag) error {
	loaded := s.m.LoRAs
	var weights []string
	for _, l := range loaded {
		if l.Name != t.name {
			continue
		}
		if l.Weight == t.weight {
			return nil
		}
		weights = append(weights, strconv.FormatFloat(l.Weight, 'g', -1, 64))
	}
	const how = "LoRAs are chosen when the server starts (rflow serve --lora FILE:WEIGHT); a prompt's <lora:NAME:WEIGHT> may only name one of them at its loaded weight, or be left out"
	switch {
	case len(loaded) == 0:
		return badRequest("%s asks for LoRA %q at weight %g, but this server has no LoRAs loaded; %s", t.text, t.name, t.weight, how)
	case len(weights) > 0:
		return badRequest("%s asks for LoRA %q at weight %g, but this server loaded it at weight %s; %s", t.text, t.name, t.weight,
			strings.Join(weights, " and "), how)
	}
	return badRequest("%s asks for LoRA %q at weight %g, which this server has not loaded (loaded: %s); %s", t.text, t.name, t.weight,
		loadedList(loaded), how)
}

// loadedList is "NAME:WEIGHT, …", the tags that select the loaded LoRAs.
func loadedList(ls []pipeline.AppliedLoRA) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = "<lora:" + l.Name + ":" + strconv.FormatFloat(l.Weight, 'g', -1, 64) + ">"
	}
	return strings.Join(parts, ", ")
}

// loraHashes is A1111's "Lora hashes" value, as the CLI writes it in a PNG's parameters: "NAME: HASH12,
// …", names without ':' and ',' (A1111's extensions-builtin/Lora/extra_networks_lora.py).
func loraHashes(ls []pipeline.AppliedLoRA) string {
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

// quoteInfo is A1111's infotext quoting of a value with ',', ':' or a line break: a JSON string.
func quoteInfo(v string) string {
	if !strings.ContainsAny(v, ",\n:") {
		return v
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`).Replace(v) + `"`
}

// a1111LoRAs is GET /sdapi/v1/loras: the LoRAs merged at start, in A1111's shape (name, alias, path,
// metadata). path is the file's name only: the server's folders are not the client's business. weight
// and hash are rflow's: the weight a prompt tag must give, A1111's short hash.
func (s *Server) a1111LoRAs(w http.ResponseWriter, r *http.Request) {
	out := []map[string]any{}
	for _, l := range s.m.LoRAs {
		out = append(out, map[string]any{"name": l.Name, "alias": l.Name, "path": filepath.Base(l.Path),
			"metadata": map[string]any{}, "weight": l.Weight, "hash": l.Hash[:min(12, len(l.Hash))]})
	}
	writeJSON(w, http.StatusOK, out)
}
