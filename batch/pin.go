package batch

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// PinFile is the file in a batch's output folder that pins it to one manifest and one set of
// settings. The first shard to start writes it; every later shard (and rflow batch status) checks
// against it.
const PinFile = "rflow-batch.json"

// pinFormat names the pin file's layout.
const pinFormat = "rflow-batch-pin/1"

// Pin is what a batch's output folder was started with.
type Pin struct {
	Format string `json:"format"`
	// ManifestSHA256 is the hex SHA-256 of the manifest file's bytes; Manifest its path as first given
	// (for people; paths differ between nodes).
	ManifestSHA256 string `json:"manifest_sha256"`
	Manifest       string `json:"manifest"`
	// Items is the manifest's item count, Shards the batch's shard count N.
	Items  int `json:"items"`
	Shards int `json:"shards"`
	// Settings are the run-wide settings; Defaults the item defaults the flags gave (what items
	// without a setting of their own took).
	Settings Settings `json:"settings"`
	Defaults Item     `json:"defaults"`
	// LoRADir is the folder the prompts' <lora:NAME:WEIGHT> tags were looked up in (for status, which
	// reads the manifest as the runs did; not compared).
	LoRADir string `json:"lora_dir,omitempty"`
	Created string `json:"created"`
}

// NewPin is the pin of a run.
func NewPin(manifestPath, manifestSHA256 string, items, shards int, s Settings, defaults Item) Pin {
	defaults.ID, defaults.Index, defaults.Prompt = "", 0, ""
	return Pin{Format: pinFormat, ManifestSHA256: manifestSHA256, Manifest: manifestPath, Items: items, Shards: shards,
		Settings: s, Defaults: defaults, Created: time.Now().UTC().Format(time.RFC3339)}
}

// HashReader returns r's hex SHA-256 and its bytes read through fn (fn may stop early: the rest is
// hashed too).
func HashReader(r io.Reader, fn func(io.Reader) error) (string, error) {
	h := sha256.New()
	if err := fn(io.TeeReader(r, h)); err != nil {
		return "", err
	}
	if _, err := io.Copy(h, r); err != nil {
		return "", fmt.Errorf("manifest: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ErrNoPin is wrapped by ReadPin's error when the folder has no pin file (no shard started yet).
var ErrNoPin = errors.New("no batch started in this folder")

// ReadPin reads dir's pin file.
func ReadPin(dir string) (Pin, error) {
	path := filepath.Join(dir, PinFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Pin{}, fmt.Errorf("%s: %w (no %s)", dir, ErrNoPin, PinFile)
	}
	if err != nil {
		return Pin{}, fmt.Errorf("batch pin: %w", err)
	}
	var p Pin
	if err := json.Unmarshal(data, &p); err != nil {
		return Pin{}, fmt.Errorf("batch pin %s: %w", path, err)
	}
	if p.Format != pinFormat {
		return Pin{}, fmt.Errorf("batch pin %s: format %q, want %q", path, p.Format, pinFormat)
	}
	return p, nil
}

// PinMismatchError says how a run differs from the batch its output folder holds.
type PinMismatchError struct {
	Dir string
	// Changes are the differences, "what: pinned → now" (the manifest, a setting, the shard count).
	Changes []string
	// ShardsChanged: the shard count differs (which regenerating cannot reconcile).
	ShardsChanged bool
	// Changed are finished items that would now draw something else; Removed finished items no longer
	// in the manifest (ids, in the manifest's order or the results' order).
	Changed, Removed []string
}

func (e *PinMismatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the batch in %s was started with another ", e.Dir)
	if e.ShardsChanged {
		b.WriteString("shard count")
	} else {
		b.WriteString("manifest or settings")
	}
	fmt.Fprintf(&b, ": %s", strings.Join(e.Changes, ", "))
	if len(e.Changed) > 0 {
		fmt.Fprintf(&b, "; %d finished item(s) would draw something else now (%s)", len(e.Changed), listIDs(e.Changed))
	}
	if len(e.Removed) > 0 {
		fmt.Fprintf(&b, "; %d finished item(s) are no longer in the manifest (%s)", len(e.Removed), listIDs(e.Removed))
	}
	return b.String()
}

// listIDs is the first few ids, then how many more.
func listIDs(ids []string) string {
	const show = 5
	if len(ids) <= show {
		return strings.Join(ids, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ids[:show], ", "), len(ids)-show)
}

// PinBatch pins dir to p, or checks p against the pin already there. A first run writes p (atomically:
// of shards starting together, one pin wins and the others compare with it). A differing shard count
// is always a PinMismatchError. A differing manifest or settings is one too unless redoChanged, which
// replaces the pin with p so that the changed items are regenerated (Run redoes items whose records
// carry another fingerprint). items are the run's items (the new manifest), used to name the
// finished items that changed.
func PinBatch(dir string, p Pin, items []Item, redoChanged bool) error {
	old, err := ReadPin(dir)
	if errors.Is(err, ErrNoPin) {
		if err := createPin(dir, p); !errors.Is(err, fs.ErrExist) {
			return err
		}
		old, err = ReadPin(dir) // another shard pinned it first
	}
	if err != nil {
		return err
	}
	changes := pinChanges(old, p)
	if len(changes) == 0 {
		return nil
	}
	mismatch := &PinMismatchError{Dir: dir, Changes: changes, ShardsChanged: old.Shards != p.Shards}
	if mismatch.ShardsChanged {
		return mismatch
	}
	if redoChanged {
		return replacePin(dir, p)
	}
	recs, err := readAllResults(dir, old.Shards)
	if err != nil {
		return err
	}
	mismatch.Changed, mismatch.Removed = changedItems(items, p.Settings, recs)
	return mismatch
}

// pinChanges lists how now differs from old ("steps: 28 → 30").
func pinChanges(old, now Pin) []string {
	var out []string
	if old.ManifestSHA256 != now.ManifestSHA256 {
		out = append(out, fmt.Sprintf("manifest sha256 %.12s… → %.12s…", old.ManifestSHA256, now.ManifestSHA256))
	}
	if old.Shards != now.Shards {
		out = append(out, fmt.Sprintf("shards %d → %d", old.Shards, now.Shards))
	}
	out = append(out, fieldChanges("", old.Settings, now.Settings)...)
	return append(out, fieldChanges("default ", old.Defaults, now.Defaults)...)
}

// fieldChanges compares the JSON fields of a and b.
func fieldChanges(prefix string, a, b any) []string {
	am, bm := jsonFields(a), jsonFields(b)
	var keys []string
	for k := range am {
		keys = append(keys, k)
	}
	for k := range bm {
		if _, ok := am[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var out []string
	for _, k := range keys {
		if string(am[k]) != string(bm[k]) {
			out = append(out, fmt.Sprintf("%s%s %s → %s", prefix, k, orNone(am[k]), orNone(bm[k])))
		}
	}
	return out
}

func jsonFields(v any) map[string]json.RawMessage {
	m := map[string]json.RawMessage{}
	if data, err := json.Marshal(v); err == nil {
		_ = json.Unmarshal(data, &m)
	}
	return m
}

func orNone(v json.RawMessage) string {
	if len(v) == 0 {
		return "(none)"
	}
	return string(v)
}

// changedItems compares the latest success records with items: ids whose fingerprint differs, and
// ids no longer in items.
func changedItems(items []Item, s Settings, recs map[string]Record) (changed, removed []string) {
	inManifest := make(map[string]bool, len(items))
	for _, it := range items {
		inManifest[it.ID] = true
		if r, ok := recs[it.ID]; ok && r.Status == StatusOK && r.Fingerprint != it.Fingerprint(s) {
			changed = append(changed, it.ID)
		}
	}
	for id, r := range recs {
		if !inManifest[id] && r.Status == StatusOK {
			removed = append(removed, id)
		}
	}
	slices.Sort(removed)
	return changed, removed
}

// readAllResults reads every results file of a batch of n shards in dir: the latest record per id.
func readAllResults(dir string, n int) (map[string]Record, error) {
	latest := map[string]Record{}
	for i := range n {
		recs, err := ReadResults(filepath.Join(dir, Shard{i, n}.ResultsName()))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			latest[r.ID] = r
		}
	}
	return latest, nil
}

// createPin writes p as dir's pin file unless one exists (fs.ErrExist): written to a temporary file
// and hard-linked into place, so no reader sees half a pin.
func createPin(dir string, p Pin) error {
	tmp, err := writeTemp(dir, p)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	final := filepath.Join(dir, PinFile)
	err = os.Link(tmp, final)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrExist):
		return fs.ErrExist
	}
	// No hard links on this file system (some FUSE mounts): create it exclusively instead.
	data, _ := os.ReadFile(tmp)
	f, err := os.OpenFile(final, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if errors.Is(err, fs.ErrExist) {
		return fs.ErrExist
	}
	if err != nil {
		return fmt.Errorf("batch pin: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("batch pin: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("batch pin: %w", err)
	}
	return f.Close()
}

// replacePin writes p over dir's pin file atomically.
func replacePin(dir string, p Pin) error {
	tmp, err := writeTemp(dir, p)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, PinFile)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("batch pin: %w", err)
	}
	return nil
}

// writeTemp writes p into a synced temporary file in dir and returns its path.
func writeTemp(dir string, p Pin) (string, error) {
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return "", fmt.Errorf("batch pin: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+PinFile+".*.tmp")
	if err != nil {
		return "", fmt.Errorf("batch pin: %w", err)
	}
	_ = f.Chmod(0o644) // CreateTemp's 0600 would hide the pin from other users' status checks
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("batch pin: %w", err)
	}
	return f.Name(), nil
}
