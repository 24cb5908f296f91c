package batch

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/pipeline"
)

// fakeGenerator draws 8×8 black images and 1×1×1 latents, and fails as told: fail(prompt) returns an
// error for that item.
type fakeGenerator struct {
	calls int
	fail  func(prompt string) error
}

func (g *fakeGenerator) Generate(_ context.Context, r pipeline.Request, _ func(pipeline.Event)) (pipeline.Result, error) {
	g.calls++
	var res pipeline.Result
	for _, it := range r.Items {
		if g.fail != nil {
			if err := g.fail(it.Prompt); err != nil {
				return res, err
			}
		}
		res.Images = append(res.Images, image.NewNRGBA(image.Rect(0, 0, 8, 8)))
		res.Noise = append(res.Noise, float32(it.Seed))
		res.Latents = append(res.Latents, float32(it.Seed)+0.5)
	}
	res.Settings = pipeline.Resolved{Width: 8, Height: 8, Steps: r.Steps}
	return res, nil
}

func fakeModel() *pipeline.Model {
	m := &pipeline.Model{Name: "fake", Family: "sd3"}
	m.VAE.LatentChannels, m.VAE.ScaleFactor = 1, 8
	return m
}

// items is n items "p0", "p1", … with seeds 0, 1, ….
func testItems(n int) []Item {
	var out []Item
	for i := range n {
		out = append(out, Item{ID: fmt.Sprintf("item-%d", i), Index: i, Prompt: fmt.Sprintf("p%d", i), Seed: uint64(i), Steps: 4})
	}
	return out
}

// runOnce opens dir's results log for shard 0/1, runs items and closes the log.
func runOnce(t *testing.T, dir string, g Generator, items []Item, o Options) (Summary, error) {
	t.Helper()
	log, err := OpenResultsLog(filepath.Join(dir, Shard{0, 1}.ResultsName()))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	if o.Model == nil {
		o.Model = fakeModel()
	}
	if o.Write == nil {
		o.Write = func(it Item, _ ItemOutput) (ItemFiles, error) { return ItemFiles{Image: it.ID + ".png"}, nil }
	}
	return Run(context.Background(), g, items, log, o)
}

// A model component that cannot load stops the run at the first item: no record blames the items.
func TestRunStopsAtLoadFailure(t *testing.T) {
	dir := t.TempDir()
	loadErr := fmt.Errorf("pipeline: load transformer: %w", errors.Join(pipeline.ErrLoad, errors.New("no CUDA")))
	g := &fakeGenerator{fail: func(string) error { return loadErr }}
	sum, err := runOnce(t, dir, g, testItems(5), Options{BatchSize: 2})
	var re *RunError
	if !errors.As(err, &re) || re.Item != "item-0" || !errors.Is(err, pipeline.ErrLoad) {
		t.Fatalf("err %v, want a RunError at item-0 wrapping ErrLoad", err)
	}
	if g.calls != 1 || sum.Failed != 0 || sum.Succeeded != 0 {
		t.Errorf("%d calls, summary %+v; want 1 call and nothing recorded", g.calls, sum)
	}
	if recs, _ := ReadResults(filepath.Join(dir, "results-0-of-1.jsonl")); len(recs) != 0 {
		t.Errorf("records %+v, want none", recs)
	}
}

// An item's own failure is recorded and the others go on (a failed batch is retried item by item).
func TestRunRecordsItemFailures(t *testing.T) {
	dir := t.TempDir()
	g := &fakeGenerator{fail: func(p string) error {
		if p == "p1" {
			return errors.New("width 500 is not a multiple of 16")
		}
		return nil
	}}
	sum, err := runOnce(t, dir, g, testItems(4), Options{BatchSize: 4})
	if err != nil || sum.Succeeded != 3 || sum.Failed != 1 {
		t.Fatalf("summary %+v, err %v", sum, err)
	}
	recs, _ := ReadResults(filepath.Join(dir, "results-0-of-1.jsonl"))
	if len(recs) != 4 || recs[1].ID != "item-1" || recs[1].Status != StatusError || recs[1].Fingerprint == "" {
		t.Fatalf("records %+v", recs)
	}
}

// An output folder that refuses files stops the run: every later item would fail the same way.
func TestRunStopsAtUnwritableOutput(t *testing.T) {
	dir := t.TempDir()
	writes := 0
	write := func(it Item, _ ItemOutput) (ItemFiles, error) {
		writes++
		return ItemFiles{}, fmt.Errorf("write %s.png: %w", it.ID, fs.ErrPermission)
	}
	_, err := runOnce(t, dir, &fakeGenerator{}, testItems(3), Options{Write: write})
	var re *RunError
	if !errors.As(err, &re) || writes != 1 {
		t.Fatalf("err %v after %d writes; want a RunError after 1", err, writes)
	}
}

// A finished item whose prompt or settings changed is neither skipped nor silently redrawn: Run
// refuses, and with RedoChanged draws exactly the changed items again.
func TestRunChangedItems(t *testing.T) {
	dir := t.TempDir()
	items := testItems(3)
	s := Settings{Model: "fake", RNG: "torch-cpu"}
	if _, err := runOnce(t, dir, &fakeGenerator{}, items, Options{Settings: s}); err != nil {
		t.Fatal(err)
	}
	g := &fakeGenerator{}
	sum, err := runOnce(t, dir, g, items, Options{Settings: s})
	if err != nil || sum.Skipped != 3 || g.calls != 0 {
		t.Fatalf("rerun: %+v, %v, %d calls", sum, err, g.calls)
	}
	items[1].Prompt = "p1, edited"
	_, err = runOnce(t, dir, g, items, Options{Settings: s})
	var mm *PinMismatchError
	if !errors.As(err, &mm) || fmt.Sprint(mm.Changed) != "[item-1]" || g.calls != 0 {
		t.Fatalf("edited item: err %v (%+v), %d calls", err, mm, g.calls)
	}
	sum, err = runOnce(t, dir, g, items, Options{Settings: s, RedoChanged: true})
	if err != nil || sum.Succeeded != 1 || sum.Skipped != 2 {
		t.Fatalf("--redo-changed: %+v, %v", sum, err)
	}
	s.RNG = "philox" // a run-wide setting changes every item
	_, err = runOnce(t, dir, g, items, Options{Settings: s})
	if !errors.As(err, &mm) || len(mm.Changed) != 3 {
		t.Fatalf("changed rng: %v", err)
	}
}

func TestFingerprint(t *testing.T) {
	it := Item{ID: "a", Index: 3, Prompt: "a cat", Seed: 7, Steps: 20, Width: 512, Height: 512, CFGScale: 4.5}
	s := Settings{Model: "sd3", Family: "sd3", RNG: "torch-cpu"}
	fp := it.Fingerprint(s)
	if len(fp) != 32 {
		t.Fatalf("fingerprint %q", fp)
	}
	moved := it
	moved.ID, moved.Index = "b", 9
	if moved.Fingerprint(s) != fp {
		t.Error("the id or position changed the fingerprint")
	}
	for name, change := range map[string]func(*Item, *Settings){
		"prompt":   func(i *Item, _ *Settings) { i.Prompt = "a dog" },
		"negative": func(i *Item, _ *Settings) { i.NegativePrompt = "blurry" },
		"seed":     func(i *Item, _ *Settings) { i.Seed = 8 },
		"steps":    func(i *Item, _ *Settings) { i.Steps = 21 },
		"cfg":      func(i *Item, _ *Settings) { i.CFGScale = 5 },
		"sampler":  func(i *Item, _ *Settings) { i.Sampler = "heun" },
		"model":    func(_ *Item, s *Settings) { s.Model = "flux" },
		"clipskip": func(_ *Item, s *Settings) { s.ClipSkip = 2 },
		"rule":     func(_ *Item, s *Settings) { s.GuidanceRule = "apg" },
	} {
		i2, s2 := it, s
		change(&i2, &s2)
		if i2.Fingerprint(s2) == fp {
			t.Errorf("changing the %s keeps the fingerprint", name)
		}
	}
	if !strings.EqualFold(fp, it.Fingerprint(s)) {
		t.Error("fingerprint not deterministic")
	}
}
