package batch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/rflowrt/rflow/pipeline"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// Result statuses.
const (
	StatusOK    = "ok"
	StatusError = "error"
)

// Record is one line of a shard's results file: what happened to one item.
type Record struct {
	ID     string `json:"id"`
	Index  int    `json:"index"`
	Status string `json:"status"` // StatusOK or StatusError
	Error  string `json:"error,omitempty"`
	// Path and Latents are the item's files, relative to the output folder ("" when not written).
	Path    string `json:"path,omitempty"`
	Latents string `json:"latents,omitempty"`
	Seed    uint64 `json:"seed"`
	Prompt  string `json:"prompt"`
	// Settings are the resolved settings of a run of this item alone (BatchSize 1, its seed).
	Settings *pipeline.Resolved `json:"settings,omitempty"`
	Timings  *RecordTiming      `json:"timings,omitempty"`
	// Warnings are the item's warnings, e.g. a truncated prompt.
	Warnings []string `json:"warnings,omitempty"`
	// Fingerprint identifies what the item drew (Item.Fingerprint): a record whose fingerprint differs
	// from the item's now is stale, not done.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Time is when the record was written (RFC 3339).
	Time string `json:"time"`
}

// RecordTiming is where an item's time went. The generation times are those of the whole batch the
// item ran in (BatchSize items together).
type RecordTiming struct {
	BatchSize   int   `json:"batch_size"`
	LoadMS      int64 `json:"load_ms"`
	EncodeMS    int64 `json:"encode_ms"`
	DenoiseMS   int64 `json:"denoise_ms"`
	DecodeMS    int64 `json:"decode_ms"`
	GenerateMS  int64 `json:"generate_ms"`
	WriteMS     int64 `json:"write_ms"`
	PeakRSSByte int64 `json:"peak_rss_bytes"`
}

// ResultsLog is a shard's append-only results file. Each record is one JSON line, written with one
// write and fsynced before Append returns, so after a crash the file holds every record appended
// before it and at most one torn last line, which OpenResultsLog drops.
type ResultsLog struct {
	mu   sync.Mutex
	f    *os.File
	lock *os.File
	path string
	// latest is each item's latest record.
	latest map[string]Record
}

// OpenResultsLog locks the results file at path for this process (the lock file beside it,
// results-I-of-N.lock: a second process gets a LockedError naming the holder), opens it (creating it
// and its folder if needed), reads the records already there and drops a torn last line.
func OpenResultsLog(path string) (*ResultsLog, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o777); err != nil {
		return nil, fmt.Errorf("results log: %w", err)
	}
	lock, err := acquireLock(lockPath(path))
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("results log: %w", err)
	}
	l := &ResultsLog{f: f, lock: lock, path: path, latest: map[string]Record{}}
	if err := l.load(); err != nil {
		f.Close()
		lock.Close()
		return nil, err
	}
	return l, nil
}

// load reads the records, truncates a torn tail and positions the file for appending.
func (l *ResultsLog) load() error {
	data, err := io.ReadAll(l.f)
	if err != nil {
		return fmt.Errorf("results log %s: %w", l.path, err)
	}
	good := bytes.LastIndexByte(data, '\n') + 1
	recs, err := parseRecords(data[:good], l.path)
	if err != nil {
		return err
	}
	for _, r := range recs {
		l.latest[r.ID] = r
	}
	if good < len(data) {
		if err := l.f.Truncate(int64(good)); err != nil {
			return fmt.Errorf("results log %s: drop torn last line: %w", l.path, err)
		}
	}
	if _, err := l.f.Seek(int64(good), io.SeekStart); err != nil {
		return fmt.Errorf("results log %s: %w", l.path, err)
	}
	return nil
}

// parseRecords parses complete JSON lines.
func parseRecords(data []byte, name string) ([]Record, error) {
	var recs []Record
	for n, line := range bytes.Split(data, []byte{'\n'}) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			return nil, fmt.Errorf("results log %s: line %d: %w", name, n+1, err)
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// ReadResults returns every complete record of a results file (a torn last line is ignored).
func ReadResults(path string) ([]Record, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("results log: %w", err)
	}
	return parseRecords(data[:bytes.LastIndexByte(data, '\n')+1], path)
}

// Latest returns an item's latest record, if the log has one.
func (l *ResultsLog) Latest(id string) (Record, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.latest[id]
	return r, ok
}

// Succeeded returns an item's latest record if it records success.
func (l *ResultsLog) Succeeded(id string) (Record, bool) {
	r, ok := l.Latest(id)
	return r, ok && r.Status == StatusOK
}

// Append writes r as one line and fsyncs the file.
func (l *ResultsLog) Append(r Record) error {
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("results log: %w", err)
	}
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return fmt.Errorf("results log %s: %w", l.path, fs.ErrClosed)
	}
	if _, err := l.f.Write(line); err != nil {
		return fmt.Errorf("results log %s: %w", l.path, err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("results log %s: %w", l.path, err)
	}
	l.latest[r.ID] = r
	return nil
}

// Path is the file's path.
func (l *ResultsLog) Path() string { return l.path }

// Close closes the file.
func (l *ResultsLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	if l.lock != nil {
		l.lock.Close() // releases the lock
		l.lock = nil
	}
	if err != nil && !errors.Is(err, fs.ErrClosed) {
		return fmt.Errorf("results log %s: %w", l.path, err)
	}
	return nil
}
