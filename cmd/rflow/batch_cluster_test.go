package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/batch"
)

// demoBatchArgs are the arguments of a quick demo batch (64², 3 steps).
func demoBatchArgs(lib, manifest, out string, more ...string) []string {
	return append([]string{"batch", "--ort-lib", lib, "--manifest", manifest, "--out", out, "-W", "64", "-H", "64",
		"--steps", "3", "--threads", "1"}, more...)
}

// A resubmitted subset of a Slurm array (sbatch --array=1 sets SLURM_ARRAY_TASK_MIN=1 and _COUNT=1)
// runs shard 1 of the batch's --shards 3, not shard 0 of 1.
func TestBatchArraySubsetRunsItsShard(t *testing.T) {
	lib := needORT(t)
	manifest := demoManifest(t, 7)
	out := t.TempDir()
	t.Setenv("SLURM_ARRAY_TASK_ID", "1")
	t.Setenv("SLURM_ARRAY_TASK_MIN", "1")
	t.Setenv("SLURM_ARRAY_TASK_COUNT", "1")
	code, _, errOut := runCLI(demoBatchArgs(lib, manifest, out, "--shards", "3")...)
	if code != 0 || !strings.Contains(errOut, "shard 1/3 (index from $SLURM_ARRAY_TASK_ID): 2 of 7 items") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var ids []string
	for _, r := range readLog(t, filepath.Join(out, "results-1-of-3.jsonl")) {
		ids = append(ids, r.ID)
	}
	if strings.Join(ids, " ") != "item-000001 item-000004" {
		t.Errorf("shard 1/3 drew %v", ids)
	}
	// The batch's shard count is pinned: a run with another count is refused (exit 2).
	code, _, errOut = runCLI(demoBatchArgs(lib, manifest, out, "--shards", "4")...)
	if code != 2 || !strings.Contains(errOut, "shards 3 → 4") || !strings.Contains(errOut, "keep the batch's shard count") {
		t.Errorf("another shard count: exit %d: %s", code, errOut)
	}
}

// An edited manifest is refused with what changed; --redo-changed redraws exactly the changed item;
// rflow batch status then reports every item done.
func TestBatchEditedManifest(t *testing.T) {
	lib := needORT(t)
	out := t.TempDir()
	lines := []string{`{"prompt": "a red circle", "id": "a"}`, `{"prompt": "stripes", "id": "b"}`, `{"prompt": "a red circle", "id": "c", "seed": 5}`}
	manifest := writeManifest(t, lines...)
	if code, _, errOut := runCLI(demoBatchArgs(lib, manifest, out, "-q")...); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	before := snapshot(t, out)
	lines[1] = `{"prompt": "stripes", "id": "b", "steps": 4}`
	if err := os.WriteFile(manifest, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(demoBatchArgs(lib, manifest, out, "-q")...)
	if code != 2 || !strings.Contains(errOut, "1 finished item(s) would draw something else now (b)") ||
		!strings.Contains(errOut, "--redo-changed") {
		t.Fatalf("edited manifest: exit %d: %s", code, errOut)
	}
	// status sees the change without any generation flag: the pin holds the defaults.
	code, stdout, _ := runCLI("batch", "status", "--manifest", manifest, "--out", out)
	if code != 1 || !strings.Contains(stdout, "b (shard 0): stale") || !strings.Contains(stdout, "the manifest changed") {
		t.Fatalf("status before the redo: exit %d: %s", code, stdout)
	}
	if code, _, errOut := runCLI(demoBatchArgs(lib, manifest, out, "-q", "--redo-changed")...); code != 0 {
		t.Fatalf("--redo-changed: exit %d: %s", code, errOut)
	}
	after := snapshot(t, out)
	for _, name := range []string{"a.png", "c.png"} {
		if after[name] != before[name] {
			t.Errorf("%s was rewritten", name)
		}
	}
	if after["b.png"] == before["b.png"] {
		t.Error("b.png was not redrawn")
	}
	code, stdout, _ = runCLI("batch", "status", "--manifest", manifest, "--out", out, "--merge")
	if code != 0 || !strings.Contains(stdout, "all    3      3     0        0       0      0") {
		t.Fatalf("status after the redo: exit %d: %s", code, stdout)
	}
	merged, err := os.ReadFile(filepath.Join(out, batch.MergedJSONL))
	if err != nil || strings.Count(string(merged), `"state":"done"`) != 3 {
		t.Errorf("merged: %s %v", merged, err)
	}
}

// A second process on a running shard is refused (exit 3), naming the holder.
func TestBatchShardLocked(t *testing.T) {
	lib := needORT(t)
	manifest := demoManifest(t, 2)
	out := t.TempDir()
	held, err := batch.OpenResultsLog(filepath.Join(out, "results-0-of-1.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	code, _, errOut := runCLI(demoBatchArgs(lib, manifest, out)...)
	if code != exitRunLevel || !strings.Contains(errOut, "results-0-of-1.lock is held by another process (pid ") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

// A provider the library lacks stops the shard at the first load (exit 3) instead of failing every
// item; nothing is recorded against the items.
func TestBatchMissingProviderStops(t *testing.T) {
	lib := needORT(t)
	manifest := demoManifest(t, 4)
	out := t.TempDir()
	code, _, errOut := runCLI(demoBatchArgs(lib, manifest, out, "--provider", "cuda")...)
	if code == 0 {
		t.Skip("this ONNX Runtime has CUDA")
	}
	if code != exitRunLevel || !strings.Contains(errOut, "stopped (shard 0/1: 4 items: 0 done now, 0 already done, 0 failed)") ||
		strings.Count(errOut, "\n") != 2 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if recs := readLog(t, filepath.Join(out, "results-0-of-1.jsonl")); len(recs) != 0 {
		t.Errorf("records %+v", recs)
	}
}

// rflow batch status: missing shards and items until every shard ran.
func TestBatchStatusShards(t *testing.T) {
	lib := needORT(t)
	manifest := demoManifest(t, 5)
	out := t.TempDir()
	code, _, errOut := runCLI("batch", "status", "--manifest", manifest, "--out", out)
	if code != 1 || !strings.Contains(errOut, "no batch started in this folder") {
		t.Fatalf("before any run: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runCLI(demoBatchArgs(lib, manifest, out, "-q", "--shard", "0/2")...); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	code, stdout, errOut := runCLI("batch", "status", "--manifest", manifest, "--out", out)
	if code != 1 || !strings.Contains(stdout, "(none: never started)") || !strings.Contains(errOut, "2 of 5 items not done: 2 missing") {
		t.Fatalf("one shard of two: exit %d: %s%s", code, stdout, errOut)
	}
	if code, _, errOut := runCLI(demoBatchArgs(lib, manifest, out, "-q", "--shard", "1/2")...); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if code, stdout, errOut := runCLI("batch", "status", "--manifest", manifest, "--out", out); code != 0 {
		t.Fatalf("both shards: exit %d: %s%s", code, stdout, errOut)
	}
}
