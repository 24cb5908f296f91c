package server

import (
	"image"
	"net/http"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/pipeline"
)

// TestFluxTrueCFG: on FLUX (the demo-flux fixture) A1111's cfg_scale is the true CFG scale and
// distilled_cfg_scale the guidance (Forge's convention), rflow's jobs and OpenAI take true_cfg_scale and
// guidance (the CLI's flags); each draws pipeline.Generate's image of the same Request bit for bit (what
// rflow txt2img --true-cfg-scale -n --guidance draws), with and without a guidance rule. A rule without
// true CFG is a 400 naming the API's true-CFG field; the answers echo the values used.
func TestFluxTrueCFG(t *testing.T) {
	m, err := pipeline.OpenDemo("demo-flux")
	if err != nil {
		t.Fatal(err)
	}
	_, hs, l := serveModel(t, m, Options{})
	const prompt, negative = "a white ring on a purple background", "a green square on a red background"
	req := pipeline.Request{Prompt: prompt, NegativePrompt: negative, Width: 64, Height: 64, Steps: 4, Seed: 5,
		TrueCFGScale: 3, Guidance: 2.5}
	want := l.image(t, req)
	offReq := req
	offReq.TrueCFGScale = 0
	off := l.image(t, offReq)
	ruledReq := req
	ruledReq.GuidanceRule = "apg"
	ruled := l.image(t, ruledReq)
	if samePixels(want, off) || samePixels(want, ruled) {
		t.Fatal("true CFG or the rule changes nothing on the demo: the test would not see them")
	}
	body := func(extra map[string]any) map[string]any {
		b := map[string]any{"prompt": prompt, "negative_prompt": negative, "seed": 5, "steps": 4}
		for k, v := range extra {
			b[k] = v
		}
		return b
	}
	a1111 := func(name string, extra map[string]any, want *pixels) a1111Answer {
		t.Helper()
		var a a1111Answer
		code, _ := post(t, hs.Client(), hs.URL+"/sdapi/v1/txt2img", "", body(extra), &a)
		if code != 200 || len(a.Images) != 1 {
			t.Fatalf("A1111 %s: %d, %d images", name, code, len(a.Images))
		}
		if !samePixels(decodeB64PNG(t, a.Images[0]), want.img) {
			t.Errorf("A1111 %s: the image differs from pipeline.Generate's %s", name, want.what)
		}
		return a
	}
	size := map[string]any{"width": 64, "height": 64}
	with := func(m map[string]any) map[string]any {
		for k, v := range size {
			m[k] = v
		}
		return m
	}

	a := a1111("cfg_scale 3", with(map[string]any{"cfg_scale": 3, "distilled_cfg_scale": 2.5}), &pixels{want, "with true CFG 3"})
	if a.Parameters["cfg_scale"] != 3.0 || a.Parameters["true_cfg_scale"] != 3.0 || a.Parameters["distilled_cfg_scale"] != 2.5 {
		t.Errorf("A1111 parameters %v: want cfg_scale and true_cfg_scale 3, distilled_cfg_scale 2.5", a.Parameters)
	}
	info := parseInfo(t, a.Info)
	if len(info.Infotexts) != 1 || !strings.Contains(info.Infotexts[0], "CFG scale: 3, Distilled CFG Scale: 2.5, Seed: 5") ||
		!strings.Contains(info.Infotexts[0], "\nNegative prompt: "+negative+"\n") {
		t.Errorf("infotexts %q: want Forge's CFG scale: 3, Distilled CFG Scale: 2.5 and the negative prompt", info.Infotexts)
	}
	if info.Extra["Distilled CFG Scale"] != 2.5 || len(info.Notes) != 0 {
		t.Errorf("extra_generation_params %v, notes %q", info.Extra, info.Notes)
	}
	a = a1111("without cfg_scale", with(map[string]any{"distilled_cfg_scale": 2.5}), &pixels{off, "without true CFG"})
	info = parseInfo(t, a.Info)
	if a.Parameters["cfg_scale"] != 1.0 || strings.Contains(info.Infotexts[0], "Negative prompt") ||
		!strings.Contains(strings.Join(info.Notes, "\n"), "negative_prompt unused") {
		t.Errorf("without cfg_scale: parameters %v, infotext %q, notes %q: want cfg_scale 1, no negative prompt, a note",
			a.Parameters, info.Infotexts[0], info.Notes)
	}
	a1111("cfg_scale 3 with apg", with(map[string]any{"cfg_scale": 3, "distilled_cfg_scale": 2.5, "guidance_rule": "apg"}),
		&pixels{ruled, "with true CFG and apg"})

	fluxFields := map[string]any{"true_cfg_scale": 3, "guidance": 2.5}
	for _, rule := range []string{"", "apg"} {
		extra := map[string]any{"size": "64x64"}
		for k, v := range fluxFields {
			extra[k] = v
		}
		w := want
		if rule != "" {
			extra["guidance_rule"], w = rule, ruled
		}
		var o openAIResponse
		if code, _ := post(t, hs.Client(), hs.URL+"/v1/images/generations", "", body(extra), &o); code != 200 || len(o.Data) != 1 ||
			!samePixels(decodeB64PNG(t, o.Data[0].B64JSON), w) {
			t.Errorf("OpenAI generations (rule %q): %d, %d images, or the image differs from pipeline.Generate's", rule, code, len(o.Data))
		}
		delete(extra, "size")
		var created struct{ URL string }
		if code, _ := post(t, hs.Client(), hs.URL+"/rflow/v1/jobs", "", body(with(extra)), &created); code != http.StatusAccepted {
			t.Fatalf("create job (rule %q): %d", rule, code)
		}
		sn := waitJob(t, hs.URL, created.URL, func(s jobSnapshot) bool { return s.Status == "succeeded" || s.Status == "failed" })
		var b []byte
		if sn.Status != "succeeded" || len(sn.Images) != 1 || get(t, hs.URL+sn.Images[0], &b) != 200 || !samePixels(decodePNG(t, b), w) {
			t.Errorf("job (rule %q) %+v: failed, or its image differs from pipeline.Generate's", rule, sn)
		}
		var job struct {
			Params map[string]any `json:"parameters"`
		}
		if get(t, hs.URL+created.URL, &job); job.Params["true_cfg_scale"] != 3.0 || job.Params["distilled_cfg_scale"] != 2.5 {
			t.Errorf("job parameters %v: want true_cfg_scale 3 and distilled_cfg_scale 2.5", job.Params)
		}
	}

	editReq := req
	editReq.InitImage, editReq.Strength = testInit(), 0.6
	var o openAIResponse
	if code := postForm(t, hs.URL+"/v1/images/edits", map[string][][]byte{"image": {pngBytes(t, testInit())}},
		map[string]string{"prompt": prompt, "negative_prompt": negative, "seed": "5", "steps": "4", "strength": "0.6",
			"true_cfg_scale": "3", "guidance": "2.5"}, &o); code != 200 || len(o.Data) != 1 ||
		!samePixels(decodeB64PNG(t, o.Data[0].B64JSON), l.image(t, editReq)) {
		t.Errorf("OpenAI edits with true_cfg_scale: %d, %d images, or the image differs from pipeline.Generate's", code, len(o.Data))
	}

	for _, c := range []struct {
		api   string
		extra map[string]any
		want  string
	}{
		{"/sdapi/v1/txt2img", map[string]any{"guidance_rule": "apg"}, "set cfg_scale > 1 and send a negative_prompt"},
		{"/sdapi/v1/txt2img", map[string]any{"guidance_rule": "cfg-zero-star", "cfg_scale": 3, "negative_prompt": ""}, "set cfg_scale > 1"},
		{"/rflow/v1/jobs", map[string]any{"guidance_rule": "apg", "cfg_scale": 3}, "set true_cfg_scale > 1"},
		{"/v1/images/generations", map[string]any{"guidance_rule": "apg"}, "set true_cfg_scale > 1"},
		{"/rflow/v1/jobs", map[string]any{"true_cfg_scale": 101}, "true_cfg_scale 101 out of range"},
		{"/sdapi/v1/txt2img", map[string]any{"distilled_cfg_scale": -1}, "distilled_cfg_scale -1 out of range"},
	} {
		var e apiError
		if code, _ := post(t, hs.Client(), hs.URL+c.api, "", body(c.extra), &e); code != 400 || !strings.Contains(e.Error.Message, c.want) {
			t.Errorf("%s with %v: %d %q, want 400 saying %q", c.api, c.extra, code, e.Error.Message, c.want)
		}
	}
}

// pixels is an expected image and what it is, for messages.
type pixels struct {
	img  *image.NRGBA
	what string
}
