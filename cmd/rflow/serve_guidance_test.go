package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/imagefile"
	"github.com/rflowrt/rflow/internal/ort/orttest"
)

// TestServeGuidanceProcess: `rflow serve --guidance-rule cfg-zero-star --step-cache taylor:0.1` answers a
// request naming no rule, and one naming them as fields, with the image `rflow txt2img --guidance-rule
// cfg-zero-star --step-cache taylor:0.1` draws, bit for bit; the infotext records them as the PNG text
// does; a bad --guidance-rule is a usage error.
func TestServeGuidanceProcess(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"serve", "--guidance-rule", "pag"}, &stdout, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), "--guidance-rule") {
		t.Errorf("serve --guidance-rule pag: exit %d, %q; want 2 naming the flag", code, stderr.String())
	}
	stdout.Reset()
	stderr.Reset()

	_, _, base, log := startServe(t, "--guidance-rule", "cfg-zero-star", "--step-cache", "taylor:0.1")
	if !strings.Contains(log.String(), "with default guidance rule cfg-zero-star:zero-steps=1 and step cache taylor:threshold=0.1") {
		t.Errorf("the start line does not name the defaults:\n%s", log.String())
	}
	png := filepath.Join(t.TempDir(), "cli.png")
	if code := run(t.Context(), []string{"txt2img", "--ort-lib", orttest.Library(), "-p", "a blue square", "--seed", "21",
		"-W", "64", "-H", "64", "--steps", "8", "--cfg-scale", "3", "--guidance-rule", "cfg-zero-star", "--step-cache", "taylor:0.1",
		"-o", png, "-q"}, &stdout, &stderr); code != 0 {
		t.Fatalf("txt2img: exit %d: %s", code, stderr.String())
	}
	texts, err := imagefile.ReadPNGText(png)
	if err != nil {
		t.Fatal(err)
	}
	const recorded = `Guidance rule: "cfg-zero-star:zero-steps=1", Step cache: "taylor:threshold=0.1,warmup=2,max-skip=3"`
	if !strings.Contains(texts["parameters"], recorded) {
		t.Fatalf("the PNG text %q lacks %s", texts["parameters"], recorded)
	}
	for name, body := range map[string]string{
		"server defaults": `{"prompt": "a blue square", "seed": 21, "width": 64, "height": 64, "steps": 8, "cfg_scale": 3}`,
		"fields": `{"prompt": "a blue square", "seed": 21, "width": 64, "height": 64, "steps": 8, "cfg_scale": 3,
			"guidance_rule": "cfg-zero-star", "step_cache": "taylor:0.1"}`,
	} {
		resp, err := http.Post(base+"/sdapi/v1/txt2img", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var a struct {
			Images []string
			Info   string
		}
		if err := json.Unmarshal(data, &a); err != nil || resp.StatusCode != 200 || len(a.Images) != 1 {
			t.Fatalf("%s: %d %v %s", name, resp.StatusCode, err, data)
		}
		if !bytes.Equal(decodeB64(t, a.Images[0]).Pix, readNRGBA(t, png).Pix) {
			t.Errorf("%s: the served image differs from rflow txt2img's with the same --guidance-rule and --step-cache", name)
		}
		var info struct{ Infotexts []string }
		if err := json.Unmarshal([]byte(a.Info), &info); err != nil || len(info.Infotexts) != 1 ||
			!strings.Contains(info.Infotexts[0], recorded) {
			t.Errorf("%s: infotexts %q (%v), want them to record %s", name, info.Infotexts, err, recorded)
		}
	}
}
