package main

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/imagefile"
)

func TestSnakeCase(t *testing.T) {
	for in, want := range map[string]string{"CFGScale": "cfg_scale", "TrueCFGScale": "true_cfg_scale", "ModelTimesteps": "model_timesteps",
		"Mu": "mu", "MaxSequenceLength": "max_sequence_length", "RNG": "rng", "InitSample": "init_sample", "cfg_scale": "cfg_scale",
		"PeakRSSBytes": "peak_rss_bytes", "Width": "width", "SLGLayers": "slg_layers"} {
		if got := snakeCase(in); got != want {
			t.Errorf("snakeCase(%q) = %q, want %q", in, got, want)
		}
	}
	// Numbers pass through exactly (a uint64 seed above 2^53 too).
	raw, err := snakeCaseJSON(struct{ Seed uint64 }{1<<63 + 1})
	if err != nil || string(raw) != `{"seed":9223372036854775809}` {
		t.Errorf("snakeCaseJSON: %s, %v", raw, err)
	}
}

// rflowChunkKeys reads an image's rflow chunk and returns its keys (settings' as "settings.key").
func rflowChunkKeys(t *testing.T, path string) ([]string, map[string]any) {
	t.Helper()
	text, err := imagefile.ReadPNGText(path)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal([]byte(text["rflow"]), &c); err != nil {
		t.Fatalf("%s: rflow chunk %q: %v", path, text["rflow"], err)
	}
	var keys []string
	for k, v := range c {
		keys = append(keys, k)
		if m, ok := v.(map[string]any); ok {
			for k2 := range m {
				keys = append(keys, k+"."+k2)
			}
		}
	}
	slices.Sort(keys)
	return keys, c
}

// txt2img and batch write the rflow chunk in one layout, every key in snake_case.
func TestRflowChunkOneLayout(t *testing.T) {
	lib := needORT(t)
	dir := t.TempDir()
	one := filepath.Join(dir, "one.png")
	if code, _, errOut := runCLI("txt2img", "--ort-lib", lib, "-p", "a red circle", "-n", "blue", "-s", "4", "--steps", "2",
		"--cfg-scale", "2", "-W", "64", "-H", "64", "-o", one, "-q"); code != 0 {
		t.Fatalf("txt2img: exit %d: %s", code, errOut)
	}
	out := filepath.Join(dir, "batch")
	manifest := writeManifest(t, `{"prompt": "a red circle", "negative_prompt": "blue", "seed": 4, "id": "c"}`)
	if code, _, errOut := runCLI("batch", "--ort-lib", lib, "--manifest", manifest, "--out", out, "--steps", "2", "--cfg-scale", "2", "-W", "64", "-H", "64", "-q"); code != 0 {
		t.Fatalf("batch: exit %d: %s", code, errOut)
	}
	k1, c1 := rflowChunkKeys(t, one)
	k2, c2 := rflowChunkKeys(t, filepath.Join(out, "c.png"))
	snake := regexp.MustCompile(`^[a-z0-9_.]+$`)
	for _, k := range append(k1, k2...) {
		if !snake.MatchString(k) {
			t.Errorf("key %q is not snake_case", k)
		}
	}
	k2 = slices.DeleteFunc(k2, func(k string) bool { return k == "id" }) // the batch item's id is batch's own
	if strings.Join(k1, ",") != strings.Join(k2, ",") {
		t.Errorf("txt2img and batch chunks differ:\n%v\n%v", k1, k2)
	}
	for _, k := range []string{"prompt", "negative_prompt", "seed", "model", "family", "version", "settings.sigmas", "settings.cfg_scale"} {
		if !slices.Contains(k1, k) {
			t.Errorf("chunk lacks %s: %v", k, k1)
		}
	}
	if c1["prompt"] != "a red circle" || c2["prompt"] != "a red circle" || c1["seed"] != 4.0 || c2["seed"] != 4.0 {
		t.Errorf("chunks %v / %v", c1, c2)
	}
}

// FLUX true CFG is written as Forge writes it, CFG scale (the true CFG scale) next to Distilled CFG
// Scale (the guidance input), so that the text reproduces the image.
func TestFluxTrueCFGParameters(t *testing.T) {
	lib := needORT(t)
	out := filepath.Join(t.TempDir(), "f.png")
	code, _, errOut := runCLI("txt2img", "--ort-lib", lib, "-m", "demo-flux", "-p", "a red circle", "-n", "blue",
		"--true-cfg-scale", "2.5", "--guidance", "4", "-s", "1", "--steps", "2", "-W", "64", "-H", "64", "-o", out, "-q")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	text, err := imagefile.ReadPNGText(out)
	if err != nil {
		t.Fatal(err)
	}
	p, err := imagefile.ParseText(text["parameters"])
	if err != nil || p.CFGScale != 2.5 || p.DistilledCFGScale != 4 || p.NegativePrompt != "blue" {
		t.Errorf("parameters %q: CFG %v, distilled %v, negative %q (%v); want 2.5, 4, blue", text["parameters"],
			p.CFGScale, p.DistilledCFGScale, p.NegativePrompt, err)
	}
}

// Flags that do nothing for the model's family are warned about and not recorded as if used.
func TestUnusedFlagsWarnedAndNotRecorded(t *testing.T) {
	lib := needORT(t)
	for _, c := range []struct {
		model string
		args  []string
		warn  []string
		not   []string // in parameters
	}{
		{"demo-flux", []string{"--cfg-scale", "5", "-n", "blue", "--clip-skip", "2", "--prompt-3", "a cat"},
			[]string{"--cfg-scale does nothing for FLUX", "-n does nothing for FLUX", "--clip-skip does nothing", "--prompt-3 does nothing"},
			[]string{"Negative prompt", "CFG scale: 5", "Clip skip"}},
		{"demo-flux", []string{"--true-cfg-scale", "3"}, []string{"--true-cfg-scale does nothing without -n"}, []string{"CFG scale: 3"}},
		{"demo-sd3", []string{"--guidance", "3", "--true-cfg-scale", "2", "-n", "blue"},
			[]string{"--guidance does nothing for SD3", "--true-cfg-scale does nothing for SD3", "-n was not used"},
			[]string{"Negative prompt", "Distilled CFG Scale"}},
		{"demo-sd3", []string{"--cfg-scale", "1", "-n", "blue"}, []string{"-n does nothing with --cfg-scale ≤ 1"}, []string{"Negative prompt"}},
	} {
		out := filepath.Join(t.TempDir(), "x.png")
		args := append([]string{"txt2img", "--ort-lib", lib, "-m", c.model, "-p", "a red circle", "-s", "1", "--steps", "2",
			"-W", "64", "-H", "64", "-o", out}, c.args...)
		code, _, errOut := runCLI(args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", c.args, code, errOut)
		}
		for _, w := range c.warn {
			if !strings.Contains(errOut, "warning: "+w) {
				t.Errorf("%v: stderr lacks the warning %q:\n%s", c.args, w, errOut)
			}
		}
		text, err := imagefile.ReadPNGText(out)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range c.not {
			if strings.Contains(text["parameters"], s) {
				t.Errorf("%v: parameters record %q as if used: %q", c.args, s, text["parameters"])
			}
		}
		var chunk map[string]any
		if err := json.Unmarshal([]byte(text["rflow"]), &chunk); err != nil {
			t.Fatal(err)
		}
		if chunk["negative_prompt"] != nil || chunk["prompt_3"] != nil {
			t.Errorf("%v: rflow chunk records an unused text: %s", c.args, text["rflow"])
		}
		if set, _ := chunk["settings"].(map[string]any); c.model == "demo-flux" && set["clip_skip"] != 0.0 {
			t.Errorf("%v: rflow chunk records clip skip %v for FLUX", c.args, set["clip_skip"])
		}
	}
}
