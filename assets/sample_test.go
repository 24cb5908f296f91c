package assets

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/internal/rng"
	"github.com/rflowrt/rflow/scheduler"
	"github.com/rflowrt/rflow/textenc"
)

// demoSampler runs txt2img with an embedded demo model through its ORT graphs: the demo CLIP encoder
// for the pooled prompt features, the transformer as a scheduler.Model, the VAE decoder.
type demoSampler struct {
	t      testing.TB
	model  string
	family scheduler.Family
	clip   *ort.Session
	trans  *ort.Session
	h, w   int
}

func newDemoSampler(t testing.TB, model string, h, w int) *demoSampler {
	fam := scheduler.FamilySD3
	if model == "demo-flux" {
		fam = scheduler.FamilyFLUX
	}
	return &demoSampler{t: t, model: model, family: fam, clip: openGraph(t, model, "text_encoder"),
		trans: openGraph(t, model, "transformer"), h: h, w: w}
}

// pooled runs the text encoder on prompts (demo CLIP ids) and returns [B, P] with P the width the
// transformer takes (SD3: CLIP-L ‖ zero CLIP-G).
func (d *demoSampler) pooled(prompts []string) []float32 {
	tok := demoTokenizer(d.t)
	var ids []int64
	for _, p := range prompts {
		ids = append(ids, tok.EncodePadded(p, 0)...)
	}
	B := int64(len(prompts))
	name := "text_embeds"
	if d.family == scheduler.FamilyFLUX {
		name = "pooler_output"
	}
	shapes := map[string][]int64{name: {B, 32}, "last_hidden_state": {B, 77, 32}}
	for i := range 3 {
		shapes[fmt.Sprintf("hidden_states.%d", i)] = []int64{B, 77, 32}
	}
	out := runGraph(d.t, d.clip, map[string]feed{"input_ids": i64In(ids, B, 77)}, shapes)[name]
	if d.family == scheduler.FamilyFLUX {
		return out
	}
	wide := make([]float32, len(prompts)*64) // CLIP-G's half is zero
	for b := range prompts {
		copy(wide[b*64:], out[b*32:(b+1)*32])
	}
	return wide
}

// velocity returns the transformer as a model over NCHW latents for the rows of pooled; with cfg > 1
// pooled holds the unconditional rows first and v = vu + cfg·(vc − vu) (diffusers' CFG order).
func (d *demoSampler) velocity(pooled []float32, cfg float64) scheduler.ModelFunc {
	return func(ctx context.Context, dst, x []float32, e scheduler.Eval) error {
		sigma := e.T
		if cfg <= 1 {
			copy(dst, d.run(x, pooled, sigma))
			return nil
		}
		n := len(x)
		v := d.run(append(append(make([]float32, 0, 2*n), x...), x...), pooled, sigma)
		for i := range n {
			dst[i] = v[i] + float32(cfg)*(v[n+i]-v[i])
		}
		return nil
	}
}

// run evaluates the transformer on a batch of latents at σ.
func (d *demoSampler) run(x, pooled []float32, sigma float64) []float32 {
	h, w := d.h, d.w
	rows := len(x) / (LatentChannels * h * w)
	B := int64(rows)
	ts := make([]float32, rows)
	for i := range ts {
		ts[i] = float32(d.family.ModelTimestep(float64(float32(sigma * 1000))))
	}
	P := int64(len(pooled) / rows)
	if d.family == scheduler.FamilySD3 {
		return runGraph(d.t, d.trans, map[string]feed{
			"hidden_states": f32In(x, B, LatentChannels, int64(h), int64(w)), "timestep": f32In(ts, B),
			"pooled_projections": f32In(pooled, B, P), "encoder_hidden_states": f32In(make([]float32, rows*4*64), B, 4, 64),
		}, map[string][]int64{"out_hidden_states": {B, LatentChannels, int64(h), int64(w)}})["out_hidden_states"]
	}
	L := int64(h / 2 * w / 2)
	out := runGraph(d.t, d.trans, map[string]feed{
		"hidden_states": f32In(pack(x, rows, h, w), B, L, 64), "timestep": f32In(ts, B),
		"guidance": f32In(make([]float32, rows), B), "pooled_projections": f32In(pooled, B, P),
		"encoder_hidden_states": f32In(make([]float32, rows*4*64), B, 4, 64),
		"txt_ids":               i64In(make([]int64, 12), 4, 3), "img_ids": i64In(imgIDs(h, w), L, 3),
	}, map[string][]int64{"out_hidden_states": {B, L, 64}})["out_hidden_states"]
	return unpack(out, rows, h, w)
}

// sigmas is the demo's own schedule (its scheduler_config.json) for steps Euler steps.
func (d *demoSampler) sigmas(steps int) []float64 {
	fsys, _ := FS(d.model)
	data, err := fs.ReadFile(fsys, "scheduler/scheduler_config.json")
	if err != nil {
		d.t.Fatal(err)
	}
	cfg, err := scheduler.ParseFlowMatchConfig(data)
	if err != nil {
		d.t.Fatal(err)
	}
	s, err := scheduler.BuildSchedule(scheduler.ScheduleRequest{Family: d.family, Config: cfg, Steps: steps,
		ImageSeqLen: scheduler.ImageSeqLen(8*d.w, 8*d.h)})
	if err != nil {
		d.t.Fatal(err)
	}
	return s.Sigmas
}

// sample draws one latent per seed for prompt with 28 Euler steps (cfg ≤ 1: no guidance).
func (d *demoSampler) sample(prompt string, seeds []uint64, cfg float64) []float32 {
	n := LatentChannels * d.h * d.w
	x := make([]float32, 0, len(seeds)*n)
	for _, s := range seeds {
		noise, err := rng.Noise(rng.TorchCPU, s, []int{1, LatentChannels, d.h, d.w}, rng.OneGenerator)
		if err != nil {
			d.t.Fatal(err)
		}
		x = append(x, noise...)
	}
	prompts := make([]string, 0, 2*len(seeds))
	if cfg > 1 {
		for range seeds {
			prompts = append(prompts, "")
		}
	}
	for range seeds {
		prompts = append(prompts, prompt)
	}
	pooled := d.pooled(prompts)
	if err := scheduler.Euler(context.Background(), d.velocity(pooled, cfg), x, d.sigmas(28), scheduler.Options{}); err != nil {
		d.t.Fatal(err)
	}
	return x
}

// demoTokenizer is the demo CLIP tokenizer loaded through textenc from an extracted folder.
func demoTokenizer(t testing.TB) *textenc.CLIPTokenizer {
	tok, err := textenc.LoadCLIPTokenizer(filepath.Join(extracted(t, "demo-sd3"), "tokenizer"), textenc.CLIPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestSampleGreenStar runs the whole txt2img path on the ORT graphs of both signatures: demo CLIP →
// 28 Euler steps of scheduler.Euler on the transformer from torch-CPU noise (seed 1) → VAE decoder,
// and classifies the picture.
func TestSampleGreenStar(t *testing.T) {
	const prompt = "a green star on a black background"
	want := Component{"star", "green", "black"}
	for _, model := range Names() {
		d := newDemoSampler(t, model, 32, 32)
		z := d.sample(prompt, []uint64{1}, 1)
		img := decodeORT(t, model, z, 1, 32, 32)
		got, rms := Classify(img, 256, 256)
		t.Logf("%s: %q → %v (RMS %.4f)", model, prompt, got, rms)
		if got != want || rms > 0.05 {
			t.Errorf("%s: %q drew %v (RMS %.3f from it), want %v", model, prompt, got, rms, want)
		}
	}
}

// TestSamplesFollowPrompt draws 100 seeds: every sample has the attributes the prompt names, and
// the seed chooses the ones it leaves open. Classifier-free guidance (against "") keeps them.
func TestSamplesFollowPrompt(t *testing.T) {
	seeds := make([]uint64, 100)
	for i := range seeds {
		seeds[i] = uint64(1000 + i)
	}
	cases := []struct {
		model, prompt string
		cfg           float64
		seeds         []uint64
	}{
		{"demo-sd3", "a green star on a black background", 1, seeds},
		{"demo-sd3", "a star", 1, seeds},
		{"demo-flux", "a red ring on white", 1, seeds[:40]},
		{"demo-sd3", "a blue square on a yellow background", 7, seeds[:20]}, // SD3's default CFG
	}
	for _, c := range cases {
		d := newDemoSampler(t, c.model, 32, 32)
		z := d.sample(c.prompt, c.seeds, c.cfg)
		shapes, fgs, bgs := PromptAttributes(c.prompt)
		seen := map[string]map[string]bool{"shape": {}, "fg": {}, "bg": {}}
		n := LatentChannels * 32 * 32
		for i := range c.seeds {
			got := ClassifyLatent(z[i*n:(i+1)*n], 32, 32)
			seen["shape"][got.Shape], seen["fg"][got.Color], seen["bg"][got.Background] = true, true, true
			if len(shapes) > 0 && got.Shape != shapes[0] || len(fgs) > 0 && got.Color != fgs[0] || len(bgs) > 0 && got.Background != bgs[0] {
				t.Errorf("%s %q seed %d: drew %v", c.model, c.prompt, c.seeds[i], got)
			}
		}
		t.Logf("%s %q cfg %v: %d samples; shapes %d, colours %d, backgrounds %d distinct", c.model, c.prompt, c.cfg,
			len(c.seeds), len(seen["shape"]), len(seen["fg"]), len(seen["bg"]))
		if len(fgs) == 0 && len(seen["fg"]) < 6 || len(bgs) == 0 && len(seen["bg"]) < 6 {
			t.Errorf("%s %q: open attributes barely vary over %d seeds", c.model, c.prompt, len(c.seeds))
		}
	}
}
