package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rflowrt/rflow/internal/ort/orttest"
	"github.com/rflowrt/rflow/internal/testmodels"
	"github.com/rflowrt/rflow/pipeline"
)

// tinyPNG is a 16×16 grey PNG, base64: a valid picture small enough for TestBadRequests' body limit.
var tinyPNG = func() string {
	var b bytes.Buffer
	_ = png.Encode(&b, image.NewGray(image.Rect(0, 0, 16, 16)))
	return base64.StdEncoding.EncodeToString(b.Bytes())
}()

// serveModel serves m over loopback and returns a lone pipeline of the same model besides.
func serveModel(t testing.TB, m *pipeline.Model, o Options) (*Server, *httptest.Server, *lone) {
	t.Helper()
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
	p := pipeline.New(m, pipeline.Options{Session: orttest.Options(), KeepModels: true})
	t.Cleanup(func() { p.Close() })
	return s, hs, &lone{p: p}
}

func openDemo(t testing.TB) *pipeline.Model {
	m, err := pipeline.OpenDemo("demo-sd3")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// rectMask is a w×h mask, white (repaint) inside r.
func rectMask(w, h int, r image.Rectangle) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			if image.Pt(x, y).In(r) {
				g.Pix[y*g.Stride+x] = 255
			}
		}
	}
	return g
}

// invertGrey is 255 − g.
func invertGrey(g *image.Gray) *image.Gray {
	out := image.NewGray(g.Rect)
	for i, v := range g.Pix {
		out.Pix[i] = 255 - v
	}
	return out
}

// alphaMask is g as OpenAI writes a mask: transparent (alpha 0) where g is white, opaque black elsewhere.
func alphaMask(g *image.Gray) *image.NRGBA {
	out := image.NewNRGBA(g.Rect)
	for i, v := range g.Pix {
		if v < 128 {
			out.Pix[4*i+3] = 255
		}
	}
	return out
}

func b64(t testing.TB, img image.Image) string {
	return base64.StdEncoding.EncodeToString(pngBytes(t, img))
}

// postForm sends OpenAI's multipart edit: files (field → PNGs) and values; it decodes the JSON answer.
func postForm(t testing.TB, url string, files map[string][][]byte, values map[string]string, out any) int {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for field, list := range files {
		for i, data := range list {
			fw, err := mw.CreateFormFile(field, fmt.Sprintf("%s%d.png", strings.Trim(field, "[]"), i))
			if err != nil {
				t.Fatal(err)
			}
			fw.Write(data)
		}
	}
	for k, v := range values {
		mw.WriteField(k, v)
	}
	mw.Close()
	resp, err := http.Post(url, mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("POST %s: %d, not JSON: %v", url, resp.StatusCode, err)
	}
	return resp.StatusCode
}

type a1111Response struct {
	Images     []string       `json:"images"`
	Parameters map[string]any `json:"parameters"`
	Info       string         `json:"info"`
}

func (a a1111Response) info(t testing.TB) map[string]any {
	t.Helper()
	var info map[string]any
	if err := json.Unmarshal([]byte(a.Info), &info); err != nil {
		t.Fatalf("info is not JSON: %v", err)
	}
	return info
}

// TestEditInpaint: OpenAI's edits (a transparent-pixel mask), A1111's img2img (a white mask: blur,
// "only masked" by default, inverted) and the jobs API each draw the image a lone pipeline run of the
// same inpainting request draws, bit for bit; info records the mask settings as A1111 writes them.
func TestEditInpaint(t *testing.T) {
	_, hs, l := serveModel(t, openDemo(t), Options{})
	init := testInit()
	mask := rectMask(64, 64, image.Rect(32, 8, 56, 40))
	base := pipeline.Request{Prompt: "a blue square", Width: 64, Height: 64, Steps: 4, Seed: 9, InitImage: init, Strength: 0.6, Mask: mask}

	t.Run("openai", func(t *testing.T) {
		var out openAIResponse
		code := postForm(t, hs.URL+"/v1/images/edits", map[string][][]byte{"image": {pngBytes(t, init)}, "mask": {pngBytes(t, alphaMask(mask))}},
			map[string]string{"prompt": "a blue square", "seed": "9", "steps": "4", "strength": "0.6"}, &out)
		if code != 200 || len(out.Data) != 1 {
			t.Fatalf("edits: %d %+v", code, out)
		}
		if !samePixels(decodeB64PNG(t, out.Data[0].B64JSON), l.image(t, base)) {
			t.Error("OpenAI inpainting differs from a lone run")
		}
	})

	t.Run("a1111", func(t *testing.T) {
		var a a1111Response
		code, _ := post(t, hs.Client(), hs.URL+"/sdapi/v1/img2img", "", map[string]any{"prompt": "a blue square", "seed": 9, "steps": 4,
			"denoising_strength": 0.6, "init_images": []string{b64(t, init)}, "mask": b64(t, mask), "mask_blur": 2,
			"inpaint_full_res": false, "inpainting_fill": 1}, &a)
		if code != 200 || len(a.Images) != 1 {
			t.Fatalf("img2img: %d, %d images", code, len(a.Images))
		}
		want := base
		want.MaskBlur = 2
		if !samePixels(decodeB64PNG(t, a.Images[0]), l.image(t, want)) {
			t.Error("A1111 inpainting differs from a lone run")
		}
		info := a.info(t)
		text := info["infotexts"].([]any)[0].(string)
		for _, s := range []string{"Denoising strength: 0.6", "Mask blur: 2", "Masked content: original"} {
			if !strings.Contains(text, s) {
				t.Errorf("infotext %q lacks %q", text, s)
			}
		}
		if strings.Contains(text, "Inpaint area") || info["notes"] != nil {
			t.Errorf("infotext %q, notes %v: want whole picture and no notes", text, info["notes"])
		}
		if a.Parameters["mask_blur"] != 2.0 || a.Parameters["inpaint_full_res"] != false {
			t.Errorf("parameters %v", a.Parameters)
		}
	})

	t.Run("a1111 defaults, inverted", func(t *testing.T) {
		// A1111's API defaults: mask_blur 4, inpaint_full_res true, padding 0; the mask is sent inverted.
		var a a1111Response
		code, _ := post(t, hs.Client(), hs.URL+"/sdapi/v1/img2img", "", map[string]any{"prompt": "a blue square", "seed": 9, "steps": 4,
			"denoising_strength": 0.6, "init_images": []string{b64(t, init)}, "mask": b64(t, invertGrey(mask)),
			"inpainting_mask_invert": 1, "inpainting_fill": 0}, &a)
		if code != 200 || len(a.Images) != 1 {
			t.Fatalf("img2img: %d, %d images", code, len(a.Images))
		}
		want := base
		want.MaskBlur, want.InpaintFullRes = 4, true
		if !samePixels(decodeB64PNG(t, a.Images[0]), l.image(t, want)) {
			t.Error("A1111 inpainting (defaults, inverted mask) differs from a lone run")
		}
		info := a.info(t)
		text := info["infotexts"].([]any)[0].(string)
		for _, s := range []string{"Mask blur: 4", "Inpaint area: Only masked", "Masked area padding: 0", "Mask mode: Inpaint not masked"} {
			if !strings.Contains(text, s) {
				t.Errorf("infotext %q lacks %q", text, s)
			}
		}
		if notes := fmt.Sprint(info["notes"]); !strings.Contains(notes, "inpainting_fill 0 (fill) ignored") {
			t.Errorf("notes %s: want inpainting_fill's", notes)
		}
	})

	t.Run("a1111 alpha mask", func(t *testing.T) {
		// A mask with transparency is its alpha channel (create_binary_mask): opaque repaints.
		am := image.NewNRGBA(mask.Rect)
		for i, v := range mask.Pix {
			am.Pix[4*i], am.Pix[4*i+1], am.Pix[4*i+2], am.Pix[4*i+3] = 200, 10, 10, v
		}
		var a a1111Response
		code, _ := post(t, hs.Client(), hs.URL+"/sdapi/v1/img2img", "", map[string]any{"prompt": "a blue square", "seed": 9, "steps": 4,
			"denoising_strength": 0.6, "init_images": []string{b64(t, init)}, "mask": b64(t, am), "mask_blur": 0,
			"inpaint_full_res": 0}, &a)
		if code != 200 || len(a.Images) != 1 {
			t.Fatalf("img2img: %d, %d images", code, len(a.Images))
		}
		if !samePixels(decodeB64PNG(t, a.Images[0]), l.image(t, base)) {
			t.Error("A1111 inpainting with an alpha mask differs from a lone run")
		}
	})

	t.Run("mask of another size", func(t *testing.T) {
		small := rectMask(32, 32, image.Rect(16, 4, 28, 20))
		var a a1111Response
		code, _ := post(t, hs.Client(), hs.URL+"/sdapi/v1/img2img", "", map[string]any{"prompt": "a blue square", "seed": 9, "steps": 4,
			"denoising_strength": 0.6, "init_images": []string{b64(t, init)}, "mask": b64(t, small), "mask_blur": 0,
			"inpaint_full_res": false}, &a)
		if code != 200 || len(a.Images) != 1 {
			t.Fatalf("img2img: %d, %d images", code, len(a.Images))
		}
		if notes := fmt.Sprint(a.info(t)["notes"]); !strings.Contains(notes, "the mask is 32×32") {
			t.Errorf("notes %s: want the mask's resize", notes)
		}
		want := base
		want.Mask = small
		if !samePixels(decodeB64PNG(t, a.Images[0]), l.image(t, want)) {
			t.Error("A1111 inpainting with a resized mask differs from a lone run")
		}
	})

	t.Run("job", func(t *testing.T) {
		var created struct{ URL string }
		code, _ := post(t, hs.Client(), hs.URL+"/rflow/v1/jobs", "", map[string]any{"prompt": "a blue square", "seed": 9, "steps": 4,
			"init_image": b64(t, init), "strength": 0.6, "mask": b64(t, mask), "mask_blur": 1.5, "inpaint_full_res": true,
			"inpaint_full_res_padding": 4}, &created)
		if code != http.StatusAccepted {
			t.Fatalf("create: %d", code)
		}
		sn := waitJob(t, hs.URL, created.URL, func(s jobSnapshot) bool { return s.Status == "succeeded" || s.Status == "failed" })
		if sn.Status != "succeeded" || len(sn.Images) != 1 {
			t.Fatalf("job %+v", sn)
		}
		var b []byte
		if code := get(t, hs.URL+sn.Images[0], &b); code != 200 {
			t.Fatalf("image: %d", code)
		}
		want := base
		want.MaskBlur, want.InpaintFullRes, want.InpaintFullResPadding = 1.5, true, 4
		if !samePixels(decodePNG(t, b), l.image(t, want)) {
			t.Error("job inpainting differs from a lone run")
		}
		var full map[string]any
		get(t, hs.URL+created.URL, &full)
		if full["kind"] != "inpaint" {
			t.Errorf("job kind %v, want inpaint", full["kind"])
		}
	})
}

// TestEditFillAndKontext: on a FLUX Fill model OpenAI's and A1111's edits are Fill runs (strength 1
// unless asked), and on a FLUX Kontext model their pictures are reference pictures; each image equals
// the lone run's.
func TestEditFillAndKontext(t *testing.T) {
	init := testInit()
	mask := rectMask(64, 64, image.Rect(20, 12, 64, 64))
	flux := func(e testmodels.Edit) *pipeline.Model {
		m, err := pipeline.Open(testmodels.Cached(t, testmodels.Options{Kind: testmodels.KindFluxDev, Edit: e}))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	t.Run("fill", func(t *testing.T) {
		_, hs, l := serveModel(t, flux(testmodels.EditFill), Options{})
		want := l.image(t, pipeline.Request{Prompt: "a cat", Width: 64, Height: 64, Steps: 2, Seed: 3, InitImage: init, Mask: mask, Strength: 1})
		var out openAIResponse
		code := postForm(t, hs.URL+"/v1/images/edits", map[string][][]byte{"image": {pngBytes(t, init)}, "mask": {pngBytes(t, alphaMask(mask))}},
			map[string]string{"prompt": "a cat", "seed": "3", "steps": "2"}, &out)
		if code != 200 || len(out.Data) != 1 {
			t.Fatalf("edits: %d %+v", code, out)
		}
		if !samePixels(decodeB64PNG(t, out.Data[0].B64JSON), want) {
			t.Error("OpenAI Fill differs from a lone run")
		}
		var a a1111Response
		code, _ = post(t, hs.Client(), hs.URL+"/sdapi/v1/img2img", "", map[string]any{"prompt": "a cat", "seed": 3, "steps": 2,
			"init_images": []string{b64(t, init)}, "mask": b64(t, mask), "mask_blur": 0, "inpaint_full_res": false}, &a)
		if code != 200 || len(a.Images) != 1 {
			t.Fatalf("img2img: %d", code)
		}
		if !samePixels(decodeB64PNG(t, a.Images[0]), want) {
			t.Error("A1111 Fill differs from a lone run")
		}
		var e apiError
		if code := postForm(t, hs.URL+"/v1/images/edits", map[string][][]byte{"image": {pngBytes(t, init)}},
			map[string]string{"prompt": "a cat"}, &e); code != 400 || !strings.Contains(e.Error.Message, "needs an init image and a mask") {
			t.Errorf("Fill without a mask: %d %q", code, e.Error.Message)
		}
	})

	t.Run("kontext", func(t *testing.T) {
		_, hs, l := serveModel(t, flux(testmodels.EditKontext), Options{})
		ref2 := rectMask(48, 32, image.Rect(0, 0, 24, 32))
		want := l.image(t, pipeline.Request{Prompt: "a cat", Width: 64, Height: 64, Steps: 2, Seed: 3,
			RefImages: []image.Image{init, ref2}, RefResize: pipeline.RefResizeNone})
		var out openAIResponse
		code := postForm(t, hs.URL+"/v1/images/edits", map[string][][]byte{"image[]": {pngBytes(t, init), pngBytes(t, ref2)}},
			map[string]string{"prompt": "a cat", "seed": "3", "steps": "2", "size": "64x64", "ref_resize": "none"}, &out)
		if code != 200 || len(out.Data) != 1 {
			t.Fatalf("edits: %d %+v", code, out)
		}
		if !samePixels(decodeB64PNG(t, out.Data[0].B64JSON), want) {
			t.Error("OpenAI Kontext edit differs from a lone run")
		}
		// with a mask: the first image is repainted, the others are its references
		want = l.image(t, pipeline.Request{Prompt: "a cat", Width: 64, Height: 64, Steps: 2, Seed: 3, InitImage: init, Mask: mask,
			Strength: 0.75, RefImages: []image.Image{ref2}, RefResize: pipeline.RefResizeNone})
		code = postForm(t, hs.URL+"/v1/images/edits", map[string][][]byte{"image[]": {pngBytes(t, init), pngBytes(t, ref2)},
			"mask": {pngBytes(t, alphaMask(mask))}}, map[string]string{"prompt": "a cat", "seed": "3", "steps": "2", "ref_resize": "none"}, &out)
		if code != 200 || len(out.Data) != 1 {
			t.Fatalf("edits with a mask: %d %+v", code, out)
		}
		if !samePixels(decodeB64PNG(t, out.Data[0].B64JSON), want) {
			t.Error("OpenAI Kontext inpainting differs from a lone run")
		}
		var a a1111Response
		code, _ = post(t, hs.Client(), hs.URL+"/sdapi/v1/img2img", "", map[string]any{"prompt": "a cat", "seed": 3, "steps": 2,
			"init_images": []string{b64(t, init)}, "ref_resize": "none"}, &a)
		if code != 200 || len(a.Images) != 1 {
			t.Fatalf("img2img: %d", code)
		}
		one := l.image(t, pipeline.Request{Prompt: "a cat", Width: 64, Height: 64, Steps: 2, Seed: 3, RefImages: []image.Image{init},
			RefResize: pipeline.RefResizeNone})
		if !samePixels(decodeB64PNG(t, a.Images[0]), one) {
			t.Error("A1111 Kontext edit differs from a lone run")
		}
		if !strings.Contains(a.info(t)["infotexts"].([]any)[0].(string), "Reference images: 1") {
			t.Errorf("infotext lacks the reference count: %s", a.Info)
		}
	})
}

// TestEditBadInput: each edit mistake is one JSON error and runs nothing.
func TestEditBadInput(t *testing.T) {
	s, hs, _ := serveModel(t, openDemo(t), Options{})
	init := b64(t, testInit())
	black := b64(t, image.NewGray(image.Rect(0, 0, 64, 64)))
	colour := image.NewNRGBA(image.Rect(0, 0, 64, 64))
	for i := range colour.Pix {
		colour.Pix[i] = []uint8{200, 10, 10, 255}[i%4]
	}
	for _, c := range []struct {
		name, path string
		body       map[string]any
		msg        string
	}{
		{"all-black mask", "/sdapi/v1/img2img", map[string]any{"prompt": "x", "init_images": []string{init}, "mask": black}, "all black: nothing to repaint"},
		{"inverted white mask", "/sdapi/v1/img2img", map[string]any{"prompt": "x", "init_images": []string{init},
			"mask": b64(t, rectMask(64, 64, image.Rect(0, 0, 64, 64))), "inpainting_mask_invert": true}, "all black"},
		{"coloured mask", "/sdapi/v1/img2img", map[string]any{"prompt": "x", "init_images": []string{init}, "mask": b64(t, colour)}, "not greyscale"},
		{"unreadable mask", "/sdapi/v1/img2img", map[string]any{"prompt": "x", "init_images": []string{init}, "mask": "aGVsbG8="}, "mask: image is not a PNG or JPEG"},
		{"bad mask_blur type", "/sdapi/v1/img2img", map[string]any{"prompt": "x", "init_images": []string{init}, "mask_blur": "soft"}, "bad JSON"},
		{"two init images", "/sdapi/v1/img2img", map[string]any{"prompt": "x", "init_images": []string{init, init}}, "not a Kontext model"},
		{"job refs on sd3", "/rflow/v1/jobs", map[string]any{"prompt": "x", "ref_images": []string{init}}, "need a FLUX Kontext model"},
		{"job unreadable ref", "/rflow/v1/jobs", map[string]any{"prompt": "x", "ref_images": []string{"aGVsbG8="}}, "ref_images[0]: image is not a PNG or JPEG"},
		{"bad ref_resize", "/rflow/v1/jobs", map[string]any{"prompt": "x", "ref_resize": "big"}, "ref_resize \"big\": use kontext"},
		{"job mask without image", "/rflow/v1/jobs", map[string]any{"prompt": "x", "mask": black}, "mask needs init_image"},
		{"job all-black mask", "/rflow/v1/jobs", map[string]any{"prompt": "x", "init_image": init, "mask": black}, "all black"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var e apiError
			code, _ := post(t, hs.Client(), hs.URL+c.path, "", c.body, &e)
			if code != 400 || !strings.Contains(e.Error.Message, c.msg) || strings.Contains(e.Error.Message, "\n") {
				t.Errorf("%d %q, want 400 and one line with %q", code, e.Error.Message, c.msg)
			}
		})
	}
	initPNG := pngBytes(t, testInit())
	for _, c := range []struct {
		name  string
		files map[string][][]byte
		msg   string
	}{
		{"opaque OpenAI mask", map[string][][]byte{"image": {initPNG}, "mask": {pngBytes(t, rectMask(64, 64, image.Rect(0, 0, 64, 64)))}}, "no fully transparent pixel"},
		{"unreadable OpenAI mask", map[string][][]byte{"image": {initPNG}, "mask": {[]byte("hello")}}, "mask: image is not a PNG or JPEG"},
		{"unreadable OpenAI image", map[string][][]byte{"image": {[]byte("hello")}}, "image: image is not a PNG or JPEG"},
		{"no OpenAI image", map[string][][]byte{}, "file field image"},
		{"OpenAI references on sd3", map[string][][]byte{"image[]": {initPNG, initPNG}}, "not a Kontext model"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var e apiError
			code := postForm(t, hs.URL+"/v1/images/edits", c.files, map[string]string{"prompt": "x"}, &e)
			if code != 400 || !strings.Contains(e.Error.Message, c.msg) || strings.Contains(e.Error.Message, "\n") {
				t.Errorf("%d %q, want 400 and one line with %q", code, e.Error.Message, c.msg)
			}
		})
	}
	if got := s.metrics.avgJobSeconds(); got != 0 {
		t.Errorf("a job ran for a bad request (mean job time %g s)", got)
	}
}

// TestEditRunsAlone: concurrent inpainting requests, which the engine cannot batch, each run alone and
// still draw their lone images.
func TestEditRunsAlone(t *testing.T) {
	s, hs, l := serveModel(t, openDemo(t), Options{BatchWindow: 100 * time.Millisecond})
	init := testInit()
	masks := []*image.Gray{rectMask(64, 64, image.Rect(0, 0, 32, 64)), rectMask(64, 64, image.Rect(16, 16, 48, 48))}
	imgs := make([]string, len(masks))
	var wg sync.WaitGroup
	for i, m := range masks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var a a1111Response
			if code, _ := post(t, hs.Client(), hs.URL+"/sdapi/v1/img2img", "", map[string]any{"prompt": "a blue square", "seed": 9,
				"steps": 3, "denoising_strength": 0.8, "init_images": []string{b64(t, init)}, "mask": b64(t, m), "mask_blur": 0,
				"inpaint_full_res": false}, &a); code == 200 && len(a.Images) == 1 {
				imgs[i] = a.Images[0]
			}
		}()
	}
	wg.Wait()
	if st := s.engine.Stats(); st.BatchedRequests != 0 || st.Runs != 2 {
		t.Errorf("engine stats %+v: want two lone runs", st)
	}
	for i, b := range imgs {
		if b == "" {
			t.Fatalf("request %d failed", i)
		}
		want := l.image(t, pipeline.Request{Prompt: "a blue square", Width: 64, Height: 64, Steps: 3, Seed: 9, InitImage: init,
			Strength: 0.8, Mask: masks[i]})
		if !samePixels(decodeB64PNG(t, b), want) {
			t.Errorf("request %d differs from a lone run", i)
		}
	}
}

// TestA1111Mask checks the mask conversions against their rules pixel by pixel.
func TestA1111Mask(t *testing.T) {
	g := rectMask(4, 2, image.Rect(1, 0, 3, 2))
	if got := a1111Mask(g, false); got != image.Image(g) {
		t.Error("a grey mask without transparency should pass as it is")
	}
	if got := a1111Mask(g, true).(*image.Gray); !bytes.Equal(got.Pix, invertGrey(g).Pix) {
		t.Errorf("inverted %v", got.Pix)
	}
	a := image.NewNRGBA(image.Rect(0, 0, 3, 1))
	for i, al := range []uint8{128, 129, 0} {
		a.SetNRGBA(i, 0, color.NRGBA{R: 255, G: 255, B: 255, A: al})
	}
	if got := a1111Mask(a, false).(*image.Gray); !bytes.Equal(got.Pix, []uint8{0, 255, 0}) {
		t.Errorf("alpha mask %v, want alpha > 128 → 255", got.Pix)
	}
	om, err := openAIMask(a)
	if err != nil || !bytes.Equal(om.Pix, []uint8{0, 0, 255}) {
		t.Errorf("OpenAI mask %v %v, want alpha 0 → 255", om, err)
	}
}

// TestEditAlphaAsMask: an OpenAI edit without a mask takes the image's own fully transparent pixels as
// the mask (OpenAI's rule), drawing the lone inpainting run with that mask bit for bit, with a note; a
// picture with only partly transparent pixels stays an img2img edit.
func TestEditAlphaAsMask(t *testing.T) {
	_, hs, l := serveModel(t, openDemo(t), Options{})
	hole := image.Rect(32, 8, 56, 40)
	holed := testInit()
	for y := hole.Min.Y; y < hole.Max.Y; y++ {
		for x := hole.Min.X; x < hole.Max.X; x++ {
			holed.Pix[holed.PixOffset(x, y)+3] = 0
		}
	}
	data := pngBytes(t, holed)
	init := decodePNG(t, data) // what the server decodes
	base := pipeline.Request{Prompt: "a blue square", Width: 64, Height: 64, Steps: 4, Seed: 9, InitImage: init, Strength: 0.6}
	masked := base
	masked.Mask = rectMask(64, 64, hole)
	want := l.image(t, masked)
	if samePixels(want, l.image(t, base)) {
		t.Fatal("the mask changes nothing: the test would not see it")
	}
	var out struct {
		openAIResponse
		Notes []string `json:"notes"`
	}
	values := map[string]string{"prompt": "a blue square", "seed": "9", "steps": "4", "strength": "0.6"}
	if code := postForm(t, hs.URL+"/v1/images/edits", map[string][][]byte{"image": {data}}, values, &out); code != 200 || len(out.Data) != 1 {
		t.Fatalf("edits: %d %+v", code, out)
	}
	if !samePixels(decodeB64PNG(t, out.Data[0].B64JSON), want) {
		t.Error("an edit without a mask differs from the lone run masked by the image's transparent pixels")
	}
	if !strings.Contains(strings.Join(out.Notes, "\n"), "no mask sent") {
		t.Errorf("notes %q: want one saying the transparency is the mask", out.Notes)
	}

	half := testInit()
	for i := 3; i < len(half.Pix); i += 4 {
		half.Pix[i] = 128
	}
	data = pngBytes(t, half)
	img2img := base
	img2img.InitImage = decodePNG(t, data)
	out.Notes = nil
	if code := postForm(t, hs.URL+"/v1/images/edits", map[string][][]byte{"image": {data}}, values, &out); code != 200 || len(out.Data) != 1 ||
		!samePixels(decodeB64PNG(t, out.Data[0].B64JSON), l.image(t, img2img)) || len(out.Notes) != 0 {
		t.Errorf("a half-transparent picture without a mask: %d, notes %q, or the image differs from the lone img2img run", code, out.Notes)
	}
}
