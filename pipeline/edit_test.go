package pipeline

import (
	"context"
	"errors"
	"image"
	"image/color"
	"math"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/assets"
	"github.com/rflowrt/rflow/internal/testmodels"
)

// TestKontextSize checks the reference sizes against FluxKontextPipeline's rule: the preferred
// resolution nearest in aspect ratio, or the image's own size cut to multiples of 16.
func TestKontextSize(t *testing.T) {
	cases := []struct {
		w, h   int
		mode   RefResize
		ww, wh int
	}{
		{320, 224, RefResizeKontext, 1248, 832}, // 1.43: |1.5 − 1.43| < |1.35 − 1.43|
		{1024, 1024, RefResizeKontext, 1024, 1024},
		{100, 1000, RefResizeKontext, 672, 1568}, // taller than any: the tallest
		{1568, 672, "", 1568, 672},
		{320, 224, RefResizeNone, 320, 224},
		{333, 250, RefResizeNone, 320, 240},
	}
	for _, c := range cases {
		if w, h := kontextSize(c.w, c.h, c.mode); w != c.ww || h != c.wh {
			t.Errorf("kontextSize(%d, %d, %q) = %d×%d, want %d×%d", c.w, c.h, c.mode, w, h, c.ww, c.wh)
		}
	}
	if ids := kontextIDs(1, 4, 6); len(ids) != 2*3*3 || ids[0] != 2 || ids[3*4+1] != 1 || ids[3*4+2] != 1 {
		t.Errorf("kontextIDs(1, 4, 6) = %v: want (2, i, j) rows", ids)
	}
}

// TestFillExtraLayout checks Fill's channels against diffusers' index arithmetic written out:
// mask.view(b, h, 8, w, 8).permute(0, 2, 4, 1, 3) → channel dy·8 + dx at latent (i, j), then
// _pack_latents: token (i/2)·(w/2) + j/2, channel ch·4 + (i%2)·2 + j%2, after the 4c masked-image channels.
func TestFillExtraLayout(t *testing.T) {
	const b, c, h, w, s = 2, 3, 4, 6, 8
	masked := make([]float32, b*c*h*w)
	for i := range masked {
		masked[i] = float32(i) + 0.5
	}
	pix := make([]float32, h*s*w*s)
	for i := range pix {
		pix[i] = float32(i)
	}
	got := fillExtra(masked, pix, b, c, h, w, s)
	e := 4*c + 4*s*s
	tokens := h / 2 * w / 2
	if len(got) != b*tokens*e {
		t.Fatalf("%d values, want %d", len(got), b*tokens*e)
	}
	for n := range b {
		for y := range h * s {
			for x := range w * s {
				i, j, dy, dx := y/s, x/s, y%s, x%s
				ch := dy*s + dx
				tok := (i/2)*(w/2) + j/2
				at := (n*tokens+tok)*e + 4*c + ch*4 + (i%2)*2 + j%2
				if got[at] != pix[y*w*s+x] {
					t.Fatalf("image %d pixel (%d, %d): extra[%d] = %v, want %v", n, y, x, at, got[at], pix[y*w*s+x])
				}
			}
		}
		for ch := range c {
			for i := range h {
				for j := range w {
					tok := (i/2)*(w/2) + j/2
					at := (n*tokens+tok)*e + ch*4 + (i%2)*2 + j%2
					if want := masked[((n*c+ch)*h+i)*w+j]; got[at] != want {
						t.Fatalf("image %d latent (%d, %d, %d): extra[%d] = %v, want %v", n, ch, i, j, at, got[at], want)
					}
				}
			}
		}
	}
}

// TestInpaintBlendEnds checks the per-step blend's closed forms: mask 1 keeps the sampler's value,
// mask 0 gives σ·noise + (1 − σ)·image, and σ = 0 gives the image latents bit for bit.
func TestInpaintBlendEnds(t *testing.T) {
	e := &editPlan{task: TaskInpaint, latentMask: []float32{1, 0}, noise: []float32{0.3, -1.7, 2, 0.25},
		imageLatents: []float32{-0.6, 0.9, 1.1, -2.3}}
	x := []float32{5, 6, 7, 8}
	e.blend(x, 0.4)
	want1 := float32(float32(0.4)*-1.7) + float32(float32(0.6)*0.9)
	if x[0] != 5 || x[2] != 7 || x[1] != want1 {
		t.Fatalf("blend at σ 0.4: %v, want [5 %v 7 …]", x, want1)
	}
	e.blend(x, 0)
	if x[1] != 0.9 || x[3] != -2.3 || x[0] != 5 {
		t.Fatalf("blend at σ 0: %v: the unmasked latents must be the image's", x)
	}
}

// greyImage is a w×h grey picture with v(x, y).
func greyImage(w, h int, v func(x, y int) uint8) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			g.SetGray(x, y, color.Gray{Y: v(x, y)})
		}
	}
	return g
}

// TestInpaintDemo inpaints the right half of a demo-sd3 picture: the final latents under the black
// half are the init image's latents bit for bit (the same latent img2img at strength 0 returns), those
// under the white half moved, and with the overlay every black-masked pixel is the init image's.
func TestInpaintDemo(t *testing.T) {
	m, err := OpenDemo("demo-sd3")
	if err != nil {
		t.Fatal(err)
	}
	p := newTestPipeline(t, m, true)
	const size = 128
	init := componentPicture(assets.Component{Shape: "ring", Color: "yellow", Background: "blue"}, size)
	mask := greyImage(size, size, func(x, y int) uint8 {
		if x >= size/2 {
			return 255
		}
		return 0
	})
	base := Request{Prompt: "a red square on a white background", Width: size, Height: size, Steps: 6, Seed: 5,
		InitImage: init, Strength: 0}
	ctx := context.Background()
	enc, err := p.Generate(ctx, base, nil) // strength 0: the sampled image latents themselves
	if err != nil {
		t.Fatal(err)
	}
	inp := base
	inp.Strength, inp.Mask = 0.7, mask
	res, err := p.Generate(ctx, inp, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Settings.Task != TaskInpaint {
		t.Fatalf("task %q, want inpaint", res.Settings.Task)
	}
	c, h, w := len(res.Latents)/(size/8*size/8), size/8, size/8
	moved := 0
	for ch := range c {
		for i := range h {
			for j := range w {
				k := (ch*h+i)*w + j
				if j < w/2 && math.Float32bits(res.Latents[k]) != math.Float32bits(enc.Latents[k]) {
					t.Fatalf("latent (%d, %d, %d) under black: %v, image latent %v", ch, i, j, res.Latents[k], enc.Latents[k])
				}
				if j >= w/2 && res.Latents[k] != enc.Latents[k] {
					moved++
				}
			}
		}
	}
	if moved < c*h*w/2*9/10 {
		t.Fatalf("only %d of %d latents under white changed", moved, c*h*w/2)
	}
	img := res.Images[0]
	for y := range size {
		for x := range size / 2 {
			i := y*img.Stride + 4*x
			if img.Pix[i] != init.Pix[i] || img.Pix[i+1] != init.Pix[i+1] || img.Pix[i+2] != init.Pix[i+2] {
				t.Fatalf("pixel (%d, %d) under black: %v, init %v", x, y, img.Pix[i:i+3], init.Pix[i:i+3])
			}
		}
	}
	raw := inp
	raw.NoOverlay = true
	plain, err := p.Generate(ctx, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	sameBits(t, "latents with and without the overlay", plain.Latents, res.Latents)
	if string(plain.Images[0].Pix) == string(img.Pix) {
		t.Fatal("NoOverlay changed nothing: the VAE round trip should leave the kept half slightly different")
	}
}

// TestEditBadInput checks the one-line errors of the edit options, before anything loads.
func TestEditBadInput(t *testing.T) {
	m, err := OpenDemo("demo-sd3")
	if err != nil {
		t.Fatal(err)
	}
	p := newTestPipeline(t, m, false)
	init := componentPicture(assets.Component{Shape: "ring", Color: "yellow", Background: "blue"}, 64)
	white := greyImage(64, 64, func(int, int) uint8 { return 255 })
	colour := image.NewNRGBA(image.Rect(0, 0, 64, 64))
	for i := range colour.Pix {
		colour.Pix[i] = uint8(i)
	}
	base := Request{Prompt: "x", Width: 64, Height: 64, Steps: 2, InitImage: init, Strength: 0.5}
	cases := []struct {
		name string
		edit func(r *Request)
		want string
		is   error
	}{
		{"black", func(r *Request) { r.Mask = greyImage(64, 64, func(int, int) uint8 { return 127 }) }, "all black", ErrAllBlackMask},
		{"colour", func(r *Request) { r.Mask = colour }, "not greyscale", nil},
		{"no init", func(r *Request) { r.Mask, r.InitImage = white, nil }, "needs an init image", nil},
		{"blur without mask", func(r *Request) { r.MaskBlur = 2 }, "needs a mask", nil},
		{"negative blur", func(r *Request) { r.Mask, r.MaskBlur = white, -1 }, "outside", nil},
		{"refs on sd3", func(r *Request) { r.RefImages = []image.Image{init} }, "Kontext", ErrNotKontext},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := base
			c.edit(&r)
			_, err := p.Generate(context.Background(), r, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v, want one line with %q", err, c.want)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Fatalf("error %v does not wrap %v", err, c.is)
			}
		})
	}
	// a mask of another size is resized, with a warning
	r := base
	r.Mask = greyImage(32, 48, func(x, _ int) uint8 { return uint8(8 * x) })
	res, err := p.Generate(context.Background(), r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0].Message, "the mask is 32×48") {
		t.Fatalf("warnings %v, want the mask's resize", res.Warnings)
	}
}

// TestFillAndKontextFixtures runs FLUX Fill and Kontext end to end on tiny fixtures: Fill's transformer
// takes 384 channels and needs a mask; Kontext's references change the picture, and more references
// append more tokens.
func TestFillAndKontextFixtures(t *testing.T) {
	ctx := context.Background()
	init := componentPicture(assets.Component{Shape: "ring", Color: "yellow", Background: "blue"}, 64)
	mask := greyImage(64, 64, func(x, y int) uint8 {
		if x > 20 && y > 12 {
			return 255
		}
		return 0
	})
	fm, err := Open(testmodels.Cached(t, testmodels.Options{Kind: testmodels.KindFluxDev, Edit: testmodels.EditFill}))
	if err != nil {
		t.Fatal(err)
	}
	if !fm.FillModel() || fm.InChannels != 384 {
		t.Fatalf("Fill fixture: FillModel %t, in_channels %d", fm.FillModel(), fm.InChannels)
	}
	fp := newTestPipeline(t, fm, false)
	base := Request{Prompt: "a cat", Width: 64, Height: 64, Steps: 2, Seed: 3}
	if _, err := fp.Generate(ctx, base, nil); err == nil || !strings.Contains(err.Error(), "needs an init image and a mask") {
		t.Fatalf("Fill without a mask: %v", err)
	}
	fill := base
	fill.InitImage, fill.Mask, fill.Strength = init, mask, 1
	res, err := fp.Generate(ctx, fill, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Settings.Task != TaskFill || len(res.Images) != 1 {
		t.Fatalf("Fill: task %q, %d images", res.Settings.Task, len(res.Images))
	}

	km, err := Open(testmodels.Cached(t, testmodels.Options{Kind: testmodels.KindFluxDev, Edit: testmodels.EditKontext}))
	if err != nil {
		t.Fatal(err)
	}
	kp := newTestPipeline(t, km, false)
	plain, err := kp.Generate(ctx, base, nil)
	if err != nil {
		t.Fatal(err)
	}
	one := base
	one.RefImages, one.RefResize = []image.Image{init}, RefResizeNone
	ref1, err := kp.Generate(ctx, one, nil)
	if err != nil {
		t.Fatal(err)
	}
	sameBits(t, "Kontext noise vs txt2img noise", ref1.Noise, plain.Noise)
	if ref1.Settings.Task != TaskKontext || string(ref1.Images[0].Pix) == string(plain.Images[0].Pix) {
		t.Fatalf("Kontext: task %q; the reference changed nothing", ref1.Settings.Task)
	}
	two := one
	two.RefImages = []image.Image{init, greyImage(96, 32, func(x, _ int) uint8 { return uint8(x) })}
	ref2, err := kp.Generate(ctx, two, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ref2.Settings.RefImages != 2 || string(ref2.Images[0].Pix) == string(ref1.Images[0].Pix) {
		t.Fatal("a second reference changed nothing")
	}
}

// TestCropRegion checks cropRegion against diffusers 0.38's VaeImageProcessor.get_crop_region on a
// 100×60 mask (values printed by the real function).
func TestCropRegion(t *testing.T) {
	mask := func(x0, y0, x1, y1 int) []uint8 {
		g := make([]uint8, 100*60)
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				g[y*100+x] = 255
			}
		}
		return g
	}
	mid, edge := mask(40, 10, 50, 20), mask(90, 50, 99, 58)
	cases := []struct {
		grey      []uint8
		w, h, pad int
		want      [4]int
	}{
		{mid, 64, 64, 4, [4]int{36, 6, 54, 24}}, {mid, 128, 64, 4, [4]int{27, 6, 63, 24}},
		{mid, 64, 128, 4, [4]int{36, 0, 54, 36}}, {mid, 64, 64, 40, [4]int{0, 0, 90, 60}},
		{mid, 48, 80, 7, [4]int{33, 0, 57, 40}}, {edge, 64, 64, 4, [4]int{86, 46, 100, 60}},
		{edge, 256, 64, 10, [4]int{20, 40, 100, 60}},
	}
	for _, c := range cases {
		x1, y1, x2, y2 := cropRegion(c.grey, 100, 60, c.w, c.h, c.pad)
		if got := [4]int{x1, y1, x2, y2}; got != c.want {
			t.Errorf("cropRegion(%d×%d, pad %d) = %v, diffusers %v", c.w, c.h, c.pad, got, c.want)
		}
	}
}

// TestInpaintFullRes draws only the mask's rectangle of a 128² picture at 64×64 and pastes it back:
// the result has the init image's size and every pixel under black is the init image's.
func TestInpaintFullRes(t *testing.T) {
	m, err := OpenDemo("demo-sd3")
	if err != nil {
		t.Fatal(err)
	}
	p := newTestPipeline(t, m, false)
	init := componentPicture(assets.Component{Shape: "ring", Color: "yellow", Background: "blue"}, 128)
	mask := greyImage(128, 128, func(x, y int) uint8 {
		if x >= 70 && x < 90 && y >= 20 && y < 50 {
			return 255
		}
		return 0
	})
	r := Request{Prompt: "a red square on a white background", Width: 64, Height: 64, Steps: 4, Seed: 2,
		InitImage: init, Strength: 0.8, Mask: mask, InpaintFullRes: true, InpaintFullResPadding: 8}
	res, err := p.Generate(context.Background(), r, nil)
	if err != nil {
		t.Fatal(err)
	}
	img := res.Images[0]
	if img.Bounds().Dx() != 128 || img.Bounds().Dy() != 128 {
		t.Fatalf("result %v, want the init image's 128×128", img.Bounds())
	}
	changed := 0
	for y := range 128 {
		for x := range 128 {
			i := y*img.Stride + 4*x
			same := img.Pix[i] == init.Pix[i] && img.Pix[i+1] == init.Pix[i+1] && img.Pix[i+2] == init.Pix[i+2]
			if mask.GrayAt(x, y).Y == 0 && !same {
				t.Fatalf("pixel (%d, %d) under black changed", x, y)
			}
			if !same {
				changed++
			}
		}
	}
	if changed < 20*30/2 {
		t.Fatalf("only %d pixels changed under the 20×30 white rectangle", changed)
	}
}
