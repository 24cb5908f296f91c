package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rflowrt/rflow/internal/compiler"
	"github.com/rflowrt/rflow/internal/compiler/checkpoint"
	"github.com/rflowrt/rflow/internal/ort"
)

// optLayoutVersion names what optOverlay writes; an overlay of another version is rebuilt.
const optLayoutVersion = "rflow-opt-overlay/1"

// transformerPrecisions are the transformer.opt/ subfolders in the order rflow takes them: the ones
// whose weights ONNX Runtime runs on every provider first (BFL ships bf16, fp8 and fp4).
var transformerPrecisions = []string{"fp32", "bf16", "fp16", "fp8", "fp4"}

// optComponents maps a *.opt/ folder set to the diffusers component folders: FLUX (clip.opt/,
// t5.opt/) or SD3 (clip_l.opt/, clip_g.opt/, t5.opt/), the transformer's first precision folder.
// It returns the variant the folders imply ("flux-dev" when the transformer takes a guidance input,
// Kontext's when the folder's name also says kontext, "flux-schnell", or "sd3.5-large" for SD3 sets,
// whose defaults are the same) and what was picked.
func optComponents(dir string, opt []string) (map[string]string, string, string, error) {
	has := func(name string) bool { return slices.Contains(opt, name) }
	comps := map[string]string{compVAEDecoder: "vae.opt"}
	switch {
	case has("clip.opt") && has("t5.opt"):
		comps[compTextEncoder], comps[compTextEncoder2] = "clip.opt", "t5.opt"
	case has("clip_l.opt") && has("clip_g.opt"):
		comps[compTextEncoder], comps[compTextEncoder2] = "clip_l.opt", "clip_g.opt"
		if has("t5.opt") {
			comps[compTextEncoder3] = "t5.opt"
		}
	default:
		return nil, "", "", fmt.Errorf("the *.opt/ folders (%s) are neither FLUX's (clip.opt, t5.opt) nor SD3's (clip_l.opt, clip_g.opt)",
			strings.Join(opt, ", "))
	}
	if has("vae_encoder.opt") {
		comps[compVAEEncoder] = "vae_encoder.opt"
	}
	tr := "transformer.opt"
	if _, err := os.Stat(filepath.Join(dir, tr, "model.onnx")); err != nil {
		found := false
		for _, p := range transformerPrecisions {
			if _, err := os.Stat(filepath.Join(dir, tr, p, "model.onnx")); err == nil {
				tr, found = tr+"/"+p, true
				break
			}
		}
		if !found {
			return nil, "", "", fmt.Errorf("transformer.opt/ has no model.onnx in any of %s/", strings.Join(transformerPrecisions, "/, "))
		}
	}
	comps[compTransformer] = tr
	variant := "sd3.5-large"
	if _, ok := comps[compTextEncoder3]; !ok && comps[compTextEncoder] == "clip.opt" {
		variant = "flux-schnell"
		ins, _, err := ort.Signature(filepath.Join(dir, filepath.FromSlash(tr), "model.onnx"))
		if err != nil {
			return nil, "", "", fmt.Errorf("%s: %w", tr, err)
		}
		if slices.ContainsFunc(ins, func(t ort.TensorInfo) bool { return t.Name == "guidance" }) {
			variant = "flux-dev"
			if strings.Contains(strings.ToLower(filepath.Base(dir)), "kontext") { // BFL's FLUX.1-Kontext-dev-onnx
				variant = compiler.VariantFluxKontext
			}
		}
	}
	var used []string
	for _, c := range componentOrder {
		if f, ok := comps[c]; ok {
			used = append(used, f+"/")
		}
	}
	return comps, variant, strings.Join(used, ", "), nil
}

// optOverlay makes a *.opt/ folder set readable as a diffusers folder without copying its models: a
// folder under the user's cache with one link per component to its *.opt/ folder and the files the
// set does not carry, taken from the released model of the variant its folders imply —
// model_index.json, the scheduler config, the tokenizers (embedded in rflow) and the VAE config
// (the family's scaling and shift: the TensorRT demos' VAE graphs are plain AutoencoderKL decoders).
// It returns the overlay folder and the note Inspect shows.
func optOverlay(dir string, opt []string) (string, string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", "", err
	}
	comps, variant, used, err := optComponents(abs, opt)
	if err != nil {
		return "", "", err
	}
	marker, _ := json.Marshal(map[string]any{"format": optLayoutVersion, "source": abs, "variant": variant, "components": comps})
	sum := sha256.Sum256(marker)
	root := os.TempDir()
	if c, err := os.UserCacheDir(); err == nil && c != "" {
		root = c
	}
	overlay := filepath.Join(root, "rflow", "layouts", filepath.Base(abs)+"-"+hex.EncodeToString(sum[:8]))
	note := fmt.Sprintf("TensorRT-demo layout (%s): reading %s with rflow's %s defaults (model index, scheduler, tokenizers, VAE factors)",
		strings.Join(opt, ", "), used, variant)
	if old, err := os.ReadFile(filepath.Join(overlay, "rflow-layout.json")); err == nil && string(old) == string(marker) {
		return overlay, note, nil
	}
	if err := os.MkdirAll(filepath.Dir(overlay), 0o755); err != nil {
		return "", "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(overlay), ".overlay-*")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(tmp) // left only when the rename below did not happen
	if err := writeOptOverlay(tmp, abs, variant, comps, marker); err != nil {
		return "", "", err
	}
	_ = os.RemoveAll(overlay) // an overlay of another version or a half-written one
	if err := os.Rename(tmp, overlay); err != nil {
		if _, statErr := os.Stat(filepath.Join(overlay, "rflow-layout.json")); statErr == nil {
			return overlay, note, nil // another process wrote it at the same moment
		}
		return "", "", err
	}
	return overlay, note, nil
}

// writeOptOverlay fills an overlay folder: the links, the released files and the marker last.
func writeOptOverlay(tmp, abs, variant string, comps map[string]string, marker []byte) error {
	for c, f := range comps {
		if err := os.Symlink(filepath.Join(abs, filepath.FromSlash(f)), filepath.Join(tmp, c)); err != nil {
			return err
		}
	}
	_, withT5 := comps[compTextEncoder3]
	if err := compiler.WriteReleasedFolderFiles(tmp, variant, withT5); err != nil {
		return err
	}
	family := checkpoint.FamilySD3
	if strings.HasPrefix(variant, "flux") {
		family = checkpoint.FamilyFLUX
	}
	f := checkpoint.VAEFactors[family]
	vaeCfg, _ := json.MarshalIndent(map[string]any{"_class_name": "AutoencoderKL", "in_channels": 3, "out_channels": 3,
		"latent_channels": 16, "block_out_channels": []int{128, 256, 512, 512}, "sample_size": 1024, "scaling_factor": f[0], "shift_factor": f[1]}, "", "  ")
	if err := os.MkdirAll(filepath.Join(tmp, "vae"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "vae", "config.json"), vaeCfg, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(tmp, "rflow-layout.json"), marker, 0o644)
}
