package server

import (
	"net/http"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rflowrt/rflow/pipeline"
)

// useLoRATags takes the <lora:NAME:WEIGHT> tags out of the prompt and the negative prompt. The LoRAs
// were merged into the model when the server started, so a tag is accepted only when it names one of
// them (by file stem, as A1111 names LoRAs) at its loaded weight; the request then runs exactly as one
// without the tags. Anything else is a request error naming what was asked and what is loaded.
func (s *Server) useLoRATags(p *params) error {
	for _, text := range []*string{&p.Prompt, &p.Negative} {
		seen := map[string]bool{}
		clean, tags, err := pipeline.TakeLoRATags(*text)
		if err != nil {
			return badRequest("%v", err)
		}
		for _, t := range tags {
			if err := s.loadedLoRA(t); err != nil {
				return err
			}
			key := t.Name + "\x00" + strconv.FormatFloat(t.Weight, 'g', -1, 64)
			if seen[key] {
				return badRequest("%s is given twice in one prompt (rflow txt2img would merge it twice); each loaded LoRA is merged once", t.Text)
			}
			seen[key] = true
		}
		*text = clean
	}
	p.LoRAHashes = pipeline.LoRAHashes(s.m.LoRAs)
	return nil
}

// loadedLoRA checks that a tag names a loaded LoRA at its loaded weight.
func (s *Server) loadedLoRA(t pipeline.LoRATag) error {
	loaded := s.m.LoRAs
	var weights []string
	for _, l := range loaded {
		if l.Name != t.Name {
			continue
		}
		if l.Weight == t.Weight {
			return nil
		}
		weights = append(weights, strconv.FormatFloat(l.Weight, 'g', -1, 64))
	}
	const how = "LoRAs are chosen when the server starts (rflow serve --lora FILE:WEIGHT); a prompt's <lora:NAME:WEIGHT> may only name one of them at its loaded weight, or be left out"
	switch {
	case len(loaded) == 0:
		return badRequest("%s asks for LoRA %q at weight %g, but this server has no LoRAs loaded; %s", t.Text, t.Name, t.Weight, how)
	case len(weights) > 0:
		return badRequest("%s asks for LoRA %q at weight %g, but this server loaded it at weight %s; %s", t.Text, t.Name, t.Weight,
			strings.Join(weights, " and "), how)
	}
	return badRequest("%s asks for LoRA %q at weight %g, which this server has not loaded (loaded: %s); %s", t.Text, t.Name, t.Weight,
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
