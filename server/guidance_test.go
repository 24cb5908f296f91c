package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rflowrt/rflow/pipeline"
)

const (
	zeroStar = "cfg-zero-star:zero-steps=1"               // cfg-zero-star's canonical spelling
	taylor   = "taylor:threshold=0.1,warmup=2,max-skip=3" // taylor:0.1's
)

// guidedRequest is what every API below asks for, as a pipeline.Request.
func guidedRequest(seed uint64) pipeline.Request {
	return pipeline.Request{Prompt: "a blue square", Width: 64, Height: 64, Steps: 8, Seed: seed, CFGScale: 3,
		GuidanceRule: "cfg-zero-star", StepCache: "taylor:0.1"}
}

// loneResult is pipeline.Generate's result for r, alone.
func loneResult(t *testing.T, l *lone, r pipeline.Request) pipeline.Result {
	t.Helper()
	res, err := l.p.Generate(context.Background(), r, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

type a1111Answer struct {
	Images     []string       `json:"images"`
	Parameters map[string]any `json:"parameters"`
	Info       string         `json:"info"`
}

type a1111InfoFields struct {
	Infotexts []string       `json:"infotexts"`
	Extra     map[string]any `json:"extra_generation_params"`
	Notes     []string       `json:"notes"`
}

func parseInfo(t *testing.T, s string) a1111InfoFields {
	t.Helper()
	var info a1111InfoFields
	if err := json.Unmarshal([]byte(s), &info); err != nil {
		t.Fatalf("info is not JSON: %v: %q", err, s)
	}
	return info
}

// TestGuidanceFieldsMatchGenerate: guidance_rule=cfg-zero-star and step_cache=taylor:0.1 on the A1111,
// OpenAI and jobs APIs draw pipeline.Generate's image for the same Request bit for bit; the cache
// really skips calls and the rule really changes the image; the answers record both as the CLI's PNG
// text does.
func TestGuidanceFieldsMatchGenerate(t *testing.T) {
	_, hs := testServer(t, Options{})
	l := newLone(t)
	want := loneResult(t, l, guidedRequest(21))
	if want.Timings.CachedCalls == 0 {
		t.Fatalf("the step cache filled no call (timings %+v): the test would not see it", want.Timings)
	}
	plain := guidedRequest(21)
	plain.GuidanceRule, plain.StepCache = "", ""
	if samePixels(l.image(t, plain), want.Images[0]) {
		t.Fatal("the rule and the cache change nothing: the test would not see them")
	}
	fields := map[string]any{"guidance_rule": "cfg-zero-star", "step_cache": "taylor:0.1"}
	with := func(m map[string]any) map[string]any {
		for k, v := range fields {
			m[k] = v
		}
		return m
	}

	var a a1111Answer
	code, _ := post(t, hs.Client(), hs.URL+"/sdapi/v1/txt2img", "", with(map[string]any{"prompt": "a blue square", "seed": 21,
		"steps": 8, "width": 64, "height": 64, "cfg_scale": 3}), &a)
	if code != 200 || len(a.Images) != 1 {
		t.Fatalf("A1111 txt2img: %d, %d images", code, len(a.Images))
	}
	if !samePixels(decodeB64PNG(t, a.Images[0]), want.Images[0]) {
		t.Error("A1111: the image differs from pipeline.Generate's with the same Request")
	}
	if a.Parameters["guidance_rule"] != zeroStar || a.Parameters["step_cache"] != taylor {
		t.Errorf("A1111 parameters %v: want guidance_rule %q and step_cache %q", a.Parameters, zeroStar, taylor)
	}
	info := parseInfo(t, a.Info)
	wantText := fmt.Sprintf("Guidance rule: %q, Step cache: %q", zeroStar, taylor) // quoted: the values hold ':' and ','
	if len(info.Infotexts) != 1 || !strings.Contains(info.Infotexts[0], wantText) {
		t.Errorf("infotexts %q: want %s", info.Infotexts, wantText)
	}
	if info.Extra["Guidance rule"] != zeroStar || info.Extra["Step cache"] != taylor {
		t.Errorf("extra_generation_params %v", info.Extra)
	}

	var o openAIResponse
	code, _ = post(t, hs.Client(), hs.URL+"/v1/images/generations", "", with(map[string]any{"prompt": "a blue square", "seed": 21,
		"steps": 8, "size": "64x64", "cfg_scale": 3}), &o)
	if code != 200 || len(o.Data) != 1 || !samePixels(decodeB64PNG(t, o.Data[0].B64JSON), want.Images[0]) {
		t.Errorf("OpenAI generations: %d, %d images, or the image differs from pipeline.Generate's", code, len(o.Data))
	}

	var created struct{ ID, URL string }
	code, _ = post(t, hs.Client(), hs.URL+"/rflow/v1/jobs", "", with(map[string]any{"prompt": "a blue square", "seed": 21,
		"steps": 8, "width": 64, "height": 64, "cfg_scale": 3}), &created)
	if code != http.StatusAccepted {
		t.Fatalf("create job: %d", code)
	}
	sn := waitJob(t, hs.URL, created.URL, func(s jobSnapshot) bool { return s.Status == "succeeded" || s.Status == "failed" })
	var b []byte
	if sn.Status != "succeeded" || len(sn.Images) != 1 || get(t, hs.URL+sn.Images[0], &b) != 200 ||
		!samePixels(decodePNG(t, b), want.Images[0]) {
		t.Errorf("job %+v: failed, or its image differs from pipeline.Generate's", sn)
	}
	var job struct {
		Params map[string]any `json:"parameters"`
	}
	if get(t, hs.URL+created.URL, &job); job.Params["guidance_rule"] != zeroStar || job.Params["step_cache"] != taylor {
		t.Errorf("job params %v", job.Params)
	}
}

// TestGuidanceDefaults: rflow serve's --guidance-rule and --step-cache are the defaults of requests
// that name none; "cfg" and "off" turn them off; a request without CFG runs without the default rule,
// with a note; a bad default is an error of New.
func TestGuidanceDefaults(t *testing.T) {
	_, hs := testServer(t, Options{GuidanceRule: "cfg-zero-star", StepCache: "taylor:0.1"})
	l := newLone(t)
	body := func(extra map[string]any) map[string]any {
		m := map[string]any{"prompt": "a blue square", "seed": 21, "steps": 8, "width": 64, "height": 64, "cfg_scale": 3}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	check := func(name string, extra map[string]any, want pipeline.Request, note string) {
		t.Helper()
		var a a1111Answer
		if code, _ := post(t, hs.Client(), hs.URL+"/sdapi/v1/txt2img", "", body(extra), &a); code != 200 || len(a.Images) != 1 {
			t.Fatalf("%s: %d, %d images", name, code, len(a.Images))
		}
		if !samePixels(decodeB64PNG(t, a.Images[0]), l.image(t, want)) {
			t.Errorf("%s: the image differs from pipeline.Generate's for %+v", name, want)
		}
		notes := strings.Join(parseInfo(t, a.Info).Notes, "\n")
		if note != "" && !strings.Contains(notes, note) || note == "" && notes != "" {
			t.Errorf("%s: notes %q, want %q", name, notes, note)
		}
	}
	check("defaults", nil, guidedRequest(21), "")
	off := guidedRequest(21)
	off.GuidanceRule, off.StepCache = "", ""
	check("cfg and off", map[string]any{"guidance_rule": "cfg", "step_cache": "off"}, off, "")
	noCFG := guidedRequest(21)
	noCFG.CFGScale, noCFG.GuidanceRule = 1, ""
	check("no CFG", map[string]any{"cfg_scale": 1}, noCFG, "the server's default guidance rule "+zeroStar+" is not applied")

	var e apiError
	code, _ := post(t, hs.Client(), hs.URL+"/sdapi/v1/txt2img", "", body(map[string]any{"cfg_scale": 1, "guidance_rule": "apg"}), &e)
	if code != 400 || !strings.Contains(e.Error.Message, "guidance_rule") || !strings.Contains(e.Error.Message, "cfg_scale > 1") {
		t.Errorf("a request's own rule without CFG: %d %q, want 400 naming guidance_rule and cfg_scale > 1", code, e.Error.Message)
	}
	m, err := pipeline.OpenDemo("demo-sd3")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []Options{{GuidanceRule: "pag"}, {StepCache: "fast"}} {
		if _, err := New(m, o); err == nil {
			t.Errorf("New with %+v: no error", o)
		}
	}
}

// TestGuidanceBadValues: unknown or malformed values get 400 naming the field and the accepted values,
// on every API.
func TestGuidanceBadValues(t *testing.T) {
	_, hs := testServer(t, Options{})
	base := map[string]any{"prompt": "a blue square", "steps": 2, "cfg_scale": 3}
	for _, c := range []struct {
		name  string
		extra map[string]any
		want  []string
	}{
		{"unknown rule", map[string]any{"guidance_rule": "pag"}, []string{`guidance_rule "pag"`, "cfg-zero-star", "apg", "cfg++"}},
		{"rule key", map[string]any{"guidance_rule": "apg:speed=2"}, []string{`guidance_rule "apg:speed=2"`, "norm-threshold"}},
		{"unknown cache", map[string]any{"step_cache": "fast"}, []string{`step_cache "fast"`, "easycache", "taylor"}},
		{"cache value", map[string]any{"step_cache": "taylor:-1"}, []string{`step_cache "taylor:-1"`, "accepted: off"}},
		{"cache type", map[string]any{"step_cache": 0.1}, []string{"step_cache"}},
		{"cfg++ sampler", map[string]any{"guidance_rule": "cfg++", "sampler": "heun"}, []string{"guidance_rule", "euler"}},
		{"slg without layers", map[string]any{"slg_scale": 3}, []string{"slg_scale", "skip_layers"}},
		{"slg range", map[string]any{"skip_layers": []int{1}, "skip_layer_start": 0.5, "skip_layer_end": 0.2},
			[]string{"skip_layer_start 0.5 and skip_layer_end 0.2"}},
		{"slg scale", map[string]any{"skip_layers": []int{1}, "slg_scale": -1}, []string{"slg_scale -1"}},
		{"slg on the demo", map[string]any{"skip_layers": []int{1}}, []string{"skip_layers:", "skip-layer guidance unsupported"}},
	} {
		for _, api := range []string{"/sdapi/v1/txt2img", "/v1/images/generations", "/rflow/v1/jobs"} {
			b := map[string]any{}
			for k, v := range base {
				b[k] = v
			}
			for k, v := range c.extra {
				b[k] = v
			}
			if api == "/sdapi/v1/txt2img" && b["sampler"] != nil {
				b["sampler_name"] = b["sampler"]
				delete(b, "sampler")
			}
			var e apiError
			code, _ := post(t, hs.Client(), hs.URL+api, "", b, &e)
			ok := code == 400
			for _, w := range c.want {
				ok = ok && strings.Contains(e.Error.Message, w)
			}
			if !ok {
				t.Errorf("%s on %s: %d %q, want 400 saying %q", c.name, api, code, e.Error.Message, c.want)
			}
		}
	}
}

// TestGuidedRequestsRunAlone: concurrent requests with a guidance rule and a step cache are not batched
// (pipeline's batchKey keeps them alone: rules and caches look at the whole batch), each draws its
// lone image, and plain requests arriving with them still batch among themselves.
func TestGuidedRequestsRunAlone(t *testing.T) {
	s, hs := testServer(t, Options{BatchWindow: 150 * time.Millisecond})
	l := newLone(t)
	reqs := []pipeline.Request{guidedRequest(30), guidedRequest(31), guidedRequest(32)}
	reqs[2].GuidanceRule = "apg"
	for i := range 2 { // two plain ones
		r := guidedRequest(uint64(33 + i))
		r.GuidanceRule, r.StepCache = "", ""
		reqs = append(reqs, r)
	}
	imgs := make([]string, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := map[string]any{"prompt": r.Prompt, "size": "64x64", "steps": r.Steps, "seed": r.Seed, "cfg_scale": r.CFGScale,
				"guidance_rule": r.GuidanceRule, "step_cache": r.StepCache}
			if r.GuidanceRule == "" {
				b["guidance_rule"], b["step_cache"] = "cfg", "off"
			}
			var out openAIResponse
			if code, _ := post(t, hs.Client(), hs.URL+"/v1/images/generations", "", b, &out); code == 200 && len(out.Data) == 1 {
				imgs[i] = out.Data[0].B64JSON
			}
		}()
	}
	wg.Wait()
	st := s.engine.Stats()
	if st.BatchedRequests > 2 || st.Runs < 4 {
		t.Errorf("engine stats %+v: want the three guided requests alone (at most the two plain ones batched)", st)
	}
	for i, b := range imgs {
		if b == "" {
			t.Fatalf("request %d failed", i)
		}
		if !samePixels(decodeB64PNG(t, b), l.image(t, reqs[i])) {
			t.Errorf("request %d (%s, %s): the image differs from a lone run", i, reqs[i].GuidanceRule, reqs[i].StepCache)
		}
	}
}

// TestGuidanceFieldsOnEdits: A1111 img2img and OpenAI's multipart edits take the fields too (edits'
// skip_layers is a comma-separated form value) and draw pipeline.Generate's img2img image.
func TestGuidanceFieldsOnEdits(t *testing.T) {
	_, hs := testServer(t, Options{})
	l := newLone(t)
	init := testInit()
	r := guidedRequest(9)
	r.InitImage, r.Strength = init, 0.6
	want := l.image(t, r)

	var a a1111Answer
	code, _ := post(t, hs.Client(), hs.URL+"/sdapi/v1/img2img", "", map[string]any{"prompt": "a blue square", "seed": 9,
		"steps": 8, "cfg_scale": 3, "denoising_strength": 0.6, "guidance_rule": "cfg-zero-star", "step_cache": "taylor:0.1",
		"init_images": []string{base64.StdEncoding.EncodeToString(pngBytes(t, init))}}, &a)
	if code != 200 || len(a.Images) != 1 || !samePixels(decodeB64PNG(t, a.Images[0]), want) {
		t.Errorf("A1111 img2img: %d, %d images, or the image differs from pipeline.Generate's", code, len(a.Images))
	}
	if info := parseInfo(t, a.Info); info.Extra["Guidance rule"] != zeroStar || info.Extra["Step cache"] != taylor {
		t.Errorf("img2img extra_generation_params %v", info.Extra)
	}

	files := map[string][][]byte{"image": {pngBytes(t, init)}}
	values := map[string]string{"prompt": "a blue square", "seed": "9", "steps": "8", "cfg_scale": "3", "strength": "0.6",
		"guidance_rule": "cfg-zero-star", "step_cache": "taylor:0.1"}
	var o openAIResponse
	if code := postForm(t, hs.URL+"/v1/images/edits", files, values, &o); code != 200 || len(o.Data) != 1 ||
		!samePixels(decodeB64PNG(t, o.Data[0].B64JSON), want) {
		t.Errorf("OpenAI edits: %d, %d images, or the image differs from pipeline.Generate's", code, len(o.Data))
	}
	for field, v := range map[string]string{"guidance_rule": "pag", "step_cache": "fast", "skip_layers": "7,x"} {
		bad := map[string]string{"prompt": "a blue square", "cfg_scale": "3", field: v}
		var e apiError
		if code := postForm(t, hs.URL+"/v1/images/edits", files, bad, &e); code != 400 || !strings.Contains(e.Error.Message, field) {
			t.Errorf("edits with %s=%q: %d %q, want 400 naming the field", field, v, code, e.Error.Message)
		}
	}
}

// TestSLGInfotext: skip-layer guidance is recorded in the infotext after the guidance rule, the list
// quoted as A1111 quotes a value holding a comma.
func TestSLGInfotext(t *testing.T) {
	p := &params{Prompt: "x", Guide: guidanceParams{SLGLayers: []int{7, 8, 9}, SLGScale: 2.8, SLGStart: 0.01, SLGStop: 0.2}}
	got := infotext(p, pipeline.Resolved{Steps: 4, Sampler: "euler", CFGScale: 3, Seed: 1, Width: 64, Height: 64, Shift: 3,
		GuidanceRule: "apg:eta=1,norm-threshold=5,momentum=0"}, "m")
	want := `Shift: 3, Guidance rule: "apg:eta=1,norm-threshold=5,momentum=0", Skip layers: "7,8,9", SLG scale: 2.8, ` +
		`Skip layer start: 0.01, Skip layer end: 0.2`
	if !strings.HasSuffix(got, want) {
		t.Errorf("infotext %q, want it to end with %q", got, want)
	}
}
