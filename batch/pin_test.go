package batch

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func testPin(sha string, shards int, s Settings) Pin {
	return NewPin("m.jsonl", sha, 3, shards, s, Item{Steps: 28, Width: 1024, Height: 1024})
}

func TestPinBatch(t *testing.T) {
	dir := t.TempDir()
	s := Settings{Model: "sd3", Family: "sd3", RNG: "torch-cpu"}
	items := testItems(3)
	// Shards starting together: one pin wins, all agree.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = PinBatch(dir, testPin("aaaa", 2, s), items, false) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".*.tmp")); len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
	p, err := ReadPin(dir)
	if err != nil || p.ManifestSHA256 != "aaaa" || p.Shards != 2 || p.Defaults.Steps != 28 {
		t.Fatalf("pin %+v, %v", p, err)
	}
	// Two finished items in shard 0's log, recorded under the pinned settings.
	log, err := OpenResultsLog(filepath.Join(dir, Shard{0, 2}.ResultsName()))
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range []Item{items[0], items[2]} {
		if err := log.Append(Record{ID: it.ID, Index: it.Index, Status: StatusOK, Fingerprint: it.Fingerprint(s)}); err != nil {
			t.Fatal(err)
		}
	}
	log.Close()

	// An edited manifest: the message says what changed and which finished items it concerns.
	edited := testItems(3)
	edited[2].Prompt = "p2, edited"
	err = PinBatch(dir, testPin("bbbb", 2, s), edited, false)
	var mm *PinMismatchError
	if !errors.As(err, &mm) || fmt.Sprint(mm.Changed) != "[item-2]" || mm.ShardsChanged ||
		!strings.Contains(err.Error(), "manifest sha256 aaaa… → bbbb…") || !strings.Contains(err.Error(), "1 finished item(s) would draw something else now (item-2)") {
		t.Fatalf("edited manifest: %v", err)
	}
	// Another setting and default.
	s2 := s
	s2.ClipSkip = 2
	p2 := testPin("aaaa", 2, s2)
	p2.Defaults.Steps = 30
	err = PinBatch(dir, p2, items, false)
	if !errors.As(err, &mm) || !strings.Contains(err.Error(), "clip_skip 0 → 2") || !strings.Contains(err.Error(), "default steps 28 → 30") ||
		len(mm.Changed) != 2 {
		t.Fatalf("changed settings: %v", err)
	}
	// A dropped item.
	err = PinBatch(dir, testPin("cccc", 2, s), items[:2], false)
	if !errors.As(err, &mm) || fmt.Sprint(mm.Removed) != "[item-2]" {
		t.Fatalf("dropped item: %v", err)
	}
	// Another shard count is refused even with redoChanged.
	err = PinBatch(dir, testPin("aaaa", 3, s), items, true)
	if !errors.As(err, &mm) || !mm.ShardsChanged || !strings.Contains(err.Error(), "shards 2 → 3") {
		t.Fatalf("shard count: %v", err)
	}
	// redoChanged repins.
	if err := PinBatch(dir, testPin("bbbb", 2, s), edited, true); err != nil {
		t.Fatal(err)
	}
	if p, _ := ReadPin(dir); p.ManifestSHA256 != "bbbb" {
		t.Errorf("after --redo-changed the pin says %s", p.ManifestSHA256)
	}
	if err := PinBatch(dir, testPin("bbbb", 2, s), edited, false); err != nil {
		t.Errorf("same as the new pin: %v", err)
	}
	if _, err := ReadPin(t.TempDir()); !errors.Is(err, ErrNoPin) {
		t.Errorf("empty folder: %v", err)
	}
}

func TestResultsLogLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results-1-of-4.jsonl")
	l, err := OpenResultsLog(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenResultsLog(path)
	var le *LockedError
	if lockSupported {
		if !errors.As(err, &le) || !strings.Contains(le.Holder, fmt.Sprintf("pid %d on ", os.Getpid())) ||
			!strings.HasSuffix(le.Path, "results-1-of-4.lock") {
			t.Fatalf("second open: %v", err)
		}
	}
	l.Close()
	l, err = OpenResultsLog(path)
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	l.Close()
}

func TestCheckOutDir(t *testing.T) {
	for _, c := range []struct {
		dir string
		bad bool
	}{{"out", false}, {"/mnt/s3/run1", false}, {"./a://b", false}, {"s3://bucket/run1", true}, {"gs://b", true}, {"C://out", false}} {
		if err := CheckOutDir(c.dir); (err != nil) != c.bad || c.bad && !errors.Is(err, ErrObjectStorage) {
			t.Errorf("%s: %v", c.dir, err)
		}
	}
}

// TestCheck: a batch of 7 items over 3 shards with one item of each state, a duplicate, an unknown id
// and a results file of another shard count; the merged JSONL and CSV have one row per item.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	s := Settings{Model: "demo", RNG: "torch-cpu"}
	items := testItems(7)
	pin := testPin("aaaa", 3, s)
	if err := PinBatch(dir, pin, items, false); err != nil {
		t.Fatal(err)
	}
	ok := func(it Item) Record {
		os.WriteFile(filepath.Join(dir, it.ID+".png"), []byte("png"), 0o644)
		return Record{ID: it.ID, Index: it.Index, Status: StatusOK, Path: it.ID + ".png", Fingerprint: it.Fingerprint(s),
			Seed: it.Seed, Prompt: it.Prompt, Settings: &pipelineResolved}
	}
	stale := ok(items[3])
	stale.Fingerprint = "0123"
	gone := ok(items[4])
	gone.Path = "gone.png"
	logs := map[int][]Record{
		0: {ok(items[0]), {ID: items[3].ID, Index: 3, Status: StatusError, Error: "boom"}, stale, ok(items[6]), ok(items[6])},
		1: {ok(items[1]), gone},
		2: {{ID: items[2].ID, Index: 2, Status: StatusError, Error: "width\n500"}, {ID: "old-item", Status: StatusOK}},
	}
	for shard, recs := range logs {
		var b strings.Builder
		for _, r := range recs {
			line, _ := json.Marshal(r)
			b.Write(append(line, '\n'))
		}
		os.WriteFile(filepath.Join(dir, Shard{shard, 3}.ResultsName()), []byte(b.String()), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "results-0-of-2.jsonl"), nil, 0o644)
	// items: 0 done, 1 done, 2 failed, 3 stale, 4 missing (file gone), 5 missing (never run), 6 done twice.
	r, err := Check(dir, pin, items, "aaaa")
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, st := range r.Items {
		states = append(states, st.State)
	}
	if got := strings.Join(states, " "); got != "done done failed stale missing missing done" {
		t.Fatalf("states %s", got)
	}
	tot := r.Total
	if tot.Items != 7 || tot.Done != 3 || tot.Missing != 2 || tot.Failed != 1 || tot.Stale != 1 || tot.Dup != 1 || r.OK() {
		t.Errorf("total %+v", tot)
	}
	if c := r.Shards[0]; c.Items != 3 || c.Done != 2 || c.Stale != 1 || c.Dup != 1 || !c.HasResults {
		t.Errorf("shard 0 %+v", c)
	}
	if fmt.Sprint(r.Unknown) != "[old-item]" || fmt.Sprint(r.Foreign) != "[results-0-of-2.jsonl]" || r.ManifestChanged {
		t.Errorf("unknown %v, foreign %v, changed %v", r.Unknown, r.Foreign, r.ManifestChanged)
	}
	if err := r.WriteMerged(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, MergedJSONL))
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	var m Merged
	if len(lines) != 7 || json.Unmarshal([]byte(lines[2]), &m) != nil || m.ID != "item-2" || m.State != StateFailed ||
		m.Error != "width\n500" || m.Shard != 2 {
		t.Fatalf("merged JSONL line 3 %q (%d lines)", lines[2], len(lines))
	}
	f, _ := os.Open(filepath.Join(dir, MergedCSV))
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) != 8 || rows[0][0] != "id" || rows[7][0] != "item-6" || rows[7][3] != "done" || rows[7][19] != "2" ||
		rows[1][10] != "64" {
		t.Fatalf("CSV %v, %v", rows, err)
	}
	// Another manifest: its items show as stale.
	r, _ = Check(dir, pin, append(testItems(1), Item{ID: "item-1", Index: 1, Prompt: "new"}), "bbbb")
	if !r.ManifestChanged || r.Items[1].State != StateStale {
		t.Errorf("changed manifest: %+v", r.Items)
	}
}

var pipelineResolved = pipelineSettings(64)
