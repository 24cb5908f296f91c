package compiler

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/rflowrt/rflow/internal/compiler/checkpoint"
	"github.com/rflowrt/rflow/internal/compiler/lora"
)

// LoRA is one LoRA file merged into the checkpoint's weights at a weight (W' = W + weight·(α/r)·up·down).
type LoRA struct {
	Path   string
	Weight float64
}

// AppliedLoRA is what one LoRA patched.
type AppliedLoRA struct {
	LoRA
	// Name is the file's base name without its extension; Modules the number of modules patched, in
	// Components (roles: "transformer", "clip_l", …).
	Name        string
	Modules     int
	Components  []string
	Fingerprint string
}

// applyLoRAs opens the LoRA files, maps them onto the components and wraps each patched component's
// weights, so the updates are added as the weights stream (before any cast or quantization). Each
// patched part's identity then names the LoRAs and weights, so the cache key changes with them and the
// parts they do not touch keep theirs.
func (c *Checkpoint) applyLoRAs(ls []LoRA) error {
	if len(ls) == 0 {
		return nil
	}
	var uses []lora.Use
	for _, l := range ls {
		f, err := lora.Open(l.Path)
		if err != nil {
			return err
		}
		c.loras = append(c.loras, f)
		uses = append(uses, lora.Use{File: f, Weight: l.Weight})
	}
	var comps []lora.Component
	roles := make([]checkpoint.Role, 0, len(c.Parts))
	for r := range c.Parts {
		roles = append(roles, r)
	}
	sort.Slice(roles, func(i, j int) bool { return roles[i] < roles[j] })
	for _, r := range roles {
		if r != checkpoint.RoleVAE {
			p := c.Parts[r]
			comps = append(comps, lora.Component{Role: r, Class: p.Class, Config: p.Config})
		}
	}
	m, err := lora.Apply(c.Family, comps, uses)
	if err != nil {
		return err
	}
	for i, rep := range m.Reports() {
		a := AppliedLoRA{LoRA: ls[i], Name: uses[i].File.Name, Modules: rep.Modules, Fingerprint: uses[i].File.Fingerprint()}
		for _, r := range rep.Roles {
			a.Components = append(a.Components, string(r))
			p := c.Parts[r]
			p.identity += " + lora " + a.Fingerprint + " × " + strconv.FormatFloat(ls[i].Weight, 'g', -1, 64)
		}
		c.LoRAs = append(c.LoRAs, a)
		c.Notes = append(c.Notes, a.String())
	}
	for _, r := range roles {
		p := c.Parts[r]
		p.Weights = m.Wrap(r, p.Weights)
	}
	return nil
}

// closeLoRAs closes the LoRA files.
func (c *Checkpoint) closeLoRAs() error {
	var errs []error
	for _, f := range c.loras {
		errs = append(errs, f.Close())
	}
	c.loras = nil
	return errors.Join(errs...)
}

// String is one line saying what the LoRA patched.
func (a AppliedLoRA) String() string {
	return fmt.Sprintf("LoRA %s × %g: %d modules patched (%s)", a.Name, a.Weight, a.Modules, strings.Join(a.Components, ", "))
}
