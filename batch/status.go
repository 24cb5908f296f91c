package batch

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// Item states in a status report.
const (
	StateDone    = "done"    // the latest record is a success with the item's fingerprint, and its files exist
	StateMissing = "missing" // no record, or a success whose files are gone
	StateFailed  = "failed"  // the latest record is an error
	StateStale   = "stale"   // the latest success drew another prompt, seed or settings
)

// ItemStatus is one manifest item's state.
type ItemStatus struct {
	Item  Item
	Shard int
	State string
	// Latest is the item's latest record (nil when it has none).
	Latest *Record
	// Successes counts success records with the item's fingerprint over every results file: more than
	// one means it was drawn more than once (a duplicate).
	Successes int
}

// ShardCounts counts one shard's (or the whole batch's) items by state.
type ShardCounts struct {
	Shard                                    Shard
	Items, Done, Missing, Failed, Stale, Dup int
	// Results is the shard's results file name; HasResults whether it exists.
	Results    string
	HasResults bool
}

// Report is a batch's state: every item of the manifest against every results file in the folder.
type Report struct {
	Dir string
	Pin Pin
	// ManifestSHA256 is the manifest's hash now; ManifestChanged whether it differs from the pin's.
	ManifestSHA256  string
	ManifestChanged bool
	Items           []ItemStatus
	Shards          []ShardCounts
	Total           ShardCounts
	// Unknown are ids with success records that are not in the manifest.
	Unknown []string
	// Foreign are results files of another shard count (not this batch's).
	Foreign []string
}

// OK reports whether every item is done.
func (r Report) OK() bool { return r.Total.Done == r.Total.Items }

// Check builds the report of the batch in dir: items is the manifest (parsed with pin.Defaults) and
// manifestSHA256 its hash. Files are looked for relative to dir.
func Check(dir string, pin Pin, items []Item, manifestSHA256 string) (Report, error) {
	r := Report{Dir: dir, Pin: pin, ManifestSHA256: manifestSHA256, ManifestChanged: manifestSHA256 != pin.ManifestSHA256}
	n := pin.Shards
	if n < 1 || n > maxShards {
		return r, fmt.Errorf("batch pin in %s: shard count %d", dir, n)
	}
	type itemRecs struct {
		latest    *Record
		successes map[string]int // by fingerprint
	}
	byID := map[string]*itemRecs{}
	for i := range n {
		name := Shard{i, n}.ResultsName()
		c := ShardCounts{Shard: Shard{i, n}, Results: name}
		recs, err := ReadResults(filepath.Join(dir, name))
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return r, err
		default:
			c.HasResults = true
		}
		r.Shards = append(r.Shards, c)
		for k := range recs {
			rec := &recs[k]
			ir := byID[rec.ID]
			if ir == nil {
				ir = &itemRecs{successes: map[string]int{}}
				byID[rec.ID] = ir
			}
			if rec.Status == StatusOK {
				ir.successes[rec.Fingerprint]++
			}
			// An item's own shard file holds its history; a record elsewhere (another manifest order)
			// counts only for duplicates unless the item has none of its own.
			if rec.Index%n == i || ir.latest == nil {
				ir.latest = rec
			}
		}
	}
	foreign, _ := filepath.Glob(filepath.Join(dir, "results-*-of-*.jsonl"))
	for _, f := range foreign {
		var a, b int
		if _, err := fmt.Sscanf(filepath.Base(f), "results-%d-of-%d.jsonl", &a, &b); err == nil && b != n {
			r.Foreign = append(r.Foreign, filepath.Base(f))
		}
	}
	inManifest := make(map[string]bool, len(items))
	r.Total = ShardCounts{Shard: Shard{0, n}}
	for _, it := range items {
		inManifest[it.ID] = true
		fp := it.Fingerprint(pin.Settings)
		st := ItemStatus{Item: it, Shard: it.Index % n, State: StateMissing}
		if ir := byID[it.ID]; ir != nil {
			st.Latest, st.Successes = ir.latest, ir.successes[fp]
			switch {
			case ir.latest.Status != StatusOK:
				st.State = StateFailed
			case ir.latest.Fingerprint != fp:
				st.State = StateStale
			case filesPresent(dir, *ir.latest):
				st.State = StateDone
			}
		}
		r.Items = append(r.Items, st)
		for _, c := range []*ShardCounts{&r.Shards[st.Shard], &r.Total} {
			c.Items++
			switch st.State {
			case StateDone:
				c.Done++
			case StateMissing:
				c.Missing++
			case StateFailed:
				c.Failed++
			case StateStale:
				c.Stale++
			}
			if st.Successes > 1 {
				c.Dup++
			}
		}
	}
	for id, ir := range byID {
		if !inManifest[id] && len(ir.successes) > 0 {
			r.Unknown = append(r.Unknown, id)
		}
	}
	slices.Sort(r.Unknown)
	return r, nil
}

// filesPresent reports whether the files a success record names exist in dir.
func filesPresent(dir string, rec Record) bool {
	if rec.Path == "" {
		return false
	}
	for _, n := range []string{rec.Path, rec.Latents} {
		if n == "" {
			continue
		}
		if st, err := os.Stat(filepath.Join(dir, n)); err != nil || !st.Mode().IsRegular() {
			return false
		}
	}
	return true
}

// Merged is one line of a merged results file: an item's state and its latest record.
type Merged struct {
	State string `json:"state"`
	Shard int    `json:"shard"`
	// Successes counts the item's success records with its fingerprint (> 1: drawn more than once).
	Successes int `json:"successes"`
	Record
}

// MergedJSONL and MergedCSV are the names of the merged results files WriteMerged writes into the
// batch's folder.
const (
	MergedJSONL = "results.jsonl"
	MergedCSV   = "results.csv"
)

// WriteMerged writes the report's items, in manifest order, as MergedJSONL (one Merged object per
// line) and MergedCSV (one row per item, for spreadsheets) into the batch's folder, each atomically.
func (r Report) WriteMerged() error {
	if err := writeAtomic(filepath.Join(r.Dir, MergedJSONL), r.writeJSONL); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(r.Dir, MergedCSV), r.writeCSV)
}

func (r Report) merged(st ItemStatus) Merged {
	m := Merged{State: st.State, Shard: st.Shard, Successes: st.Successes}
	if st.Latest != nil {
		m.Record = *st.Latest
	} else {
		m.Record = Record{ID: st.Item.ID, Index: st.Item.Index, Seed: st.Item.Seed, Prompt: st.Item.Prompt}
	}
	return m
}

func (r Report) writeJSONL(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, st := range r.Items {
		if err := enc.Encode(r.merged(st)); err != nil {
			return err
		}
	}
	return nil
}

// csvHeader are MergedCSV's columns.
var csvHeader = []string{"id", "index", "shard", "state", "status", "path", "latents", "seed", "prompt", "negative_prompt",
	"width", "height", "steps", "sampler", "scheduler", "cfg_scale", "guidance", "shift", "generate_ms", "successes", "time",
	"error"}

func (r Report) writeCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	num := func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
	for _, st := range r.Items {
		m := r.merged(st)
		row := []string{m.ID, strconv.Itoa(m.Index), strconv.Itoa(m.Shard), m.State, m.Status, m.Path, m.Latents,
			strconv.FormatUint(m.Seed, 10), m.Prompt, st.Item.NegativePrompt, "", "", "", "", "", "", "", "", "",
			strconv.Itoa(m.Successes), m.Time, m.Error}
		if s := m.Settings; s != nil {
			copy(row[10:18], []string{strconv.Itoa(s.Width), strconv.Itoa(s.Height), strconv.Itoa(s.Steps), s.Sampler, s.Scheduler,
				num(s.CFGScale), num(s.Guidance), num(s.Shift)})
		}
		if m.Timings != nil {
			row[18] = strconv.FormatInt(m.Timings.GenerateMS, 10)
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// writeAtomic writes path through a synced temporary file renamed into place.
func writeAtomic(path string, fill func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	_ = f.Chmod(0o644)
	err = fill(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("merge %s: %w", path, err)
	}
	return nil
}
