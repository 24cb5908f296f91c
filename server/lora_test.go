package server

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/ort/orttest"
	"github.com/rflowrt/rflow/internal/testmodels"
	"github.com/rflowrt/rflow/pipeline"
)

// TestQuoteInfo: A1111's infotext quoting of a value holding ':' (as "Lora hashes" do) is a JSON string.
func TestQuoteInfo(t *testing.T) {
	if q := quoteInfo(`a: "b"`); q != `"a: \"b\""` {
		t.Errorf("quoted: %s", q)
	}
	if q := quoteInfo("plain"); q != "plain" {
		t.Errorf("quoted: %s", q)
	}
}

// loraModel compiles a tiny FLUX checkpoint with one LoRA, style.safetensors at weight 0.5, that
// changes proj_out; it returns the model and the plain checkpoint's model besides.
func loraModel(t *testing.T) (withLoRA, plain *pipeline.Model) {
	t.Helper()
	ckpt := filepath.Join(t.TempDir(), "ckpt")
	if err := testmodels.WriteCheckpoint(ckpt, testmodels.Options{Kind: testmodels.KindFluxDev, GeneratedVocab: true}); err != nil {
		t.Fatal(err)
	}
	lora := filepath.Join(t.TempDir(), "style.safetensors")
	if err := testmodels.WriteProjOutLoRA(ckpt, lora); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	open := func(ls []pipeline.LoRA) *pipeline.Model {
		m, err := pipeline.OpenCheckpoint(context.Background(), pipeline.CheckpointSource{Model: ckpt, LoRAs: ls},
			pipeline.CompileOptions{CacheDir: cache})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	return open([]pipeline.LoRA{{Path: lora, Weight: 0.5}}), open(nil)
}

// TestServeLoRA: a server started with a LoRA lists it as A1111 does (file name only), accepts prompt
// tags naming it at its weight and draws what rflow txt2img draws with the same --lora and the prompt
// without the tag, bit for bit, recording A1111's "Lora hashes"; any other tag is a 400 that says what
// was asked, what is loaded and that LoRAs are chosen at start.
func TestServeLoRA(t *testing.T) {
	m, plain := loraModel(t)
	if len(m.LoRAs) != 1 || m.LoRAs[0].Modules != 1 {
		t.Fatalf("LoRAs applied: %+v", m.LoRAs)
	}
	_, hs, l := serveModel(t, m, Options{})
	hash12 := m.LoRAs[0].Hash[:12]

	var list []map[string]any
	if code := get(t, hs.URL+"/sdapi/v1/loras", &list); code != 200 || len(list) != 1 {
		t.Fatalf("loras: %d %v", code, list)
	}
	if e := list[0]; e["name"] != "style" || e["alias"] != "style" || e["path"] != "style.safetensors" || e["weight"] != 0.5 ||
		len(e["metadata"].(map[string]any)) != 0 {
		t.Errorf("loras entry: %v", e)
	}

	want := l.image(t, pipeline.Request{Prompt: "a cat ", NegativePrompt: "blurry", Width: 64, Height: 64, Steps: 2, Seed: 3})
	if !samePixels(want, l.image(t, pipeline.Request{Prompt: "a cat", NegativePrompt: "blurry", Width: 64, Height: 64, Steps: 2, Seed: 3})) {
		t.Error(`"a cat " and "a cat" draw different images: the tag's leftover space matters`)
	}
	var a a1111Response
	code, _ := post(t, hs.Client(), hs.URL+"/sdapi/v1/txt2img", "", map[string]any{"prompt": "a cat <lora:style:0.5>",
		"negative_prompt": "<lora:style:0.5>blurry", "width": 64, "height": 64, "steps": 2, "seed": 3}, &a)
	if code != 200 || len(a.Images) != 1 {
		t.Fatalf("txt2img with the loaded LoRA's tag: %d", code)
	}
	if !samePixels(decodeB64PNG(t, a.Images[0]), want) {
		t.Error("the tagged request differs from a lone run of the tag-free prompt")
	}
	pl := pipeline.New(plain, pipeline.Options{Session: orttest.Options(), KeepModels: true})
	defer pl.Close()
	if res, err := pl.Generate(context.Background(), pipeline.Request{Prompt: "a cat ", NegativePrompt: "blurry", Width: 64,
		Height: 64, Steps: 2, Seed: 3}, nil); err != nil || samePixels(res.Images[0], want) {
		t.Errorf("the LoRA changes nothing (%v): the test proves nothing", err)
	}
	info := a.info(t)
	texts, _ := info["infotexts"].([]any)
	extra, _ := info["extra_generation_params"].(map[string]any)
	if info["prompt"] != "a cat " || len(texts) != 1 || !strings.Contains(texts[0].(string), `Lora hashes: "style: `+hash12+`"`) ||
		extra["Lora hashes"] != "style: "+hash12 || a.Parameters["lora_hashes"] != "style: "+hash12 {
		t.Errorf("info %v, parameters %v: want Lora hashes style: %s", info, a.Parameters, hash12)
	}

	var o openAIResponse
	if code, _ := post(t, hs.Client(), hs.URL+"/v1/images/generations", "", map[string]any{"prompt": "a cat <lora:style:0.5>",
		"negative_prompt": "blurry", "size": "64x64", "steps": 2, "seed": 3}, &o); code != 200 ||
		!samePixels(decodeB64PNG(t, o.Data[0].B64JSON), want) {
		t.Errorf("OpenAI with the tag: %d, or another image", code)
	}

	for _, c := range []struct {
		url  string
		body map[string]any
		want []string
	}{
		{"/sdapi/v1/txt2img", map[string]any{"prompt": "a cat <lora:style:0.8>"},
			[]string{`<lora:style:0.8>`, "weight 0.5", "rflow serve --lora FILE:WEIGHT"}},
		{"/v1/images/generations", map[string]any{"prompt": "a cat <lora:other>"},
			[]string{`"other"`, "loaded: <lora:style:0.5>", "rflow serve --lora FILE:WEIGHT"}},
		{"/rflow/v1/jobs", map[string]any{"prompt": "a cat", "negative_prompt": "<lora:../../etc/passwd:1>"},
			[]string{"not loaded", "loaded: <lora:style:0.5>"}},
		{"/rflow/v1/jobs", map[string]any{"prompt": "a cat <lora:style:0.5:1>"}, []string{"<lora:NAME:WEIGHT>"}},
		{"/sdapi/v1/txt2img", map[string]any{"prompt": "<lora:style:0.5> a cat <lora:style:0.5>"}, []string{"twice"}},
	} {
		var e apiError
		code, _ := post(t, hs.Client(), hs.URL+c.url, "", c.body, &e)
		for _, w := range c.want {
			if code != 400 || !strings.Contains(e.Error.Message, w) {
				t.Errorf("%s %v: %d %q; want 400 with %q", c.url, c.body, code, e.Error.Message, w)
			}
		}
		if strings.Contains(e.Error.Message, string(filepath.Separator)+"style.safetensors") {
			t.Errorf("the error shows the server's path: %s", e.Error.Message)
		}
	}
}

// TestServeLoRAWithout: a server without LoRAs refuses every tag before any work, saying so; its
// LoRA list is empty; its answers carry no Lora hashes.
func TestServeLoRAWithout(t *testing.T) {
	_, hs := testServer(t, Options{})
	var e apiError
	code, _ := post(t, hs.Client(), hs.URL+"/sdapi/v1/txt2img", "", map[string]any{"prompt": "a cat <lora:style:1>"}, &e)
	if code != 400 || !regexp.MustCompile(`no LoRAs loaded.*rflow serve --lora`).MatchString(e.Error.Message) {
		t.Errorf("%d %q", code, e.Error.Message)
	}
	var list []any
	if code := get(t, hs.URL+"/sdapi/v1/loras", &list); code != 200 || list == nil || len(list) != 0 {
		t.Errorf("loras: %d %v", code, list)
	}
}
