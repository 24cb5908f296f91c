package main

import (
	"fmt"
	"github.com/rflowrt/rflow/batch"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// rflowChildEnv makes the test binary act as rflow (the tests start it as separate processes).
const rflowChildEnv = "RFLOW_TEST_RUN_AS_CLI"

func init() {
	if os.Getenv(rflowChildEnv) == "1" {
		main() // exits
	}
}

// rflowCmd is a command running this test binary as rflow with args.
func rflowCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), rflowChildEnv+"=1")
	return cmd
}

// okRecords counts the success records of each item id over the results files of dir.
func okRecords(t *testing.T, dir string) map[string]int {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "results-*.jsonl"))
	seen := map[string]int{}
	for _, f := range files {
		for _, r := range readLog(t, f) {
			if r.Status == batch.StatusOK {
				seen[r.ID]++
			}
		}
	}
	return seen
}

// TestBatchShardProcesses: 3 processes, one per shard, writing into one folder, draw every item
// exactly once.
func TestBatchShardProcesses(t *testing.T) {
	lib := needORT(t)
	const n, shards = 11, 3
	manifest := demoManifest(t, n)
	out := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, shards)
	outputs := make([][]byte, shards)
	for i := range shards {
		wg.Go(func() {
			cmd := rflowCmd("batch", "--ort-lib", lib, "--manifest", manifest, "--out", out, "-W", "64", "-H", "64",
				"--steps", "3", "--shards", fmt.Sprint(shards), "--threads", "1", "-q")
			cmd.Env = append(cmd.Env, fmt.Sprintf("JOB_COMPLETION_INDEX=%d", i))
			outputs[i], errs[i] = cmd.CombinedOutput()
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("shard %d: %v: %s", i, err, outputs[i])
		}
	}
	seen := okRecords(t, out)
	for k := range n {
		id := fmt.Sprintf("item-%06d", k)
		if seen[id] != 1 {
			t.Errorf("%s recorded %d times", id, seen[id])
		}
		if _, err := os.Stat(filepath.Join(out, id+".png")); err != nil {
			t.Error(err)
		}
		shard := readLog(t, filepath.Join(out, fmt.Sprintf("results-%d-of-%d.jsonl", k%shards, shards)))
		found := false
		for _, r := range shard {
			found = found || r.ID == id
		}
		if !found {
			t.Errorf("%s is not in shard %d's results", id, k%shards)
		}
	}
	if len(seen) != n {
		t.Errorf("%d items recorded, want %d", len(seen), n)
	}
}

// TestBatchKillAndResume: a run killed with SIGKILL mid-way and restarted loses nothing, keeps every
// image recorded before the kill (same mtime) and redraws at most the item in progress.
func TestBatchKillAndResume(t *testing.T) {
	lib := needORT(t)
	const n = 12
	manifest := demoManifest(t, n)
	out := t.TempDir()
	args := []string{"batch", "--ort-lib", lib, "--manifest", manifest, "--out", out, "-W", "128", "-H", "128",
		"--steps", "30", "--threads", "1", "--save-latents", "-q"}
	cmd := rflowCmd(args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(out, "results-0-of-1.jsonl")
	deadline := time.Now().Add(60 * time.Second)
	for {
		data, _ := os.ReadFile(logPath)
		if strings.Count(string(data), "\n") >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	recorded := okRecords(t, out)
	if len(recorded) < 3 || len(recorded) == n {
		t.Fatalf("killed after %d of %d items; the test wants a kill mid-run", len(recorded), n)
	}
	before := snapshot(t, out)
	unrecorded := 0
	for name := range before {
		if strings.HasSuffix(name, ".png") && recorded[strings.TrimSuffix(name, ".png")] == 0 {
			unrecorded++ // written, not yet recorded: the item in progress
		}
	}
	if unrecorded > 1 {
		t.Errorf("%d images without a record after the kill, want at most 1", unrecorded)
	}
	if msg, err := rflowCmd(args...).CombinedOutput(); err != nil {
		t.Fatalf("restart: %v: %s", err, msg)
	}
	after := snapshot(t, out)
	seen := okRecords(t, out)
	for k := range n {
		id := fmt.Sprintf("item-%06d", k)
		if seen[id] != 1 {
			t.Errorf("%s recorded %d times", id, seen[id])
		}
		if recorded[id] == 1 && after[id+".png"] != before[id+".png"] {
			t.Errorf("%s was recorded before the kill and rewritten by the restart", id)
		}
	}
	for name := range after {
		if strings.HasSuffix(name, ".tmp") {
			t.Errorf("temporary file %s left behind", name)
		}
	}
	t.Logf("killed after %d items (%d unrecorded image); the restart drew %d", len(recorded), unrecorded, n-len(recorded))
}
