package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestTruncatedPromptWarns: txt2img says which encoder cut a long prompt and how many tokens it
// dropped, as diffusers warns.
func TestTruncatedPromptWarns(t *testing.T) {
	lib := needORT(t)
	long := strings.TrimSpace(strings.Repeat("a red star ", 30)) // 92 CLIP tokens
	out := filepath.Join(t.TempDir(), "long.png")
	code, _, errOut := runCLI("txt2img", "--ort-lib", lib, "-p", long, "-s", "1", "--steps", "1", "-W", "64", "-H", "64", "-o", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, "warning: prompt truncated: text_encoder (CLIP-L) takes 77 tokens; the prompt has 92, so its last 15 are dropped") {
		t.Errorf("no truncation warning:\n%s", errOut)
	}
	code, _, errOut = runCLI("txt2img", "--ort-lib", lib, "-p", "a red star", "-s", "1", "--steps", "1", "-W", "64", "-H", "64",
		"-o", filepath.Join(t.TempDir(), "short.png"))
	if code != 0 || strings.Contains(errOut, "warning:") {
		t.Errorf("short prompt: exit %d, stderr %q", code, errOut)
	}
}
