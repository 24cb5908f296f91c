package ort

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// OpTime is the time one operator type took over a profiled session's runs.
type OpTime struct {
	// Op is the operator type (Conv, MatMul, …), with its domain's kernel name as ORT reports it.
	Op string
	// Total is the summed kernel time, Calls the number of node executions.
	Total time.Duration
	Calls int
}

// profileEvent is one entry of ORT's Chrome-trace profile.
type profileEvent struct {
	Cat  string `json:"cat"`
	Name string `json:"name"`
	Dur  int64  `json:"dur"` // microseconds
	Args struct {
		OpName string `json:"op_name"`
	} `json:"args"`
}

// ProfileFiles lists the profiles written for prefix (SessionOptions.ProfilePrefix): ORT appends the
// date and ".json" when a profiled session closes.
func ProfileFiles(prefix string) ([]string, error) {
	m, err := filepath.Glob(prefix + "_*.json")
	if err != nil {
		return nil, fmt.Errorf("profiles of %s: %w", prefix, err)
	}
	return m, nil
}

// SummarizeProfile reads an ORT profile and sums kernel time per operator type, largest first.
func SummarizeProfile(path string) ([]OpTime, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read profile: %w", err)
	}
	var events []profileEvent
	if err := json.Unmarshal(data, &events); err != nil {
		return nil, fmt.Errorf("profile %s: %w", path, err)
	}
	byOp := map[string]*OpTime{}
	for _, e := range events {
		// Node events come in pairs (fence_before, kernel_time, fence_after); the kernel time is the work.
		if e.Cat != "Node" || e.Args.OpName == "" || !strings.HasSuffix(e.Name, "_kernel_time") {
			continue
		}
		t := byOp[e.Args.OpName]
		if t == nil {
			t = &OpTime{Op: e.Args.OpName}
			byOp[e.Args.OpName] = t
		}
		t.Total += time.Duration(e.Dur) * time.Microsecond
		t.Calls++
	}
	out := make([]OpTime, 0, len(byOp))
	for _, t := range byOp {
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Total != out[j].Total {
			return out[i].Total > out[j].Total
		}
		return out[i].Op < out[j].Op
	})
	return out, nil
}
