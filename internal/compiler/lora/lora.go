// Package lora reads the LoRA files people share for SD3 and FLUX — kohya/sd-scripts (lora_unet_…,
// lora_te1_…/lora_te2_…/lora_te3_…, .lora_down/.lora_up/.alpha), diffusers/PEFT (transformer.….lora_A/
// .lora_B, text_encoder.…, rank and alpha in the lora_adapter_metadata header), BFL/ComfyUI FLUX
// (double_blocks.N.img_attn.qkv.lora_A…, also under diffusion_model.), XLabs FLUX
// (double_blocks.N.processor.qkv_lora1.down…) and SAI SD3 names (joint_blocks.N.x_block.attn.qkv…) — maps every module to the diffusers/transformers parameters it
// patches (a fused qkv or linear1 split by rows, as the checkpoint converters split the weights), and
// merges them while the weights stream into the graph:
//
//	W' = W + Σᵢ wᵢ · (αᵢ / rᵢ) · (upᵢ · downᵢ)
//
// in float32, before any cast or quantization. LyCORIS LoHa, LoKr (without Tucker factors) and full
// diffs are merged too; other variants (DoRA, Tucker-decomposed LoCon/LoHa/LoKr, norms, OFT, GLoRA,
// biases) are refused by name.
package lora

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rflowrt/rflow/internal/safetensors"
)

// File is an open LoRA file: its modules, grouped from the tensor names.
type File struct {
	// Path is the file as given; Name its base name without the extension (A1111's LoRA name).
	Path, Name  string
	r           *safetensors.Reader
	modules     []*module
	fingerprint string
}

// variant is the kind of weight update a module holds.
type variant string

const (
	plainLoRA variant = "LoRA" // up · down (LoCon on convolutions too)
	loHa      variant = "LoHa" // (w1a · w1b) ⊙ (w2a · w2b)
	loKr      variant = "LoKr" // w1 ⊗ w2, each whole or a low-rank product
	fullDiff  variant = "full" // the difference itself
)

// module is one patched module of a LoRA file: its key (the tensor names less their suffix) and the
// tensors of each slot ("up", "down", "alpha", "hada_w1_a", "lokr_w2", "diff", …).
type module struct {
	key    string
	kind   variant
	slots  map[string]string
	alpha  float64 // α; NaN when the file gives none
	rslora bool    // PEFT use_rslora: α/√r
}

// slotSuffixes are the tensor name endings of the supported variants and the slot each fills.
var slotSuffixes = []struct{ suffix, slot string }{
	{".lora_down.weight", "down"}, {".lora_up.weight", "up"}, // kohya, LoCon
	{".lora_A.weight", "down"}, {".lora_B.weight", "up"}, // PEFT, BFL
	{".lora.down.weight", "down"}, {".lora.up.weight", "up"}, // older diffusers attention processors
	{".down.weight", "down"}, {".up.weight", "up"}, // XLabs FLUX (processor.qkv_lora1.down.weight)
	{".alpha", "alpha"},
	{".hada_w1_a", "hada_w1_a"}, {".hada_w1_b", "hada_w1_b"}, {".hada_w2_a", "hada_w2_a"}, {".hada_w2_b", "hada_w2_b"},
	{".lokr_w1", "lokr_w1"}, {".lokr_w1_a", "lokr_w1_a"}, {".lokr_w1_b", "lokr_w1_b"},
	{".lokr_w2", "lokr_w2"}, {".lokr_w2_a", "lokr_w2_a"}, {".lokr_w2_b", "lokr_w2_b"},
	{".diff", "diff"},
}

// unsupportedSuffixes are the tensor name endings of variants this package does not merge, and their names.
var unsupportedSuffixes = []struct{ suffix, variant string }{
	{".lora_mid.weight", "LoCon with Tucker decomposition (lora_mid)"},
	{".hada_t1", "LoHa with Tucker decomposition (hada_t1)"}, {".hada_t2", "LoHa with Tucker decomposition (hada_t2)"},
	{".lokr_t2", "LoKr with Tucker decomposition (lokr_t2)"},
	{".dora_scale", "DoRA (dora_scale)"}, {".lora_magnitude_vector", "DoRA (lora_magnitude_vector)"},
	{".lora_magnitude_vector.weight", "DoRA (lora_magnitude_vector)"},
	{".w_norm", "LyCORIS norm (w_norm)"}, {".b_norm", "LyCORIS norm (b_norm)"},
	{".diff_b", "full bias diff (diff_b)"},
	{".lora_B.bias", "LoRA with bias (lora_B.bias)"}, {".lora_up.bias", "LoRA with bias (lora_up.bias)"},
	{".oft_blocks", "OFT (oft_blocks)"}, {".oft_diag", "OFT (oft_diag)"},
	{".a1.weight", "GLoRA (a1)"}, {".a2.weight", "GLoRA (a2)"}, {".b1.weight", "GLoRA (b1)"}, {".b2.weight", "GLoRA (b2)"},
	{".on_input", "IA3 (on_input)"}, {".weight_ia3", "IA3"},
	{".lora_embedding_A", "PEFT embedding LoRA (lora_embedding_A)"}, {".lora_embedding_B", "PEFT embedding LoRA (lora_embedding_B)"},
}

// UnsupportedError is Open's error for a LoRA variant that is not merged.
type UnsupportedError struct {
	Path, Key, Variant string
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("LoRA %s: %s: unsupported variant %s", e.Path, e.Key, e.Variant)
}

// Open reads a LoRA file's header and groups its tensors into modules. No weights are read.
func Open(path string) (*File, error) {
	r, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("LoRA %s: %w", path, err)
	}
	f := &File{Path: path, Name: strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)), r: r}
	if err := f.group(); err != nil {
		r.Close()
		return nil, err
	}
	if f.fingerprint, err = r.Fingerprint(); err != nil {
		r.Close()
		return nil, fmt.Errorf("LoRA %s: %w", path, err)
	}
	return f, nil
}

// Close releases the file.
func (f *File) Close() error { return f.r.Close() }

// Fingerprint identifies the file's content (safetensors.Reader.Fingerprint), for cache keys.
func (f *File) Fingerprint() string { return f.fingerprint }

// Modules is the number of modules the file holds.
func (f *File) Modules() int { return len(f.modules) }

// group sorts the tensors into modules by suffix and reads their α.
func (f *File) group() error {
	byKey := map[string]*module{}
	var keys []string
	for _, name := range f.r.Names() {
		key, slot, err := f.split(name)
		if err != nil {
			return err
		}
		m := byKey[key]
		if m == nil {
			m = &module{key: key, slots: map[string]string{}, alpha: math.NaN()}
			byKey[key] = m
			keys = append(keys, key)
		}
		m.slots[slot] = name
	}
	if len(keys) == 0 {
		return fmt.Errorf("LoRA %s: the file holds no tensors", f.Path)
	}
	sort.Strings(keys)
	peft := f.peftMetadata()
	for _, k := range keys {
		m := byKey[k]
		if err := f.classify(m, peft); err != nil {
			return err
		}
		f.modules = append(f.modules, m)
	}
	return nil
}

// split cuts a tensor name into its module key and slot.
func (f *File) split(name string) (key, slot string, err error) {
	for _, s := range unsupportedSuffixes {
		if k, ok := strings.CutSuffix(name, s.suffix); ok {
			return "", "", &UnsupportedError{Path: f.Path, Key: k, Variant: s.variant}
		}
	}
	for _, s := range slotSuffixes {
		if k, ok := strings.CutSuffix(name, s.suffix); ok && k != "" {
			return k, s.slot, nil
		}
	}
	info, _ := f.r.Info(name)
	return "", "", fmt.Errorf("LoRA %s: tensor %q (shape %v) is not a LoRA tensor (expected .lora_down/.lora_up/.alpha, "+
		".lora_A/.lora_B, LoHa hada_* or LoKr lokr_* names)", f.Path, name, info.Shape)
}

// classify settles a module's variant, checks that its slots are complete and reads its α.
func (f *File) classify(m *module, peft map[string]peftConfig) error {
	has := func(s string) bool { _, ok := m.slots[s]; return ok }
	switch {
	case has("up") || has("down"):
		m.kind = plainLoRA
		if !has("up") || !has("down") {
			return fmt.Errorf("LoRA %s: %s has only one of the up and down matrices", f.Path, m.key)
		}
	case has("hada_w1_a"), has("hada_w1_b"), has("hada_w2_a"), has("hada_w2_b"):
		m.kind = loHa
		for _, s := range []string{"hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b"} {
			if !has(s) {
				return fmt.Errorf("LoRA %s: LoHa module %s lacks %s", f.Path, m.key, s)
			}
		}
	case has("lokr_w1"), has("lokr_w1_a"), has("lokr_w2"), has("lokr_w2_a"):
		m.kind = loKr
		if !(has("lokr_w1") || has("lokr_w1_a") && has("lokr_w1_b")) || !(has("lokr_w2") || has("lokr_w2_a") && has("lokr_w2_b")) {
			return fmt.Errorf("LoRA %s: LoKr module %s lacks a factor (lokr_w1 or lokr_w1_a/b, lokr_w2 or lokr_w2_a/b)", f.Path, m.key)
		}
	case has("diff"):
		m.kind = fullDiff
	default:
		return fmt.Errorf("LoRA %s: %s has an alpha but no weights", f.Path, m.key)
	}
	if name, ok := m.slots["alpha"]; ok {
		v, err := f.r.Float32(name)
		if err != nil {
			return fmt.Errorf("LoRA %s: %w", f.Path, err)
		}
		if len(v) != 1 {
			return fmt.Errorf("LoRA %s: %s holds %d values, want one", f.Path, name, len(v))
		}
		m.alpha = float64(v[0])
		if math.IsNaN(m.alpha) || math.IsInf(m.alpha, 0) {
			return fmt.Errorf("LoRA %s: %s: alpha %v is not a finite number", f.Path, m.key, m.alpha)
		}
	} else if p, ok := peftFor(m.key, peft); ok {
		m.alpha, m.rslora = p.alpha, p.rslora
	}
	return nil
}

// peftConfig is one component's α from diffusers' lora_adapter_metadata header.
type peftConfig struct {
	prefix string
	alpha  float64
	rslora bool
}

// peftMetadata reads the lora_adapter_metadata header diffusers' save_lora_weights writes:
// {"transformer.lora_alpha": 8, "transformer.r": 4, "text_encoder.lora_alpha": …, "transformer.use_rslora": …}.
// A bare PEFT adapter config ({"lora_alpha": …}) applies to every module.
func (f *File) peftMetadata() map[string]peftConfig {
	raw, ok := f.r.Metadata()["lora_adapter_metadata"]
	if !ok {
		return nil
	}
	var m map[string]any
	if json.Unmarshal([]byte(raw), &m) != nil {
		return nil
	}
	out := map[string]peftConfig{}
	for k, v := range m {
		prefix, field, ok := strings.Cut(k, ".")
		if !ok {
			prefix, field = "", k
		}
		c := out[prefix]
		c.prefix = prefix
		switch field {
		case "lora_alpha":
			if a, ok := v.(float64); ok {
				c.alpha = a
			}
		case "use_rslora":
			c.rslora, _ = v.(bool)
		default:
			continue
		}
		out[prefix] = c
	}
	for p, c := range out {
		if c.alpha == 0 {
			delete(out, p)
		}
	}
	return out
}

// peftFor is the metadata that applies to a module key: its first component's, else the bare one.
func peftFor(key string, peft map[string]peftConfig) (peftConfig, bool) {
	first, _, _ := strings.Cut(key, ".")
	if c, ok := peft[first]; ok {
		return c, true
	}
	c, ok := peft[""]
	return c, ok
}

// Hash is A1111's hash of a LoRA file (extensions-builtin/Lora network.py): the sshs_model_hash the
// trainer wrote into the metadata, else the SHA-256 of everything after the safetensors header
// (sd-scripts' and additional-networks' "addnet" hash); the hex digest in full. The "Lora hashes"
// infotext field shows its first 12 characters.
func Hash(path string) (string, error) {
	r, err := safetensors.Open(path)
	if err != nil {
		return "", fmt.Errorf("LoRA %s: %w", path, err)
	}
	h := r.Metadata()["sshs_model_hash"]
	r.Close()
	if h != "" {
		return h, nil
	}
	fh, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	var n [8]byte
	if _, err := io.ReadFull(fh, n[:]); err != nil {
		return "", fmt.Errorf("LoRA %s: %w", path, err)
	}
	length := binary.LittleEndian.Uint64(n[:])
	if length > 1<<30 {
		return "", errors.New("LoRA " + path + ": header length out of range")
	}
	if _, err := fh.Seek(int64(8+length), io.SeekStart); err != nil {
		return "", err
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, fh); err != nil {
		return "", fmt.Errorf("LoRA %s: %w", path, err)
	}
	return hex.EncodeToString(sum.Sum(nil)), nil
}
