package compiler

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/rflowrt/rflow/internal/compiler/arch"
	"github.com/rflowrt/rflow/internal/linkdir"
)

// componentKey identifies one compiled component folder: the graph version, the folder name, its
// config, the weights' identity (the source file's fingerprint, and the LoRAs and weights merged into
// it) and the weight kind with the quantizer's settings. Two compiled models whose component keys
// agree hold the same files for it, so a new compilation links them instead of streaming the weights
// again: switching a LoRA or its weight rewrites only the components it patches (the transformer, and
// the text encoders a LoRA has parts for); the others (T5, VAE, …) come from the folder compiled before.
func (c *Checkpoint) componentKey(comp component, k arch.WeightKind) string {
	var q *quantKey
	if k.Quantized() {
		qk := newQuantKey(k)
		q = &qk
	}
	b, _ := json.Marshal(struct {
		Version, Dir, Identity string
		Kind                   arch.WeightKind
		Quant                  *quantKey `json:",omitempty"`
		Config                 arch.Config
	}{GraphVersion, comp.dir, comp.part.identity, k, q, c.componentConfig(comp)})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// donors lists the complete compiled folders under root by the component keys their manifests record:
// component key → the folder holding that component.
func donors(root string) map[string]string {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, e := range ents {
		dir := filepath.Join(root, e.Name())
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") || !Complete(dir) {
			continue
		}
		m, err := readManifest(dir)
		if err != nil {
			continue
		}
		for comp, key := range m.Components {
			if _, ok := out[key]; !ok {
				out[key] = filepath.Join(dir, comp)
			}
		}
	}
	return out
}

func readManifest(dir string) (manifest, error) {
	var m manifest
	b, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		return m, err
	}
	return m, json.Unmarshal(b, &m)
}

// linkComponent fills dst with the files of a donor's component folder: hard links (no data copied, no
// extra disk), or copies where links are not possible.
func linkComponent(src, dst string) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	n := 0
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		if err := linkdir.LinkOrCopy(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return errors.New("no files in " + src)
	}
	return nil
}
