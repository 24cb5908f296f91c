package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/rflowrt/rflow/internal/compiler"
	"github.com/rflowrt/rflow/internal/compiler/arch"
	"github.com/rflowrt/rflow/internal/compiler/checkpoint"
	"github.com/rflowrt/rflow/internal/compiler/lora"
	"github.com/rflowrt/rflow/scheduler"
)

// ErrExportLoRA is wrapped by OpenExportWithLoRAs' error for an export that cannot take the LoRA: its
// initializers do not carry the parameter names the LoRA patches (torch.onnx and Optimum rename the
// weights they feed to MatMul), or are quantized. The checkpoint the export was made from can take it.
var ErrExportLoRA = lora.ErrExportNames

// OpenExportWithLoRAs opens an ONNX export folder with LoRAs merged into its weights. The initializers
// the LoRAs patch are found by their parameter names (possibly under an exporter's prefix, or
// transposed as rflow's own compiled folders store them) and rewritten in a copy of the patched
// components, kept in the compiled-model cache (cacheDir; "" is the default) under a key of the
// export's files and the LoRA files and weights; the other components are hard links to the export's.
func OpenExportWithLoRAs(dir string, loras []LoRA, cacheDir string) (*Model, error) {
	base, err := Open(dir)
	if err != nil {
		return nil, err
	}
	if cacheDir == "" {
		if cacheDir, err = compiler.CacheDir(); err != nil {
			return nil, err
		}
	}
	roles := map[string]checkpoint.Role{compTransformer: checkpoint.RoleTransformer, compTextEncoder: checkpoint.RoleCLIPL,
		compTextEncoder2: checkpoint.RoleCLIPG, compTextEncoder3: checkpoint.RoleT5}
	if base.Family == scheduler.FamilyFLUX {
		roles[compTextEncoder2] = checkpoint.RoleT5
	}
	var comps []lora.ExportComponent
	for _, name := range componentOrder {
		role, ok := roles[name]
		if !ok || !base.Has(name) {
			continue
		}
		cfg, err := arch.ReadConfig(filepath.Join(dir, name, "config.json"))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		class, _ := cfg["_class_name"].(string)
		if a, ok := cfg["architectures"].([]any); ok && len(a) > 0 {
			class, _ = a[0].(string)
		}
		if class == "" { // exporters often drop it: the family and the folder tell it
			class = map[checkpoint.Role]string{checkpoint.RoleTransformer: "SD3Transformer2DModel", checkpoint.RoleT5: "T5EncoderModel",
				checkpoint.RoleCLIPL: "CLIPTextModelWithProjection", checkpoint.RoleCLIPG: "CLIPTextModelWithProjection"}[role]
			if base.Family == scheduler.FamilyFLUX && role != checkpoint.RoleT5 {
				class = map[checkpoint.Role]string{checkpoint.RoleTransformer: "FluxTransformer2DModel", checkpoint.RoleCLIPL: "CLIPTextModel"}[role]
			}
		}
		comps = append(comps, lora.ExportComponent{Component: lora.Component{Role: role, Class: class, Config: cfg}, Dir: name})
	}
	var uses []lora.Use
	defer func() {
		for _, u := range uses {
			u.File.Close()
		}
	}()
	h := sha256.New()
	fmt.Fprintf(h, "rflow export+lora v1\n%s\n", dir)
	for _, l := range loras {
		f, err := lora.Open(l.Path)
		if err != nil {
			return nil, err
		}
		uses = append(uses, lora.Use{File: f, Weight: l.Weight})
		fmt.Fprintf(h, "lora %s %s\n", f.Fingerprint(), strconv.FormatFloat(l.Weight, 'g', -1, 64))
	}
	// The export's files by size and modification time: hashing gigabytes on every start would cost
	// more than the patch.
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			if st, err := os.Stat(p); err == nil {
				fmt.Fprintf(h, "%s %d %d\n", p[len(dir):], st.Size(), st.ModTime().UnixNano())
			}
		}
		return nil
	})
	sum := h.Sum(nil)
	out := filepath.Join(cacheDir, base.Name+"-lora-"+hex.EncodeToString(sum[:12]))
	var reps []lora.Report
	if _, err := os.Stat(out); err != nil {
		if err := os.MkdirAll(cacheDir, 0o755); err != nil {
			return nil, err
		}
		if reps, err = lora.PatchExport(string(base.Family), dir, out, comps, uses); err != nil {
			return nil, fmt.Errorf("%s: %w", dir, err)
		}
	} else {
		plain := make([]lora.Component, len(comps))
		for i, c := range comps {
			plain[i] = c.Component
		}
		m, err := lora.Apply(string(base.Family), plain, uses)
		if err != nil {
			return nil, err
		}
		reps = m.Reports()
	}
	m, err := Open(out)
	if err != nil {
		return nil, err
	}
	m.Name = base.Name
	for i, r := range reps {
		hash, err := lora.Hash(loras[i].Path)
		if err != nil {
			return nil, err
		}
		a := AppliedLoRA{Name: uses[i].File.Name, Path: loras[i].Path, Weight: loras[i].Weight, Modules: r.Modules, Hash: hash}
		for _, role := range r.Roles {
			a.Components = append(a.Components, string(role))
		}
		m.LoRAs = append(m.LoRAs, a)
	}
	return m, nil
}
