package main

import (
	"bytes"
	"fmt"
	"github.com/rflowrt/rflow/batch"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rflowrt/rflow/internal/safetensors"
	"github.com/rflowrt/rflow/internal/testmodels"
)

// writeManifest writes lines to a manifest file and returns its path.
func writeManifest(t *testing.T, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "manifest.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// demoManifest is n JSONL items over a few demo prompts.
func demoManifest(t *testing.T, n int) string {
	prompts := []string{"a green star on a black background", "a red circle", "a white ring on a purple background", "stripes"}
	var lines []string
	for i := range n {
		lines = append(lines, fmt.Sprintf(`{"prompt": %q}`, prompts[i%len(prompts)]))
	}
	return writeManifest(t, lines...)
}

// readLog returns a results file's records.
func readLog(t *testing.T, path string) []batch.Record {
	t.Helper()
	recs, err := batch.ReadResults(path)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// snapshot maps every file of dir but the results logs' lock files to its modification time and size.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".lock") { // a run writes its pid there
			continue
		}
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = fmt.Sprint(info.ModTime().UnixNano(), info.Size())
	}
	return out
}

func TestBatchDemoRerunRewritesNothing(t *testing.T) {
	lib := needORT(t)
	out := t.TempDir()
	manifest := writeManifest(t, "a green star on a black background", "# comment", "", "a red circle on a white background")
	args := []string{"batch", "--ort-lib", lib, "--manifest", manifest, "--out", out, "-W", "128", "-H", "128", "--steps", "6",
		"--batch-size", "2", "--save-latents", "-q"}
	code, _, errOut := runCLI(args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	recs := readLog(t, filepath.Join(out, "results-0-of-1.jsonl"))
	if len(recs) != 2 || recs[0].Status != "ok" || recs[0].Path != "item-000000.png" || recs[1].Seed != 1 {
		t.Fatalf("records %+v", recs)
	}
	if got := classifyPNG(t, filepath.Join(out, "item-000000.png")).String(); got != "green star on black" {
		t.Errorf("item 0 drew %q", got)
	}
	f, err := safetensors.ReadFile(filepath.Join(out, "item-000001.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	noise, _ := f.Tensor("noise")
	latent, _ := f.Tensor("latent")
	if fmt.Sprint(noise.Shape) != "[16 16 16]" || fmt.Sprint(latent.Shape) != "[16 16 16]" || f.Metadata["seed"] != "1" ||
		f.Metadata["prompt"] != "a red circle on a white background" {
		t.Fatalf("latents file: noise %v latent %v metadata %v", noise.Shape, latent.Shape, f.Metadata)
	}
	before := snapshot(t, out)
	time.Sleep(20 * time.Millisecond)
	if code, _, errOut := runCLI(args...); code != 0 {
		t.Fatalf("rerun: exit %d: %s", code, errOut)
	}
	if after := snapshot(t, out); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("rerun changed the folder:\nbefore %v\nafter  %v", before, after)
	}
	// A missing image is redrawn, and only that one.
	os.Remove(filepath.Join(out, "item-000001.png"))
	if code, _, errOut := runCLI(args...); code != 0 {
		t.Fatalf("rerun: exit %d: %s", code, errOut)
	}
	if recs := readLog(t, filepath.Join(out, "results-0-of-1.jsonl")); len(recs) != 3 || recs[2].ID != "item-000001" {
		t.Fatalf("after removing an image: %+v", recs)
	}
}

func TestBatchFailedItem(t *testing.T) {
	lib := needORT(t)
	out := t.TempDir()
	manifest := writeManifest(t, `{"prompt": "a red circle", "id": "good-a"}`, `{"prompt": "a red circle", "id": "bad", "width": 500}`,
		`{"prompt": "a blue star", "id": "good-b", "seed": 9}`)
	code, _, errOut := runCLI("batch", "--ort-lib", lib, "--manifest", manifest, "--out", out, "-W", "64", "-H", "64",
		"--steps", "3", "--batch-size", "4")
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, errOut)
	}
	if !strings.Contains(errOut, "3 items: 2 done now, 0 already done, 1 failed") {
		t.Errorf("no summary line: %s", errOut)
	}
	byID := map[string]batch.Record{}
	for _, r := range readLog(t, filepath.Join(out, "results-0-of-1.jsonl")) {
		byID[r.ID] = r
	}
	if byID["bad"].Status != "error" || !strings.Contains(byID["bad"].Error, "width 500") || byID["good-a"].Status != "ok" ||
		byID["good-b"].Status != "ok" || byID["good-b"].Seed != 9 {
		t.Fatalf("records %+v", byID)
	}
	if _, err := os.Stat(filepath.Join(out, "bad.png")); err == nil {
		t.Error("the failed item has an image")
	}
}

func TestBatchUsageErrors(t *testing.T) {
	manifest := writeManifest(t, `{"prompt": "a", "colour": "red"}`)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--out", "x"}, "--manifest and --out are required"},
		{[]string{"--manifest", manifest, "--out", t.TempDir()}, `line 1: unknown field "colour"`},
		{[]string{"--manifest", manifest, "--out", "x", "-p", "a cat"}, "--prompt is a txt2img flag"},
		{[]string{"--manifest", manifest, "--out", "x", "--shard", "3/3"}, "index 3 is outside"},
		{[]string{"--manifest", manifest, "--out", "x", "--shard", "0/3", "--shards", "4"}, "disagree on the shard count"},
		{[]string{"--manifest", manifest, "--out", "x", "--shards", "4"}, "a shard count of 4 but no index"},
		{[]string{"--manifest", manifest, "--out", "s3://bucket/run1"}, "s3://bucket/run1: object storage is not a folder (a batch needs atomic renames, appends and locks); mount the bucket"},
	} {
		code, _, errOut := runCLI(append([]string{"batch"}, c.args...)...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", c.args, code, errOut, c.want)
		}
	}
}

// TestBatchBatchedEqualsSingle: on a random-weight SD3 fixture, --batch-size 3 writes the same image
// and latents bytes as --batch-size 1.
func TestBatchBatchedEqualsSingle(t *testing.T) {
	lib := needORT(t)
	model := testmodels.Cached(t, testmodels.Options{Kind: testmodels.KindSD3, Size: testmodels.SizeTiny})
	manifest := writeManifest(t, `{"prompt": "a red fox", "count": 2}`, `{"prompt": "a blue bird", "seed": 40}`,
		`{"prompt": "a red fox", "id": "fox"}`)
	outs := map[int]string{}
	for _, bs := range []int{1, 3} {
		outs[bs] = t.TempDir()
		code, _, errOut := runCLI("batch", "--ort-lib", lib, "-m", model, "--manifest", manifest, "--out", outs[bs],
			"-W", "64", "-H", "64", "--steps", "2", "--cfg-scale", "1", "--batch-size", fmt.Sprint(bs), "--save-latents",
			"--threads", "1", "-q")
		if code != 0 {
			t.Fatalf("batch size %d: exit %d: %s", bs, code, errOut)
		}
	}
	recs := readLog(t, filepath.Join(outs[1], "results-0-of-1.jsonl"))
	if len(recs) != 4 {
		t.Fatalf("%d records", len(recs))
	}
	for _, r := range recs {
		for _, f := range []string{r.Path, r.Latents} {
			a, errA := os.ReadFile(filepath.Join(outs[1], f))
			b, errB := os.ReadFile(filepath.Join(outs[3], f))
			if errA != nil || errB != nil || !bytes.Equal(a, b) {
				t.Errorf("%s differs between batch sizes 1 and 3 (%v, %v)", f, errA, errB)
			}
		}
	}
}

// An --out folder that cannot be written is found before ONNX Runtime or the model loads, and stops
// the run with the run-level exit status.
func TestBatchOutCheckedFirst(t *testing.T) {
	manifest := writeManifest(t, `{"prompt": "a red circle"}`)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI("batch", "--ort-lib", "/nonexistent/lib.so", "-m", "/nonexistent-model", "--manifest", manifest,
		"--out", filepath.Join(file, "out"))
	if code != exitRunLevel || !strings.Contains(errOut, "is not a directory") || strings.Contains(errOut, "nonexistent") {
		t.Errorf("exit %d, stderr %q; want exit %d about --out before the library or model", code, errOut, exitRunLevel)
	}
}
