package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// Numbers no run can use are refused before anything loads (a library and model that do not exist
// are never looked at), with suggestions inside the limits.
func TestNumbersRefusedFirst(t *testing.T) {
	out := filepath.Join(t.TempDir(), "x.png")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--threads", "-1"}, "--threads -1: want 0 or more"},
		{[]string{"--device-id", "-2"}, "--device-id -2"},
		{[]string{"--preview-every", "-3"}, "--preview-every -3"},
		{[]string{"--steps", "0"}, "--steps 0: want 1 to"},
		{[]string{"--steps", "-5"}, "--steps -5"},
		{[]string{"--steps", "10001"}, "want 1 to 10000"},
		{[]string{"-W", "0"}, "the smallest size is 16"},
		{[]string{"-H", "-64"}, "the smallest size is 16"},
		{[]string{"-W", "20000"}, "the largest size is 16384"},
		{[]string{"-W", "16390"}, "the largest size is 16384"},
		{[]string{"-W", "16383"}, "try 16368 or 16384"},
		{[]string{"-H", "500"}, "try 496 or 512"},
		{[]string{"--max-sequence-length", "0"}, "--max-sequence-length 0"},
	} {
		args := append([]string{"txt2img", "--ort-lib", "/nonexistent/lib.so", "-m", "/nonexistent-model", "-p", "x", "-o", out}, c.args...)
		code, _, errOut := runCLI(args...)
		if code != 2 || !strings.Contains(errOut, c.want) || strings.Contains(errOut, "nonexistent") || strings.Contains(errOut, "16400") {
			t.Errorf("%v: exit %d, stderr %q; want a usage error with %q", c.args, code, errOut, c.want)
		}
	}
	for _, args := range [][]string{
		{"batch", "--manifest", "m.jsonl", "--out", t.TempDir(), "--threads", "-1"},
		{"batch", "--manifest", "m.jsonl", "--out", t.TempDir(), "-W", "20000"},
		{"compare", "-p", "x", "--out", t.TempDir(), "--threads", "-1"},
		{"compare", "-p", "x", "--out", t.TempDir(), "-H", "100000"},
	} {
		code, _, errOut := runCLI(append(args, "--ort-lib", "/nonexistent/lib.so")...)
		if code != 2 || strings.Contains(errOut, "nonexistent") {
			t.Errorf("%v: exit %d, stderr %q; want a usage error", args, code, errOut)
		}
	}
}
