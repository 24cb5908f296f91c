package pipeline

import (
	"bufio"
	"os"
	"path"
	"strconv"
	"strings"
)

// availableBytes is the memory this process can still take without swapping or meeting the OOM
// killer: Linux's MemAvailable, lowered to the room left under the memory limit of the process's
// cgroup and its ancestors (a container's limit, which /proc/meminfo does not show). It is false
// where the system says neither.
func availableBytes() (int64, bool) {
	avail, known := meminfoAvailable("/proc/meminfo")
	if room, ok := cgroupRoom("/proc/self/cgroup", "/sys/fs/cgroup"); ok && (!known || room < avail) {
		avail, known = room, true
	}
	return avail, known
}

// meminfoAvailable reads MemAvailable from a /proc/meminfo file.
func meminfoAvailable(file string) (int64, bool) {
	f, err := os.Open(file)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

// cgroupRoom is the smallest room, limit − (usage − inactive file cache), over the memory cgroup of
// the process (cgroupFile, /proc/self/cgroup) and its ancestors under root (/sys/fs/cgroup): cgroup
// v2 (memory.max, memory.current) or v1 (memory/…/memory.limit_in_bytes, memory.usage_in_bytes).
// The inactive file cache is subtracted, as Kubernetes does for a container's working set, since the
// kernel reclaims it before it kills. False when no cgroup on the path has a limit.
func cgroupRoom(cgroupFile, root string) (int64, bool) {
	data, err := os.ReadFile(cgroupFile)
	if err != nil {
		return 0, false
	}
	var best int64
	found := false
	for line := range strings.Lines(string(data)) {
		f := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(f) != 3 {
			continue
		}
		var dir, limitFile, usageFile, inactiveKey string
		switch {
		case f[0] == "0" && f[1] == "":
			dir, limitFile, usageFile, inactiveKey = root, "memory.max", "memory.current", "inactive_file"
		case strings.Contains(","+f[1]+",", ",memory,"):
			dir, limitFile, usageFile, inactiveKey = path.Join(root, "memory"), "memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"
		default:
			continue
		}
		for p := path.Clean("/" + f[2]); ; p = path.Dir(p) {
			d := path.Join(dir, p)
			limit, okL := readBytesFile(path.Join(d, limitFile))
			usage, okU := readBytesFile(path.Join(d, usageFile))
			if okL && okU && limit < 1<<60 { // v1 says "no limit" with a number near 2^63
				room := limit - max(usage-statField(path.Join(d, "memory.stat"), inactiveKey), 0)
				if !found || room < best {
					best, found = max(room, 0), true
				}
			}
			if p == "/" {
				break
			}
		}
	}
	return best, found
}

// readBytesFile reads a cgroup file holding one number of bytes ("max" is no limit: false).
func readBytesFile(file string) (int64, bool) {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	return n, err == nil
}

// statField is a "key value" line of a cgroup memory.stat file (0 when absent).
func statField(file, key string) int64 {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, key+" "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}
