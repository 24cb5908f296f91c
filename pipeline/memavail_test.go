package pipeline

import (
	"os"
	"path/filepath"
	"testing"
)

// writeFiles writes name → content under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCgroupRoom: the room under a memory limit is limit − (usage − inactive file cache), the
// smallest over the process's cgroup and its ancestors, for cgroup v2 and v1; no limit anywhere
// ("max", v1's huge number) is unknown.
func TestCgroupRoom(t *testing.T) {
	const gib = 1 << 30
	for _, c := range []struct {
		name   string
		proc   string
		files  map[string]string
		want   int64
		wantOK bool
	}{
		{"v2 limit on the pod", "0::/kubepods/pod1/ctr\n", map[string]string{
			"kubepods/pod1/memory.max":         "2147483648\n",
			"kubepods/pod1/memory.current":     "1073741824\n",
			"kubepods/pod1/memory.stat":        "anon 1\ninactive_file 268435456\n",
			"kubepods/pod1/ctr/memory.max":     "max\n",
			"kubepods/pod1/ctr/memory.current": "1073741824\n",
		}, gib + gib/4, true},
		{"v2 tighter child", "0::/a/b\n", map[string]string{
			"a/memory.max": "8589934592\n", "a/memory.current": "0\n",
			"a/b/memory.max": "1610612736\n", "a/b/memory.current": "536870912\n",
		}, gib, true},
		{"v2 no limit", "0::/a\n", map[string]string{"a/memory.max": "max\n", "a/memory.current": "5\n"}, 0, false},
		{"v1", "12:pids:/x\n4:memory:/job/7\n0::/\n", map[string]string{
			"memory/job/7/memory.limit_in_bytes": "1500000000\n",
			"memory/job/7/memory.usage_in_bytes": "600000000\n",
			"memory/job/7/memory.stat":           "cache 5\ntotal_inactive_file 100000000\n",
			"memory/memory.limit_in_bytes":       "9223372036854771712\n",
			"memory/memory.usage_in_bytes":       "1\n",
		}, 1000000000, true},
		{"v1 over the limit", "4:memory:/j\n", map[string]string{
			"memory/j/memory.limit_in_bytes": "100\n", "memory/j/memory.usage_in_bytes": "200\n",
		}, 0, true},
	} {
		root := t.TempDir()
		writeFiles(t, root, c.files)
		writeFiles(t, root, map[string]string{"proc-cgroup": c.proc})
		got, ok := cgroupRoom(filepath.Join(root, "proc-cgroup"), root)
		if got != c.want || ok != c.wantOK {
			t.Errorf("%s: cgroupRoom = %d, %v; want %d, %v", c.name, got, ok, c.want, c.wantOK)
		}
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"meminfo": "MemTotal:       24000000 kB\nMemFree:  1 kB\nMemAvailable:   20000000 kB\n"})
	if got, ok := meminfoAvailable(filepath.Join(dir, "meminfo")); !ok || got != 20000000<<10 {
		t.Errorf("meminfoAvailable = %d, %v", got, ok)
	}
	if _, ok := meminfoAvailable(filepath.Join(dir, "absent")); ok {
		t.Error("an absent meminfo is known")
	}
}
