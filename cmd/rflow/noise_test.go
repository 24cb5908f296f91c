package main

import (
	"encoding/json"
	"strings"
	"testing"
)

type noiseJSON struct {
	Shape  []int     `json:"shape"`
	Values []float64 `json:"values"`
}

func noiseOutput(t *testing.T, args ...string) noiseJSON {
	t.Helper()
	code, out, errOut := runCLI(append([]string{"noise", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("rflow noise %v: exit %d: %s", args, code, errOut)
	}
	var n noiseJSON
	if err := json.Unmarshal([]byte(out), &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Spec §7.8: torch.manual_seed(0); torch.randn(4, 4) (published to 8 significant digits) and §8.6.
func TestNoisePublishedValues(t *testing.T) {
	n := noiseOutput(t, "--seed", "0", "--shape", "4,4")
	want := []float32{-1.1258398, -1.1523602, -0.25057858, -0.4338788, 0.84871036, 0.69200915, -0.31601277, -2.1152194,
		0.32227492, -1.2633348, 0.3499832, 0.30813393, 0.11984151, 1.2376579, 1.1167772, -0.24727815}
	if len(n.Values) != 16 || n.Shape[0] != 4 {
		t.Fatalf("got %+v", n)
	}
	for i, w := range want {
		if float32(n.Values[i]) != w {
			t.Errorf("value %d = %v, want %v", i, float32(n.Values[i]), w)
		}
	}
	far := noiseOutput(t, "--seed", "0", "--shape", "1,16,128,128", "--indices", "131072,262143")
	if len(far.Values) != 2 || far.Values[0] != 1.5554131269454956 || far.Values[1] != 0.07685992121696472 {
		t.Fatalf("§8.6 far indices: %v", far.Values)
	}
}

func TestNoiseBatchModes(t *testing.T) {
	one := noiseOutput(t, "--seed", "7", "--shape", "2,1,4,4")
	per := noiseOutput(t, "--seed", "7", "--shape", "2,1,4,4", "--batch-mode", "seed-per-image")
	next := noiseOutput(t, "--seed", "8", "--shape", "1,1,4,4")
	for i := 0; i < 16; i++ {
		if per.Values[i] != one.Values[i] || per.Values[16+i] != next.Values[i] {
			t.Fatalf("seed-per-image: image 0 must be seed 7's draw and image 1 seed 8's (index %d)", i)
		}
	}
	if one.Values[16] == next.Values[0] {
		t.Fatal("one-generator: image 1 must continue seed 7's stream, not restart at seed 8")
	}
}

func TestNoiseErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--seed", "0"}, "--shape is required"},
		{[]string{"--shape", "2,x"}, `"x" is not an integer`},
		{[]string{"--shape", "0,4"}, "dimension 0 is 0"},
		{[]string{"--shape", "2,2", "--rng", "mt"}, "valid: torch-cpu, philox"},
		{[]string{"--shape", "2,2", "--indices", "4"}, "outside [0, 4)"},
		{[]string{"--shape", "2,2", "--batch-mode", "x"}, "one-generator"},
	} {
		code, _, errOut := runCLI(append([]string{"noise"}, c.args...)...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", c.args, code, errOut, c.want)
		}
	}
}
