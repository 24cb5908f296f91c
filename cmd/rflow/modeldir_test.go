package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// The embedded demos are models like any other: schedule, inspect and tokenize take their names.
func TestDemoNamesAsModel(t *testing.T) {
	code, out, errOut := runCLI("schedule", "--model", "demo-flux", "--steps", "4", "-W", "256", "-H", "256", "--json")
	var s struct{ Sigmas []float64 }
	if code != 0 || json.Unmarshal([]byte(out), &s) != nil || len(s.Sigmas) != 5 {
		t.Errorf("schedule --model demo-flux: exit %d, %q %q", code, out, errOut)
	}
	code, out, errOut = runCLI("tokenize", "--tokenizer", "clip", "--model", "demo-sd3", "--text", "a red star", "--json")
	var ids struct{ IDs []int64 }
	if code != 0 || json.Unmarshal([]byte(out), &ids) != nil || len(ids.IDs) < 3 {
		t.Errorf("tokenize --model demo-sd3: exit %d, %q %q", code, out, errOut)
	}
	code, out, errOut = runCLI("inspect", "--model", "demo-sd3")
	if code != 0 || !strings.Contains(out, "problems: none") {
		t.Errorf("inspect --model demo-sd3: exit %d, %q %q", code, out, errOut)
	}
}
