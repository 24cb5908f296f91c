package deploy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rflowrt/rflow/internal/ort/orttest"
)

// clusterEnv turns the Slurm test on: it starts daemons as root, so a plain go test does not run it
// even where Slurm happens to be installed. make test-cluster sets it.
const clusterEnv = "RFLOW_TEST_CLUSTER"

// slurmTools are the programs the test runs.
var slurmTools = []string{"munged", "munge", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo"}

// slurmCluster is a loopback single-node Slurm cluster with its own config and state in one folder.
type slurmCluster struct {
	dir, conf string
	env       []string
}

// freePort returns a TCP port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startDaemon starts a foreground daemon and stops it (SIGTERM, then SIGKILL) when the test ends.
func startDaemon(t *testing.T, logPath string, env []string, name string, args ...string) {
	t.Helper()
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done); log.Close() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Process.Signal(syscallTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
}

// startSlurm writes the config and starts munged, slurmctld and slurmd, waiting until the node is idle.
func startSlurm(t *testing.T) *slurmCluster {
	t.Helper()
	dir, err := os.MkdirTemp("", "rflow-slurm-") // short: the munge socket path has a length limit
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"state", "spool", "log", "run"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	key := make([]byte, 1024)
	for i := range key {
		key[i] = byte(i*131 + 7) // a test-only key; munge wants 1 KiB, not secrecy, here
	}
	if err := os.WriteFile(filepath.Join(dir, "munge.key"), key, 0o400); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	host = strings.Split(host, ".")[0]
	c := &slurmCluster{dir: dir, conf: filepath.Join(dir, "slurm.conf")}
	socket := filepath.Join(dir, "run", "munge.socket")
	conf := fmt.Sprintf(`ClusterName=rflowtest
SlurmctldHost=%[2]s(127.0.0.1)
SlurmctldPort=%[3]d
SlurmdPort=%[4]d
AuthType=auth/munge
AuthInfo=socket=%[5]s
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=%[1]s/state
SlurmdSpoolDir=%[1]s/spool
SlurmctldPidFile=%[1]s/run/slurmctld.pid
SlurmdPidFile=%[1]s/run/slurmd.pid
SlurmctldLogFile=%[1]s/log/slurmctld.log
SlurmdLogFile=%[1]s/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
MpiDefault=none
ReturnToService=2
KillWait=5
MinJobAge=600
NodeName=rflowtest NodeAddr=127.0.0.1 NodeHostname=%[2]s CPUs=2 RealMemory=2000 State=UNKNOWN
PartitionName=test Nodes=rflowtest Default=YES MaxTime=INFINITE State=UP
`, dir, host, freePort(t), freePort(t), socket)
	if err := os.WriteFile(c.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	c.env = append(os.Environ(), "SLURM_CONF="+c.conf)
	logs := filepath.Join(dir, "log")
	startDaemon(t, filepath.Join(logs, "munged.out"), c.env, "munged", "--force", "--foreground", "--socket="+socket,
		"--key-file="+filepath.Join(dir, "munge.key"), "--pid-file="+filepath.Join(dir, "run", "munged.pid"),
		"--seed-file="+filepath.Join(dir, "run", "munged.seed"), "--log-file="+filepath.Join(logs, "munged.log"))
	waitFor(t, 10*time.Second, "munged", func() bool { _, err := os.Stat(socket); return err == nil })
	startDaemon(t, filepath.Join(logs, "slurmctld.out"), c.env, "slurmctld", "-D", "-i", "-f", c.conf)
	startDaemon(t, filepath.Join(logs, "slurmd.out"), c.env, "slurmd", "-D", "-N", "rflowtest", "-f", c.conf)
	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []string{"slurmctld.log", "slurmd.log", "munged.out"} {
				data, _ := os.ReadFile(filepath.Join(logs, f))
				t.Logf("%s:\n%s", f, tail(string(data), 2000))
			}
		}
	})
	waitFor(t, 60*time.Second, "an idle Slurm node", func() bool {
		out, _ := c.run("sinfo", "-h", "-o", "%t").Output()
		return strings.TrimSpace(string(out)) == "idle"
	})
	return c
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// run is a Slurm client command against the cluster.
func (c *slurmCluster) run(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = c.env
	return cmd
}

// sbatch submits the script and returns the job id.
func (c *slurmCluster) sbatch(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := c.run("sbatch", append([]string{"--parsable"}, args...)...)
	cmd.Dir, cmd.Env = dir, append(append([]string{}, c.env...), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sbatch %v: %v: %s", args, err, out)
	}
	return strings.TrimSpace(strings.Split(string(out), ";")[0])
}

// waitJob waits until no task of the job is pending or running.
func (c *slurmCluster) waitJob(t *testing.T, job string, limit time.Duration) {
	t.Helper()
	waitFor(t, limit, "job "+job+" to end", func() bool {
		out, err := c.run("squeue", "-h", "-j", job, "-o", "%i %T").CombinedOutput()
		return err == nil && strings.TrimSpace(string(out)) == "" || strings.Contains(string(out), "Invalid job id")
	})
}

func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// okRecords counts the success records per id over the results files of out.
func okRecords(t *testing.T, out string) map[string]int {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(out, "results-*-of-*.jsonl"))
	seen := map[string]int{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			var r struct{ ID, Status string }
			if json.Unmarshal(sc.Bytes(), &r) == nil && r.Status == "ok" {
				seen[r.ID]++
			}
		}
		fh.Close()
	}
	return seen
}

// mtimes maps every PNG of out to its modification time.
func mtimes(t *testing.T, out string) map[string]time.Time {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(out, "*.png"))
	m := map[string]time.Time{}
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		m[filepath.Base(f)] = st.ModTime()
	}
	return m
}

// TestSlurmArrayKillAndRetry runs deploy/slurm/batch.sbatch on a real single-node Slurm: a 3-task
// array over the demo model, one task killed mid-run (scancel SIGKILL), only that index resubmitted
// with --array=I. rflow batch status then finds every item done exactly once, and no image finished
// before the kill was rewritten.
func TestSlurmArrayKillAndRetry(t *testing.T) {
	if os.Getenv(clusterEnv) != "1" {
		t.Skipf("set %s=1 (make test-cluster) to start a loopback Slurm cluster", clusterEnv)
	}
	for _, tool := range slurmTools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install Debian's slurm-wlm and munge (make test-cluster does, as root)", tool)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("the loopback cluster runs its daemons as root")
	}
	lib := orttest.Library()
	if lib == "" {
		t.Skip("no ONNX Runtime library: run make setup")
	}
	work := t.TempDir()
	rflow := filepath.Join(work, "rflow")
	if out, err := exec.Command("go", "build", "-o", rflow, "../cmd/rflow").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	const shards, perShard, kill = 3, 8, 1
	var lines []string
	for i := range shards * perShard {
		lines = append(lines, fmt.Sprintf(`{"prompt": "a red circle on a white background %d", "id": "img-%02d"}`, i, i))
	}
	manifest := filepath.Join(work, "manifest.jsonl")
	if err := os.WriteFile(manifest, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(work, "out")
	env := []string{"RFLOW=" + rflow, "MODEL=demo-sd3", "MANIFEST=" + manifest, "OUT=" + out, fmt.Sprint("SHARDS=", shards),
		"RFLOW_ORT_LIB=" + lib, "XDG_CACHE_HOME=" + filepath.Join(work, "cache"), "EXTRA_ARGS=-W 512 -H 512 --steps 40"}
	// Small resources, overriding the script's #SBATCH lines as a user would.
	res := []string{"--cpus-per-task=1", "--mem=300M", "--time=10"}
	script, err := filepath.Abs("slurm/batch.sbatch")
	if err != nil {
		t.Fatal(err)
	}
	c := startSlurm(t)

	job := c.sbatch(t, work, env, append(res, fmt.Sprintf("--array=0-%d", shards-1), script)...)
	killLog := filepath.Join(out, fmt.Sprintf("results-%d-of-%d.jsonl", kill, shards))
	waitFor(t, 3*time.Minute, "task 1's second item", func() bool {
		data, _ := os.ReadFile(killLog)
		return strings.Count(string(data), "\n") >= 2
	})
	if msg, err := c.run("scancel", "--signal=KILL", "--full", fmt.Sprintf("%s_%d", job, kill)).CombinedOutput(); err != nil {
		t.Fatalf("scancel: %v: %s", err, msg)
	}
	c.waitJob(t, job, 5*time.Minute)
	before := okRecords(t, out)
	killedDone := 0
	for id := range before {
		var k int
		fmt.Sscanf(id, "img-%d", &k)
		if k%shards == kill {
			killedDone++
		}
	}
	if killedDone == perShard {
		t.Fatalf("task %d finished all %d items before it was killed: the test needs slower items", kill, perShard)
	}
	t.Logf("task %d killed after %d of %d items", kill, killedDone, perShard)
	status := exec.Command(rflow, "batch", "status", "--manifest", manifest, "--out", out)
	if msg, err := status.CombinedOutput(); err == nil || !strings.Contains(string(msg), "missing") {
		t.Fatalf("status after the kill: %v (want exit 1 and missing items): %s", err, msg)
	}
	pngs := mtimes(t, out)

	retry := c.sbatch(t, work, env, append(res, fmt.Sprintf("--array=%d", kill), script)...)
	c.waitJob(t, retry, 5*time.Minute)
	logData, _ := os.ReadFile(filepath.Join(work, fmt.Sprintf("rflow-batch-%s_%d.log", retry, kill)))
	if !strings.Contains(string(logData), fmt.Sprintf("shard %d/%d (index from $SLURM_ARRAY_TASK_ID)", kill, shards)) {
		t.Fatalf("the retry did not run shard %d/%d: %s", kill, shards, logData)
	}
	status = exec.Command(rflow, "batch", "status", "--manifest", manifest, "--out", out, "--merge")
	msg, err := status.CombinedOutput()
	if err != nil {
		t.Fatalf("status after the retry: %v: %s", err, msg)
	}
	t.Logf("rflow batch status:\n%s", msg)
	after := okRecords(t, out)
	for i := range shards * perShard {
		id := fmt.Sprintf("img-%02d", i)
		if after[id] != 1 {
			t.Errorf("%s has %d success records, want exactly 1", id, after[id])
		}
	}
	now := mtimes(t, out)
	for id := range before {
		if !now[id+".png"].Equal(pngs[id+".png"]) {
			t.Errorf("%s.png, finished before the kill, was rewritten", id)
		}
	}
	merged, err := os.ReadFile(filepath.Join(out, "results.jsonl"))
	if err != nil || strings.Count(string(merged), `"state":"done"`) != shards*perShard || strings.Contains(string(merged), `"successes":2`) {
		t.Errorf("merged results: %v\n%s", err, merged)
	}
}
