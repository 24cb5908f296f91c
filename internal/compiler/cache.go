package compiler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/rflowrt/rflow/internal/compiler/arch"
)

// manifestName is the file a complete compiled folder ends with: every other file and its size. It is
// written last, inside the temporary folder, before the rename; a folder without a valid manifest, or
// whose files disagree with it, is not used.
const manifestName = "rflow-compiled.json"

type manifest struct {
	GraphVersion string           `json:"graph_version"`
	Files        map[string]int64 `json:"files"`
	// Components are the component folders' keys (componentKey), for later compilations to link.
	Components map[string]string `json:"components,omitempty"`
}

func writeManifest(root string, components map[string]string) error {
	m := manifest{GraphVersion: GraphVersion, Files: map[string]int64{}, Components: components}
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		m.Files[filepath.ToSlash(rel)] = info.Size()
		return nil
	})
	if err != nil {
		return err
	}
	return writeJSON(filepath.Join(root, manifestName), m)
}

// Complete reports whether dir is a whole compiled folder of this rflow's graph version: its manifest
// reads and every file it lists is there with its size. (Sizes, not hashes: hashing a 20 GB folder on
// every start would cost more than a rebuild saves. A file cut short or replaced by one of another size
// is caught; the ONNX loader catches a corrupt graph.)
func Complete(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		return false
	}
	var m manifest
	if json.Unmarshal(b, &m) != nil || m.GraphVersion != GraphVersion || len(m.Files) == 0 {
		return false
	}
	for rel, size := range m.Files {
		st, err := os.Stat(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil || !st.Mode().IsRegular() || st.Size() != size {
			return false
		}
	}
	return true
}

// Key identifies a compiled folder: the graph version, the weight kinds (and the quantizer's settings)
// and, for every component, its role, class, config and source file's fingerprint (header and sampled
// data, cheap for 20 GB files). The execution provider does not enter it: the graphs are the same for
// every provider; Weights ("fp16" for GPU providers) does.
func (c *Checkpoint) Key(o Options) (string, error) {
	ks, err := o.kinds()
	if err != nil {
		return "", err
	}
	type part struct {
		Role, Class, Identity string
		Config                map[string]any
	}
	var parts []part
	for _, p := range c.Parts {
		parts = append(parts, part{Role: string(p.Role), Class: p.Class, Identity: p.identity, Config: p.Config})
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].Role < parts[j].Role })
	var quants []quantKey
	for _, k := range []arch.WeightKind{ks.transformer, ks.text} {
		if k.Quantized() {
			quants = append(quants, newQuantKey(k))
		}
	}
	b, err := json.Marshal(struct {
		Version                   string
		Weights, TextWeights, VAE arch.WeightKind
		Quant                     []quantKey `json:",omitempty"`
		Family, Variant, Folder   string
		Parts                     []part
	}{GraphVersion, ks.transformer, ks.text, ks.vae, quants, c.Family, c.Variant, c.folderIdentity(), parts})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	name := c.Variant + "-" + string(ks.transformer)
	if def, _ := (Options{Weights: o.Weights}).kinds(); ks.text != def.text {
		name += "-te-" + string(ks.text)
	}
	return name + "-" + hex.EncodeToString(sum[:12]), nil
}

// folderIdentity covers the non-weight files a diffusers folder contributes (model index, scheduler
// config, tokenizers): their contents are small, so they are hashed whole.
func (c *Checkpoint) folderIdentity() string {
	if c.Folder == "" {
		return ""
	}
	h := sha256.New()
	for _, rel := range []string{"model_index.json", "scheduler/scheduler_config.json", "tokenizer", "tokenizer_2", "tokenizer_3"} {
		p := filepath.Join(c.Folder, rel)
		filepath.WalkDir(p, func(q string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return nil
			}
			b, err := os.ReadFile(q)
			if err == nil {
				fmt.Fprintf(h, "%s %d\n", q[len(c.Folder):], len(b))
				h.Write(b)
			}
			return nil
		})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// abandonedAfter is how old a temporary folder of an unfinished compilation must be before another
// compilation of the same model removes it: older than any conversion still running (a 12B model takes
// minutes), so only the leftovers of a killed process go — each one as large as the model.
const abandonedAfter = 6 * time.Hour

// removeAbandoned removes the temporary folders Write left beside dir (".<name>.partial-*") that were last
// modified before cutoff.
func removeAbandoned(dir string, cutoff time.Time) {
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".partial-*"))
	for _, m := range matches {
		if st, err := os.Stat(m); err == nil && st.ModTime().Before(cutoff) {
			_ = os.RemoveAll(m)
		}
	}
}

// CacheDir is the default root of compiled models: $XDG_CACHE_HOME/rflow/compiled (os.UserCacheDir).
func CacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache folder for compiled models: %w", err)
	}
	return filepath.Join(d, "rflow", "compiled"), nil
}

// Cached returns the compiled folder of c under root, compiling it first when there is no complete
// one (a partial or damaged entry is removed and rebuilt). built reports whether it compiled.
func Cached(ctx context.Context, c *Checkpoint, root string, o Options) (dir string, built bool, err error) {
	key, err := c.Key(o)
	if err != nil {
		return "", false, err
	}
	dir = filepath.Join(root, key)
	if Complete(dir) {
		now := time.Now()
		_ = os.Chtimes(dir, now, now) // last use, for whoever prunes the cache
		return dir, false, nil
	}
	if _, err := os.Stat(dir); err == nil {
		if err := os.RemoveAll(dir); err != nil {
			return "", false, fmt.Errorf("remove damaged compiled model %s: %w", dir, err)
		}
	}
	removeAbandoned(dir, time.Now().Add(-abandonedAfter))
	o.donors = donors(root) // components another compiled model already holds are linked, not rebuilt
	err = Write(ctx, c, dir, o)
	if errors.Is(err, fs.ErrExist) || (err != nil && Complete(dir)) {
		return dir, false, nil // another process finished it first
	}
	if err != nil {
		return "", false, err
	}
	return dir, true, nil
}

// quantKey is the part of a cache key that quantFor decides: the kind's block sizes, accuracy levels,
// int8's weight range (the last two depend on the CPU) and the rule (quantRecipe) choosing q4's 8-bit
// layers.
type quantKey struct {
	Kind                             arch.WeightKind
	BlockSize, AccuracyLevel         int
	Wide                             string `json:",omitempty"`
	WideBlockSize, WideAccuracyLevel int    `json:",omitempty"`
	FullRange                        bool   `json:",omitempty"`
}

func newQuantKey(k arch.WeightKind) quantKey {
	q := quantFor(k)
	key := quantKey{Kind: q.Kind, BlockSize: q.BlockSize, AccuracyLevel: q.AccuracyLevel, FullRange: q.FullRange}
	if q.Wide != nil {
		key.Wide, key.WideBlockSize, key.WideAccuracyLevel = quantRecipe, q.WideBlockSize, q.WideAccuracyLevel
	}
	return key
}
