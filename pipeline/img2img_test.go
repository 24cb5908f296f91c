package pipeline

import (
	"bytes"
	"context"
	"image"
	"math"
	"slices"
	"testing"

	"github.com/rflowrt/rflow/assets"
	"github.com/rflowrt/rflow/internal/rng"
	"github.com/rflowrt/rflow/internal/testmodels"
)

// componentPicture is a demo component drawn as an 8-bit image of size×size.
func componentPicture(c assets.Component, size int) *image.NRGBA {
	rgb := assets.ComponentImage(c, size/8, size/8)
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	plane := size * size
	for i := range plane {
		for ch := range 3 {
			v := math.Round(float64(rgb[ch*plane+i]+1) * 127.5)
			img.Pix[4*i+ch] = uint8(min(max(v, 0), 255))
		}
		img.Pix[4*i+3] = 255
	}
	return img
}

// TestImg2ImgStrengthEnds checks the two ends of img2img on demo-sd3: strength 1 with the latent mean
// (InitLatentMean) is txt2img with the same seed bit for bit, strength 0 runs no step and returns the init image through the VAE round trip.
func TestImg2ImgStrengthEnds(t *testing.T) {
	m, err := OpenDemo("demo-sd3")
	if err != nil {
		t.Fatal(err)
	}
	p := newTestPipeline(t, m, true)
	const size = 256
	comp := assets.Component{Shape: "ring", Color: "yellow", Background: "blue"}
	init := componentPicture(comp, size)
	base := Request{Prompt: "a red square on a white background", Width: size, Height: size, Steps: 8, Seed: 11}
	txt, err := p.Generate(context.Background(), base, nil)
	if err != nil {
		t.Fatal(err)
	}
	full := base
	full.InitImage, full.Strength, full.InitLatent = init, 1, InitLatentMean
	one, err := p.Generate(context.Background(), full, nil)
	if err != nil {
		t.Fatal(err)
	}
	sameBits(t, "strength 1 latents vs txt2img", one.Latents, txt.Latents)
	if !bytes.Equal(imageBytes(one), imageBytes(txt)) || one.Settings.StartStep != 0 {
		t.Fatal("strength 1 differs from txt2img with the same seed")
	}
	keep := base
	keep.InitImage, keep.Strength = init, 0
	var steps int
	zero, err := p.Generate(context.Background(), keep, func(e Event) {
		if e.Stage == StageDenoise {
			steps++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if steps != 0 || zero.Timings.Steps != 0 || zero.Settings.StartStep != 8 {
		t.Fatalf("strength 0 ran %d steps (start step %d)", steps, zero.Settings.StartStep)
	}
	var sum float64
	for i, v := range zero.Images[0].Pix {
		sum += math.Abs(float64(v) - float64(init.Pix[i]))
	}
	mean := sum / float64(len(init.Pix))
	got, rms := assets.Classify(imagePlanes(zero.Images[0].Pix, size, size), size, size)
	t.Logf("strength 0: mean |Δ| %.3f levels, classified %v (RMS %.4f)", mean, got, rms)
	if mean > 2 || got != comp {
		t.Fatalf("strength 0 changed the image: mean |Δ| %.2f levels, classified %v", mean, got)
	}
}

// TestImg2ImgStartStep checks diffusers' get_timesteps cut: strength s over N steps starts at
// t_start = int(N − min(N·s, N)) and the transformer sees only the remaining timesteps.
func TestImg2ImgStartStep(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 40, 24))
	for _, kind := range []testmodels.Kind{testmodels.KindSD3NoT5, testmodels.KindFluxDev} {
		p, calls := echoPipeline(t, kind, echoSpec{})
		for _, c := range []struct {
			strength float64
			start    int
		}{{0.5, 3}, {0.3, 4}, {0.99, 0}, {0.01, 5}} {
			*calls = (*calls)[:0]
			res, err := p.Generate(context.Background(), Request{Prompt: "x", Width: 32, Height: 32, Steps: 6, InitImage: img,
				Strength: c.strength}, nil)
			if err != nil {
				t.Fatal(err)
			}
			s := res.Settings
			if s.StartStep != c.start || len(*calls) != 6-c.start || len(s.Sigmas) != 7-c.start {
				t.Fatalf("%s strength %v: start %d, %d calls, %d σ; want start %d", kind, c.strength, s.StartStep, len(*calls),
					len(s.Sigmas), c.start)
			}
			var seen []float64
			for _, cl := range *calls {
				seen = append(seen, float64(cl.raw[0]))
			}
			if !slices.Equal(seen, s.ModelTimesteps) {
				t.Fatalf("%s strength %v: timesteps %v, want %v", kind, c.strength, seen, s.ModelTimesteps)
			}
		}
	}
}

// TestScaleNoise checks the img2img start latents: σ·noise + (1 − σ)·latents in float32, with the
// encoded latents read back from a strength-0 run (which returns them unchanged).
func TestScaleNoise(t *testing.T) {
	p, calls := echoPipeline(t, testmodels.KindSD3NoT5, echoSpec{})
	img := image.NewNRGBA(image.Rect(0, 0, 32, 32))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	req := Request{Prompt: "x", Width: 32, Height: 32, Steps: 4, InitImage: img, Seed: 9}
	enc, err := p.Generate(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Strength = 0.5
	res, err := p.Generate(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	sigma := float32(res.Settings.Sigmas[0])
	fed := (*calls)[0].raw
	for i := 3 * 16; i < len(enc.Latents); i++ {
		want := float32(sigma*res.Noise[i]) + float32((1-sigma)*enc.Latents[i])
		if math.Float32bits(fed[i]) != math.Float32bits(want) {
			t.Fatalf("start latents[%d] = %v, want σ·noise + (1−σ)·latents = %v (σ = %v)", i, fed[i], want, sigma)
		}
	}
}

// TestPackRoundTrip checks unpack(pack(x)) = x on odd shapes and the packed index formula.
func TestPackRoundTrip(t *testing.T) {
	const b, c, h, w = 2, 3, 6, 10
	x := make([]float32, b*c*h*w)
	for i := range x {
		x[i] = float32(i)
	}
	p, back := make([]float32, len(x)), make([]float32, len(x))
	packLatents(p, x, b, c, h, w)
	unpackLatents(back, p, b, c, h, w)
	if !slices.Equal(back, x) {
		t.Fatal("unpack(pack(x)) != x")
	}
	// packed[b, i·(w/2)+j, ch·4 + dy·2 + dx] = x[b, ch, 2i+dy, 2j+dx]
	if got, want := p[((1*(h/2)*(w/2))+2*(w/2)+3)*4*c+2*4+1*2+1], x[((1*c+2)*h+2*2+1)*w+2*3+1]; got != want {
		t.Fatalf("packed value %v, want %v", got, want)
	}
	ids := imageIDs(h, w)
	if len(ids) != 3*(h/2)*(w/2) || ids[3*7] != 0 || ids[3*7+1] != 1 || ids[3*7+2] != 2 {
		t.Fatalf("img_ids row 7 = %v", ids[21:24])
	}
}

// TestImg2ImgInitLatent: by default (InitLatentSample) the encoder's latent distribution is sampled with
// the seed's generator and the noise continues that generator's stream, as diffusers' img2img
// prepare_latents does (retrieve_latents(sample), then randn_tensor). At strength 0 the result is the
// sampled latent, which differs from the mean (InitLatentMean) by exactly std·ε with ε the generator's
// first draw (the demo encoder's logvar is −10, std e^−5). With seed-per-image noise, image k's
// generator (seed + k) samples image k's latent and then draws its noise: each image of a batch of 2
// equals a run of its seed alone.
func TestImg2ImgInitLatent(t *testing.T) {
	m, err := OpenDemo("demo-sd3")
	if err != nil {
		t.Fatal(err)
	}
	p := newTestPipeline(t, m, true)
	const size = 64
	init := componentPicture(assets.Component{Shape: "circle", Color: "red", Background: "white"}, size)
	req := Request{Prompt: "a red circle", Width: size, Height: size, Steps: 4, Seed: 5, InitImage: init,
		InitLatent: InitLatentMean}
	mean, err := p.Generate(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	txt, err := p.Generate(context.Background(), Request{Prompt: req.Prompt, Width: size, Height: size, Steps: 4, Seed: 5}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sameBits(t, "mean: txt2img's noise", mean.Noise, txt.Noise)
	req.InitLatent = ""
	sampled, err := p.Generate(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := len(mean.Latents)
	g := rng.NewTorchCPU(5)
	eps, noise := make([]float32, n), make([]float32, n)
	g.Randn(eps)
	g.Randn(noise)
	sameBits(t, "noise after the latent sample", sampled.Noise, noise)
	std := math.Exp(-5)
	for i := range eps {
		if d := float64(sampled.Latents[i]-mean.Latents[i]) - std*float64(eps[i]); math.Abs(d) > 1e-6 {
			t.Fatalf("latent %d: sample − mean = %v, want std·ε = %v", i, sampled.Latents[i]-mean.Latents[i], std*float64(eps[i]))
		}
	}
	if sampled.Settings.InitLatent != "sample" || mean.Settings.InitLatent != "mean" || sampled.Settings.ResizeMode != "just-resize" {
		t.Fatalf("Resolved.InitLatent %q / %q, ResizeMode %q", sampled.Settings.InitLatent, mean.Settings.InitLatent, sampled.Settings.ResizeMode)
	}
	if txt.Settings.InitLatent != "" || txt.Settings.ResizeMode != "" {
		t.Fatal("txt2img records img2img modes")
	}

	// Strength 0 returns the init latents unchanged: compare a seed-per-image batch with single runs.
	req.Strength = 0
	one := make([]Result, 2)
	for k := range one {
		r := req
		r.Seed = 5 + uint64(k)
		if one[k], err = p.Generate(context.Background(), r, nil); err != nil {
			t.Fatal(err)
		}
	}
	req.BatchSize, req.BatchMode = 2, rng.SeedPerImage
	both, err := p.Generate(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k := range one {
		sameBits(t, "seed-per-image latent sample", both.Latents[k*n:(k+1)*n], one[k].Latents)
		sameBits(t, "seed-per-image noise", both.Noise[k*n:(k+1)*n], one[k].Noise)
	}
	req.InitLatent = "median"
	if _, err := p.Generate(context.Background(), req, nil); err == nil {
		t.Fatal("an unknown InitLatent was accepted")
	}
}
