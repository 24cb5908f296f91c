package main

import (
	"strings"
	"testing"
)

// An unquoted prompt used to run with its first word as the prompt and exit 0. Every subcommand takes
// flags only, so stray words are a usage error that shows how to quote them.
func TestStrayArgumentsRefused(t *testing.T) {
	dir := t.TempDir() // nothing may be written, but before the fix txt2img and compare ran
	png := dir + "/x.png"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"txt2img", "-p", "a", "red", "star", "-o", png}, `-p "a red star"`},
		{[]string{"txt2img", "--prompt", "a", "red", "star", "-o", png}, `--prompt "a red star"`},
		{[]string{"txt2img", "--prompt=a", "red", "-o", png}, `--prompt "a red"`},
		{[]string{"txt2img", "-qp", "a", "red", "-o", png}, `-p "a red"`},
		{[]string{"txt2img", "-n", "ugly", "blurry", "-p", "x", "-o", png}, `-n "ugly blurry"`},
		{[]string{"compare", "--analytic", "gmm", "--out", dir, "-p", "a", "cat"}, `-p "a cat"`},
		{[]string{"batch", "--manifest", "m.jsonl", "--out", dir, "extra"}, `"extra"`},
		{[]string{"inspect", "-m", "demo-sd3", "extra"}, `"extra"`},
		{[]string{"schedule", "--preset", "sd3", "--steps", "4", "extra"}, `"extra"`},
		{[]string{"tokenize", "--tokenizer", "clip", "--text", "a", "cat"}, `--text "a cat"`},
		{[]string{"noise", "--seed", "1", "--shape", "2", "extra"}, `"extra"`},
		{[]string{"version", "--verbose", "extra"}, `"extra"`},
		{[]string{"txt2img", "-p", "x", "-o", png, "--", "more"}, `"more"`},
	} {
		code, out, errOut := runCLI(c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) || !strings.Contains(errOut, "unexpected argument") {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and a message with %s", c.args, code, errOut, c.want)
		}
		if out != "" {
			t.Errorf("%q: stdout %q", c.args, out)
		}
	}
}
