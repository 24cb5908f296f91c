package main

import (
	"strings"
	"testing"
)

// An unknown --weights or --te-weights kind is a usage error naming the valid kinds, found before
// anything is opened.
func TestConvertWeightKinds(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"convert", "-m", "/nonexistent.safetensors", "--out", "/nonexistent-out", "--weights", "int4"}, `invalid argument "int4" for "--weights" flag: unknown weight kind "int4" (valid: fp32, fp16, int8, q8, q4, q4s)`},
		{[]string{"convert", "-m", "/nonexistent.safetensors", "--out", "/nonexistent-out", "--te-weights", "q3"}, `invalid argument "q3" for "--te-weights" flag: unknown weight kind "q3"`},
	} {
		code, _, errOut := runCLI(c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and %s", c.args, code, errOut, c.want)
		}
	}
	code, _, errOut := runCLI("txt2img", "-p", "x", "-m", "/nonexistent.safetensors", "--weights", "q5", "-o", t.TempDir()+"/x.png")
	if code != 2 || !strings.Contains(errOut, `unknown weight kind "q5"`) {
		t.Errorf("txt2img --weights q5: exit %d, stderr %q", code, errOut)
	}
}
