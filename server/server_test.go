package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rflowrt/rflow/internal/ort/orttest"
	"github.com/rflowrt/rflow/pipeline"
)

func TestMain(m *testing.M) { orttest.Main(m) }

// testServer serves demo-sd3 over loopback with the options given (session options of the tests).
func testServer(t testing.TB, o Options) (*Server, *httptest.Server) {
	t.Helper()
	m, err := pipeline.OpenDemo("demo-sd3")
	if err != nil {
		t.Fatal(err)
	}
	o.Session = orttest.Options()
	s, err := New(m, o)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		hs.Close()
		if err := s.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return s, hs
}

// lone draws a request alone through its own pipeline: what rflow txt2img draws for it.
type lone struct {
	p *pipeline.Pipeline
}

func newLone(t testing.TB) *lone {
	m, err := pipeline.OpenDemo("demo-sd3")
	if err != nil {
		t.Fatal(err)
	}
	p := pipeline.New(m, pipeline.Options{Session: orttest.Options(), KeepModels: true})
	t.Cleanup(func() { p.Close() })
	return &lone{p: p}
}

func (l *lone) image(t testing.TB, r pipeline.Request) *image.NRGBA {
	t.Helper()
	res, err := l.p.Generate(context.Background(), r, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res.Images[0]
}

// post sends JSON and decodes the JSON answer into out (when not nil); it returns the status.
func post(t testing.TB, c *http.Client, url, key string, body any, out any) (int, http.Header) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(http.MethodPost, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("POST %s: %d, not JSON: %v\n%s", url, resp.StatusCode, err, data)
		}
	}
	return resp.StatusCode, resp.Header
}

func get(t testing.TB, url string, out any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if b, ok := out.(*[]byte); ok {
			*b = data
		} else if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("GET %s: %d, not JSON: %v\n%s", url, resp.StatusCode, err, data)
		}
	}
	return resp.StatusCode
}

func decodePNG(t testing.TB, b []byte) *image.NRGBA {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	n, ok := img.(*image.NRGBA)
	if !ok {
		b := img.Bounds()
		n = image.NewNRGBA(b)
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				n.Set(x, y, img.At(x, y))
			}
		}
	}
	return n
}

func decodeB64PNG(t testing.TB, s string) *image.NRGBA {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return decodePNG(t, b)
}

func samePixels(a, b *image.NRGBA) bool {
	return a.Bounds() == b.Bounds() && bytes.Equal(a.Pix, b.Pix)
}

type openAIResponse struct {
	Created int64 `json:"created"`
	Data    []struct {
		B64JSON string `json:"b64_json"`
		URL     string `json:"url"`
	} `json:"data"`
	Size string `json:"size"`
}

// TestOpenAIGenerations: n images numbered seed, seed+1, … each equal to a lone run of its seed; url
// responses point at the same images.
func TestOpenAIGenerations(t *testing.T) {
	_, hs := testServer(t, Options{})
	l := newLone(t)
	var out openAIResponse
	code, _ := post(t, hs.Client(), hs.URL+"/v1/images/generations", "", map[string]any{"prompt": "a red circle", "n": 2,
		"size": "64x64", "seed": 5, "steps": 4, "response_format": "b64_json", "model": "dall-e-3", "quality": "hd"}, &out)
	if code != 200 || len(out.Data) != 2 || out.Size != "64x64" {
		t.Fatalf("status %d, %d images, size %q", code, len(out.Data), out.Size)
	}
	for i, d := range out.Data {
		want := l.image(t, pipeline.Request{Prompt: "a red circle", Width: 64, Height: 64, Steps: 4, Seed: uint64(5 + i)})
		if !samePixels(decodeB64PNG(t, d.B64JSON), want) {
			t.Errorf("image %d differs from a lone run of seed %d", i, 5+i)
		}
	}
	code, _ = post(t, hs.Client(), hs.URL+"/v1/images/generations", "", map[string]any{"prompt": "a red circle",
		"size": "64x64", "seed": 5, "steps": 4, "response_format": "url"}, &out)
	if code != 200 || len(out.Data) != 1 || !strings.HasPrefix(out.Data[0].URL, hs.URL+"/rflow/v1/jobs/") {
		t.Fatalf("url response: %d %+v", code, out)
	}
	var b []byte
	if code := get(t, out.Data[0].URL, &b); code != 200 {
		t.Fatalf("GET image url: %d", code)
	}
	if !samePixels(decodePNG(t, b), l.image(t, pipeline.Request{Prompt: "a red circle", Width: 64, Height: 64, Steps: 4, Seed: 5})) {
		t.Error("the url's image differs from a lone run")
	}
	var models struct {
		Data []struct{ ID string } `json:"data"`
	}
	if code := get(t, hs.URL+"/v1/models", &models); code != 200 || len(models.Data) != 1 || models.Data[0].ID != "demo-sd3" {
		t.Errorf("GET /v1/models: %d %+v", code, models)
	}
}

// testInit is an init image for img2img: a gradient the demo VAE encodes.
func testInit() *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, 64, 64))
	for y := range 64 {
		for x := range 64 {
			o := img.PixOffset(x, y)
			img.Pix[o], img.Pix[o+1], img.Pix[o+2], img.Pix[o+3] = uint8(4*x), uint8(4*y), 128, 255
		}
	}
	return img
}

func pngBytes(t testing.TB, img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestImg2img: A1111 img2img (base64 init image) and OpenAI edits (multipart) draw what a lone
// img2img run of the same seed and strength draws.
func TestImg2img(t *testing.T) {
	_, hs := testServer(t, Options{})
	l := newLone(t)
	init := testInit()
	want := l.image(t, pipeline.Request{Prompt: "a blue square", Width: 64, Height: 64, Steps: 4, Seed: 9, InitImage: init, Strength: 0.6})

	var a struct {
		Images []string `json:"images"`
		Info   string   `json:"info"`
	}
	code, _ := post(t, hs.Client(), hs.URL+"/sdapi/v1/img2img", "", map[string]any{"prompt": "a blue square", "seed": 9,
		"steps": 4, "denoising_strength": 0.6, "init_images": []string{base64.StdEncoding.EncodeToString(pngBytes(t, init))}}, &a)
	if code != 200 || len(a.Images) != 1 {
		t.Fatalf("img2img: %d, %d images", code, len(a.Images))
	}
	if !samePixels(decodeB64PNG(t, a.Images[0]), want) {
		t.Error("A1111 img2img differs from a lone run")
	}

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("image", "init.png")
	fw.Write(pngBytes(t, init))
	for k, v := range map[string]string{"prompt": "a blue square", "seed": "9", "steps": "4", "strength": "0.6", "response_format": "b64_json"} {
		mw.WriteField(k, v)
	}
	mw.Close()
	resp, err := http.Post(hs.URL+"/v1/images/edits", mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out openAIResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 || len(out.Data) != 1 {
		t.Fatalf("edits: %d %v %+v", resp.StatusCode, err, out)
	}
	if !samePixels(decodeB64PNG(t, out.Data[0].B64JSON), want) {
		t.Error("OpenAI edits differs from a lone run")
	}
}

// TestA1111: txt2img's images, parameters and info string (A1111's fields, override_settings noted),
// and the GET endpoints clients probe.
func TestA1111(t *testing.T) {
	_, hs := testServer(t, Options{})
	l := newLone(t)
	var a struct {
		Images     []string       `json:"images"`
		Parameters map[string]any `json:"parameters"`
		Info       string         `json:"info"`
	}
	code, _ := post(t, hs.Client(), hs.URL+"/sdapi/v1/txt2img", "", map[string]any{"prompt": "a green tree", "negative_prompt": "",
		"seed": 11, "steps": 3, "width": 64, "height": 48, "batch_size": 2, "n_iter": 1, "sampler_name": "Euler", "scheduler": "Automatic",
		"cfg_scale": 1, "override_settings": map[string]any{"sd_model_checkpoint": "x"}, "send_images": true, "save_images": false,
		"restore_faces": false, "enable_hr": false, "alwayson_scripts": map[string]any{}}, &a)
	if code != 200 || len(a.Images) != 2 {
		t.Fatalf("txt2img: %d, %d images", code, len(a.Images))
	}
	for i, img := range a.Images {
		want := l.image(t, pipeline.Request{Prompt: "a green tree", Width: 64, Height: 48, Steps: 3, Seed: uint64(11 + i), Sampler: "euler", CFGScale: 1})
		if !samePixels(decodeB64PNG(t, img), want) {
			t.Errorf("image %d differs from a lone run", i)
		}
	}
	var info struct {
		Seed      uint64   `json:"seed"`
		AllSeeds  []uint64 `json:"all_seeds"`
		Width     int      `json:"width"`
		Sampler   string   `json:"sampler_name"`
		Infotexts []string `json:"infotexts"`
		Notes     []string `json:"notes"`
	}
	if err := json.Unmarshal([]byte(a.Info), &info); err != nil {
		t.Fatalf("info is not a JSON string: %v: %q", err, a.Info)
	}
	if info.Seed != 11 || len(info.AllSeeds) != 2 || info.AllSeeds[1] != 12 || info.Width != 64 || info.Sampler != "euler" ||
		len(info.Infotexts) != 2 || !strings.Contains(info.Infotexts[0], "Seed: 11") {
		t.Errorf("info %+v", info)
	}
	if len(info.Notes) == 0 || !strings.Contains(info.Notes[0], "override_settings ignored: sd_model_checkpoint") {
		t.Errorf("info notes %q: want override_settings noted", info.Notes)
	}
	if a.Parameters["prompt"] != "a green tree" || a.Parameters["seed"] != float64(11) {
		t.Errorf("parameters %v", a.Parameters)
	}
	for _, path := range []string{"samplers", "schedulers", "sd-models"} {
		var list []map[string]any
		if code := get(t, hs.URL+"/sdapi/v1/"+path, &list); code != 200 || len(list) == 0 || list[0]["name"] == nil && list[0]["title"] == nil {
			t.Errorf("GET /sdapi/v1/%s: %d %v", path, code, list)
		}
	}
	for _, path := range []string{"upscalers", "sd-vae", "loras", "prompt-styles"} {
		var list []any
		if code := get(t, hs.URL+"/sdapi/v1/"+path, &list); code != 200 || list == nil {
			t.Errorf("GET /sdapi/v1/%s: %d %v, want an empty list", path, code, list)
		}
	}
	var obj map[string]any
	if code := get(t, hs.URL+"/sdapi/v1/options", &obj); code != 200 || obj["sd_model_checkpoint"] != "demo-sd3" {
		t.Errorf("options: %d %v", code, obj)
	}
	if code := get(t, hs.URL+"/sdapi/v1/progress", &obj); code != 200 || obj["state"] == nil {
		t.Errorf("progress: %d %v", code, obj)
	}
	if code, _ := post(t, hs.Client(), hs.URL+"/sdapi/v1/interrupt", "", "", nil); code != 200 {
		t.Errorf("interrupt: %d", code)
	}
}

type jobSnapshot struct {
	ID       string   `json:"id"`
	Status   string   `json:"status"`
	Step     int      `json:"step"`
	Steps    int      `json:"steps"`
	Progress float64  `json:"progress"`
	Images   []string `json:"images"`
	Preview  string   `json:"preview"`
	Error    string   `json:"error"`
}

func waitJob(t testing.TB, base, url string, done func(jobSnapshot) bool) jobSnapshot {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var sn jobSnapshot
		if code := get(t, base+url, &sn); code != 200 {
			t.Fatalf("GET %s: %d", url, code)
		}
		if done(sn) {
			return sn
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("job %s did not get there in 30 s", url)
	return jobSnapshot{}
}

// TestJobs: 202 with the job's URL; status, progress and preview while it runs; its image after; DELETE
// cancels a running job; unknown ids are 404.
func TestJobs(t *testing.T) {
	_, hs := testServer(t, Options{})
	l := newLone(t)
	var created struct {
		ID, URL string
	}
	code, hdr := post(t, hs.Client(), hs.URL+"/rflow/v1/jobs", "", map[string]any{"prompt": "a red circle", "width": 64, "height": 64,
		"steps": 4, "seed": 3}, &created)
	if code != http.StatusAccepted || created.URL == "" || hdr.Get("Location") != created.URL {
		t.Fatalf("create: %d %+v Location %q", code, created, hdr.Get("Location"))
	}
	sn := waitJob(t, hs.URL, created.URL, func(s jobSnapshot) bool { return s.Status == "succeeded" || s.Status == "failed" })
	if sn.Status != "succeeded" || len(sn.Images) != 1 || sn.Progress != 1 || sn.Steps != 4 || sn.Preview == "" {
		t.Fatalf("finished job %+v", sn)
	}
	var b []byte
	if code := get(t, hs.URL+sn.Images[0], &b); code != 200 {
		t.Fatalf("image: %d", code)
	}
	if !samePixels(decodePNG(t, b), l.image(t, pipeline.Request{Prompt: "a red circle", Width: 64, Height: 64, Steps: 4, Seed: 3})) {
		t.Error("job image differs from a lone run")
	}
	if code := get(t, hs.URL+sn.Preview, &b); code != 200 || len(b) == 0 {
		t.Errorf("preview: %d, %d bytes", code, len(b))
	}

	// A long job (many steps) is cancelled while it runs.
	code, _ = post(t, hs.Client(), hs.URL+"/rflow/v1/jobs", "", map[string]any{"prompt": "a red circle", "width": 256, "height": 256,
		"steps": 150, "seed": 3}, &created)
	if code != http.StatusAccepted {
		t.Fatalf("create long job: %d", code)
	}
	waitJob(t, hs.URL, created.URL, func(s jobSnapshot) bool { return s.Step >= 2 })
	req, _ := http.NewRequest(http.MethodDelete, hs.URL+created.URL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&sn)
	resp.Body.Close()
	if resp.StatusCode != 200 || sn.Status != "cancelled" || sn.Step >= 150 {
		t.Errorf("DELETE: %d %+v", resp.StatusCode, sn)
	}
	var e apiError
	if code := get(t, hs.URL+"/rflow/v1/jobs/nosuchjob", &e); code != 404 || e.Error.Message == "" {
		t.Errorf("unknown job: %d %+v", code, e)
	}
}

// TestBadRequests: every mistake gets its status and a JSON error, nothing is generated, and the
// server keeps serving.
func TestBadRequests(t *testing.T) {
	s, hs := testServer(t, Options{MaxBodyBytes: 4096})
	for _, c := range []struct {
		name, path string
		body       any
		code       int
		msg        string
	}{
		{"bad JSON", "/v1/images/generations", `{"prompt": "x",`, 400, "not a JSON object"},
		{"not an object", "/sdapi/v1/txt2img", `[1,2]`, 400, "not a JSON object"},
		{"unknown field", "/v1/images/generations", map[string]any{"prompt": "x", "promtp": "y"}, 400, `unknown field(s) "promtp"`},
		{"unknown A1111 field", "/sdapi/v1/txt2img", map[string]any{"prompt": "x", "cfg": 3}, 400, `"cfg"`},
		{"wrong type", "/sdapi/v1/txt2img", map[string]any{"prompt": "x", "steps": "many"}, 400, "bad JSON"},
		{"oversized body", "/sdapi/v1/txt2img", map[string]any{"prompt": strings.Repeat("x", 5000)}, 413, "limit of 4096 bytes"},
		{"absurd size", "/sdapi/v1/txt2img", map[string]any{"prompt": "x", "width": 100000, "height": 100000}, 400, "out of range"},
		{"absurd OpenAI size", "/v1/images/generations", map[string]any{"prompt": "x", "size": "99999x99999"}, 400, "out of range"},
		{"size not WxH", "/v1/images/generations", map[string]any{"prompt": "x", "size": "big"}, 400, "WIDTHxHEIGHT"},
		{"size not multiple of 16", "/sdapi/v1/txt2img", map[string]any{"prompt": "x", "width": 70, "height": 64}, 400, "multiple of 16"},
		{"absurd steps", "/sdapi/v1/txt2img", map[string]any{"prompt": "x", "steps": 1000000}, 400, "steps 1000000 out of range"},
		{"too many images", "/v1/images/generations", map[string]any{"prompt": "x", "n": 1000}, 400, "out of range"},
		{"negative batch", "/sdapi/v1/txt2img", map[string]any{"prompt": "x", "batch_size": -3}, 400, "positive"},
		{"unknown sampler", "/sdapi/v1/txt2img", map[string]any{"prompt": "x", "sampler_name": "Nope"}, 400, "unknown sampler"},
		{"empty prompt", "/rflow/v1/jobs", map[string]any{"prompt": " "}, 400, "prompt is empty"},
		{"webp", "/v1/images/generations", map[string]any{"prompt": "x", "output_format": "webp"}, 400, "png or jpeg"},
		{"img2img without image", "/sdapi/v1/img2img", map[string]any{"prompt": "x"}, 400, "init_images"},
		{"init image not base64", "/sdapi/v1/img2img", map[string]any{"prompt": "x", "init_images": []string{"%%%"}}, 400, "base64"},
		{"init image not an image", "/sdapi/v1/img2img", map[string]any{"prompt": "x", "init_images": []string{"aGVsbG8="}}, 400, "PNG or JPEG"},
		{"mask not an image", "/sdapi/v1/img2img", map[string]any{"prompt": "x", "mask": "aGVsbG8=", "init_images": []string{tinyPNG}}, 400, "mask: image is not a PNG or JPEG"},
		{"no such endpoint", "/sdapi/v1/extra-single-image", map[string]any{}, 404, "no such endpoint"},
		{"wrong method", "/sdapi/v1/samplers", map[string]any{}, 405, "takes GET, not POST"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var e apiError
			code, _ := post(t, hs.Client(), hs.URL+c.path, "", c.body, &e)
			if code != c.code || !strings.Contains(e.Error.Message, c.msg) {
				t.Errorf("%d %q, want %d and a message with %q", code, e.Error.Message, c.code, c.msg)
			}
		})
	}
	if got := s.metrics.avgJobSeconds(); got != 0 {
		t.Errorf("a job ran for a bad request (mean job time %g s)", got)
	}
	var h map[string]any
	if code := get(t, hs.URL+"/healthz", &h); code != 200 || h["status"] != "ok" {
		t.Errorf("healthz after bad requests: %d %v", code, h)
	}
}

// TestAPIKey: with a key, API calls without it or with another one get 401 (JSON); the page and the
// health check stay open.
func TestAPIKey(t *testing.T) {
	_, hs := testServer(t, Options{APIKey: "s3cret"})
	body := map[string]any{"prompt": "x", "size": "64x64", "steps": 1}
	for _, key := range []string{"", "wrong", "S3CRET", "s3cret2"} {
		var e apiError
		if code, h := post(t, hs.Client(), hs.URL+"/v1/images/generations", key, body, &e); code != 401 ||
			!strings.Contains(e.Error.Message, "API key") || h.Get("WWW-Authenticate") == "" {
			t.Errorf("key %q: %d %+v", key, code, e)
		}
	}
	if code := get(t, hs.URL+"/metrics", nil); code != 401 {
		t.Errorf("/metrics without the key: %d", code)
	}
	var out openAIResponse
	if code, _ := post(t, hs.Client(), hs.URL+"/v1/images/generations", "s3cret", body, &out); code != 200 || len(out.Data) != 1 {
		t.Errorf("with the key: %d", code)
	}
	for _, p := range []string{"/", "/healthz"} {
		if code := get(t, hs.URL+p, nil); code != 200 {
			t.Errorf("GET %s without a key: %d", p, code)
		}
	}
}

// TestQueueFull: past MaxQueue admitted jobs, requests get 429 with Retry-After and no work is done.
func TestQueueFull(t *testing.T) {
	_, hs := testServer(t, Options{MaxQueue: 1})
	var created struct{ URL string }
	if code, _ := post(t, hs.Client(), hs.URL+"/rflow/v1/jobs", "", map[string]any{"prompt": "x", "width": 256, "height": 256, "steps": 150}, &created); code != 202 {
		t.Fatalf("first job: %d", code)
	}
	var e apiError
	code, h := post(t, hs.Client(), hs.URL+"/sdapi/v1/txt2img", "", map[string]any{"prompt": "y", "width": 64, "height": 64, "steps": 1}, &e)
	if code != 429 || h.Get("Retry-After") == "" || !strings.Contains(e.Error.Message, "queue is full") {
		t.Errorf("second request: %d Retry-After %q %+v", code, h.Get("Retry-After"), e)
	}
	req, _ := http.NewRequest(http.MethodDelete, hs.URL+created.URL, nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	var m map[string]any
	if code := get(t, hs.URL+"/healthz", &m); code != 200 {
		t.Errorf("healthz: %d", code)
	}
}

// TestClientDisconnect: a client that leaves mid-job cancels its job; the server goes on serving.
func TestClientDisconnect(t *testing.T) {
	s, hs := testServer(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	data, _ := json.Marshal(map[string]any{"prompt": "x", "width": 256, "height": 256, "steps": 150})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, hs.URL+"/sdapi/v1/txt2img", bytes.NewReader(data))
	errc := make(chan error, 1)
	go func() {
		resp, err := hs.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	deadline := time.Now().Add(20 * time.Second)
	for s.jobs.running() == 0 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err == nil {
		t.Error("the request finished although its client left")
	}
	for len(s.jobs.activeJobs()) > 0 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	if n := len(s.jobs.activeJobs()); n != 0 {
		t.Fatalf("%d jobs still active after the client left", n)
	}
	var out openAIResponse
	if code, _ := post(t, hs.Client(), hs.URL+"/v1/images/generations", "", map[string]any{"prompt": "x", "size": "64x64", "steps": 2}, &out); code != 200 {
		t.Errorf("next request: %d", code)
	}
}

// TestTimeout: a job past the server's time limit answers 504 with a JSON error.
func TestTimeout(t *testing.T) {
	_, hs := testServer(t, Options{Timeout: 30 * time.Millisecond})
	var e apiError
	code, _ := post(t, hs.Client(), hs.URL+"/sdapi/v1/txt2img", "", map[string]any{"prompt": "x", "width": 256, "height": 256, "steps": 150}, &e)
	if code != 504 || !strings.Contains(e.Error.Message, "time limit") {
		t.Errorf("%d %+v, want 504", code, e)
	}
}

// TestShutdown: Shutdown lets the running job finish (its client gets the image), and the server then
// refuses new work with 503.
func TestShutdown(t *testing.T) {
	s, hs := testServer(t, Options{})
	codes := make(chan int, 1)
	go func() {
		var out openAIResponse
		code, _ := post(t, hs.Client(), hs.URL+"/v1/images/generations", "", map[string]any{"prompt": "x", "size": "128x128", "steps": 40}, &out)
		codes <- code
	}()
	deadline := time.Now().Add(20 * time.Second)
	for s.jobs.running() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code := <-codes; code != 200 {
		t.Errorf("the job running at shutdown: %d, want 200 (finished)", code)
	}
	var e apiError
	if code, _ := post(t, hs.Client(), hs.URL+"/sdapi/v1/txt2img", "", map[string]any{"prompt": "x"}, &e); code != 503 {
		t.Errorf("after shutdown: %d %+v, want 503", code, e)
	}
}

// TestMetrics: /metrics is Prometheus text with the server's series.
func TestMetrics(t *testing.T) {
	_, hs := testServer(t, Options{})
	var out openAIResponse
	post(t, hs.Client(), hs.URL+"/v1/images/generations", "", map[string]any{"prompt": "x", "size": "64x64", "steps": 3}, &out)
	var b []byte
	if code := get(t, hs.URL+"/metrics", &b); code != 200 {
		t.Fatalf("metrics: %d", code)
	}
	for _, want := range []string{"rflow_images_generated_total 1", `rflow_http_requests_total{code="200",route="/v1/images/generations"} 1`,
		"rflow_queue_depth 0", "rflow_step_seconds_count 2", "rflow_denoise_runs_total 1", "rflow_jobs_total{state=\"succeeded\"} 1"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("metrics lack %q:\n%s", want, b)
		}
	}
}

// TestConcurrentRequestsBatch: concurrent compatible requests share runs and each gets its own image.
func TestConcurrentRequestsBatch(t *testing.T) {
	s, hs := testServer(t, Options{BatchWindow: 100 * time.Millisecond})
	l := newLone(t)
	var wg sync.WaitGroup
	imgs := make([]string, 4)
	for i := range imgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out openAIResponse
			if code, _ := post(t, hs.Client(), hs.URL+"/v1/images/generations", "", map[string]any{"prompt": fmt.Sprintf("shape %d", i),
				"size": "64x64", "steps": 3, "seed": 40 + i}, &out); code == 200 && len(out.Data) == 1 {
				imgs[i] = out.Data[0].B64JSON
			}
		}()
	}
	wg.Wait()
	if st := s.engine.Stats(); st.LargestBatch < 2 {
		t.Errorf("engine stats %+v: want concurrent requests batched", st)
	}
	for i, b := range imgs {
		if b == "" {
			t.Fatalf("request %d failed", i)
		}
		want := l.image(t, pipeline.Request{Prompt: fmt.Sprintf("shape %d", i), Width: 64, Height: 64, Steps: 3, Seed: uint64(40 + i)})
		if !samePixels(decodeB64PNG(t, b), want) {
			t.Errorf("request %d: image differs from a lone run", i)
		}
	}
}

// TestShutdownCancelsAfterGrace: a job still running when Shutdown's context ends is cancelled, and
// Shutdown returns soon after.
func TestShutdownCancelsAfterGrace(t *testing.T) {
	s, hs := testServer(t, Options{})
	var created struct{ ID, URL string }
	if code, _ := post(t, hs.Client(), hs.URL+"/rflow/v1/jobs", "", map[string]any{"prompt": "x", "width": 256, "height": 256,
		"steps": 150}, &created); code != 202 {
		t.Fatalf("job: %d", code)
	}
	waitJob(t, hs.URL, created.URL, func(s jobSnapshot) bool { return s.Step >= 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Shutdown took %v after its grace of 20 ms", d)
	}
	sn := s.jobs.get(created.ID).snapshot()
	if sn.Status != stateCancelled || sn.Step >= 150 {
		t.Errorf("job after shutdown: %+v, want cancelled mid-run", sn)
	}
}
