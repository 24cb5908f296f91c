package main

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/imagefile"
	"github.com/rflowrt/rflow/scheduler"
)

// Every sampler and schedule name rflow writes into an image's parameters reads back as the same
// sampler or schedule, so a user can paste them into --sampler and --scheduler.
func TestMetadataNamesRoundTrip(t *testing.T) {
	for _, n := range scheduler.SamplerNames() {
		if got, err := samplerName("--sampler", imagefile.SamplerDisplayName(n)); err != nil || got != n {
			t.Errorf("sampler %s → %q → %q, %v", n, imagefile.SamplerDisplayName(n), got, err)
		}
	}
	for _, n := range scheduler.SchedulerNames() {
		want := n
		if n == "flowmatch" {
			want = "" // "Automatic": the model's own schedule
		}
		if got := schedulerName(imagefile.ScheduleDisplayName(n)); got != want {
			t.Errorf("scheduler %s → %q → %q, want %q", n, imagefile.ScheduleDisplayName(n), got, want)
		}
	}
	for in, want := range map[string]string{"discrete": "", "Karras": "karras", "SGM Uniform": "sgm_uniform", "DDIM": "ddim_uniform"} {
		if got := schedulerName(in); got != want {
			t.Errorf("schedulerName(%q) = %q, want %q", in, got, want)
		}
	}
}

// The spellings users bring from stable-diffusion.cpp and A1111 work and are recorded under rflow's
// names.
func TestTxt2imgAliases(t *testing.T) {
	lib := needORT(t)
	dir := t.TempDir()
	init := filepath.Join(dir, "init.png")
	for _, c := range []struct {
		args   []string
		params []string // in the parameters text
		chunk  string   // in the rflow chunk
	}{
		{[]string{"--sampling-method", "euler_a", "-s", "3", "-o", init}, []string{"Sampler: Euler a", "Seed: 3"}, `"sampler":"euler_ancestral"`},
		{[]string{"--sampler", "DPM++ 2M", "--scheduler", "discrete", "-t", "1"}, []string{"Sampler: DPM++ 2M", "Schedule type: Automatic"}, `"sampler":"dpmpp_2m"`},
		{[]string{"--sampler", "dpm++2s_a", "--scheduler", "Karras"}, []string{"Sampler: DPM++ 2S a", "Schedule type: Karras"}, `"scheduler":"karras"`},
		{[]string{"--sampler", "lcm", "--rng", "cuda"}, []string{"Sampler: LCM", "RNG: NV"}, `"rng":"philox"`},
		{[]string{"--rng", "std_default"}, []string{"RNG: CPU"}, `"rng":"torch-cpu"`},
		{[]string{"-i", init, "--strength", "0.5"}, []string{"Denoising strength: 0.5"}, `"strength":0.5`},
	} {
		out := filepath.Join(dir, "out.png")
		if len(c.args) > 0 && c.args[len(c.args)-2] == "-o" {
			out = c.args[len(c.args)-1]
			c.args = c.args[:len(c.args)-2]
		}
		args := append([]string{"txt2img", "--ort-lib", lib, "-p", "a red circle", "--steps", "3", "-W", "64", "-H", "64",
			"--overwrite", "-q", "-o", out}, c.args...)
		if code, _, errOut := runCLI(args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", c.args, code, errOut)
		}
		text, err := imagefile.ReadPNGText(out)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range c.params {
			if !strings.Contains(text["parameters"], p) {
				t.Errorf("%v: parameters %q lack %q", c.args, text["parameters"], p)
			}
		}
		if !strings.Contains(text["rflow"], c.chunk) {
			t.Errorf("%v: rflow chunk lacks %s: %s", c.args, c.chunk, text["rflow"])
		}
	}
}

// -s -1 asks for a random seed (sd.cpp, A1111): the seed drawn is printed and recorded; batch refuses
// it, since every shard must draw the same images.
func TestSeedMinusOne(t *testing.T) {
	lib := needORT(t)
	out := filepath.Join(t.TempDir(), "r.png")
	code, _, errOut := runCLI("txt2img", "--ort-lib", lib, "-p", "a red circle", "-s", "-1", "--steps", "2", "-W", "64", "-H", "64", "-o", out)
	m := regexp.MustCompile(`seed (\d+)`).FindStringSubmatch(errOut)
	if code != 0 || m == nil {
		t.Fatalf("exit %d, stderr %q; want the random seed printed", code, errOut)
	}
	text, _ := imagefile.ReadPNGText(out)
	var chunk struct{ Seed json.Number }
	if err := json.Unmarshal([]byte(text["rflow"]), &chunk); err != nil || chunk.Seed.String() != m[1] {
		t.Errorf("recorded seed %v (%v), printed %s", chunk.Seed, err, m[1])
	}
	for _, args := range [][]string{{"txt2img", "-p", "x", "--seed", "-2"}, {"txt2img", "-p", "x", "-s", "abc"},
		{"batch", "--manifest", "m.jsonl", "--out", t.TempDir(), "--seed=-1"}} {
		if code, _, errOut := runCLI(append(args, "--ort-lib", "/nonexistent/lib.so")...); code != 2 {
			t.Errorf("%v: exit %d, %q; want a usage error", args, code, errOut)
		}
	}
}

func TestNoiseRNGAliases(t *testing.T) {
	_, a, _ := runCLI("noise", "--seed", "3", "--shape", "2,3", "--rng", "philox", "--json")
	_, b, _ := runCLI("noise", "--seed", "3", "--shape", "2,3", "--rng", "cuda", "--json")
	_, c, _ := runCLI("noise", "--seed", "3", "--shape", "2,3", "--json")
	_, d, _ := runCLI("noise", "--seed", "3", "--shape", "2,3", "--rng", "std_default", "--json")
	if a == "" || a != b || c == "" || c != d || a == c {
		t.Errorf("cuda %q vs philox %q; std_default %q vs torch-cpu %q", b, a, d, c)
	}
}
