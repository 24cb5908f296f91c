package assets

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rflowrt/rflow/assets/internal/demo"
)

// decodeORT runs the demo VAE decoder on B latents [B,16,h,w].
func decodeORT(t testing.TB, model string, z []float32, B, h, w int) []float32 {
	s := openGraph(t, model, "vae_decoder")
	out := runGraph(t, s, map[string]feed{"latent_sample": f32In(z, int64(B), LatentChannels, int64(h), int64(w))},
		map[string][]int64{"sample": {int64(B), 3, int64(8 * h), int64(8 * w)}})
	return out["sample"]
}

// encodeORT runs the demo VAE encoder on B images [B,3,H,W] and returns latent_parameters.
func encodeORT(t testing.TB, model string, img []float32, B, H, W int) []float32 {
	s := openGraph(t, model, "vae_encoder")
	out := runGraph(t, s, map[string]feed{"sample": f32In(img, int64(B), 3, int64(H), int64(W))},
		map[string][]int64{"latent_parameters": {int64(B), 2 * LatentChannels, int64(H / 8), int64(W / 8)}})
	return out["latent_parameters"]
}

// pixelAt returns the RGB of image [3,H,W] at normalised coordinates (u right, v down, in [−1, 1]).
func pixelAt(img []float32, H, W int, u, v float64) [3]float32 {
	j := min(W-1, max(0, int(math.Round((u+1)*float64(W)/2-0.5))))
	i := min(H-1, max(0, int(math.Round((v+1)*float64(H)/2-0.5))))
	n := H * W
	return [3]float32{img[i*W+j], img[n+i*W+j], img[2*n+i*W+j]}
}

// knownPixels are, per shape, points that must show the foreground and points that must show the
// background colour.
var knownPixels = map[string]struct{ fg, bg [][2]float64 }{
	"circle":   {fg: [][2]float64{{0, 0}, {0.4, 0.3}}, bg: [][2]float64{{-1, -1}, {1, 1}, {0.8, 0}}},
	"square":   {fg: [][2]float64{{0, 0}, {0.45, -0.45}}, bg: [][2]float64{{-1, -1}, {1, -1}, {0, 0.7}}},
	"triangle": {fg: [][2]float64{{0, 0}, {0, -0.4}, {-0.5, 0.45}}, bg: [][2]float64{{-1, -1}, {1, 1}, {-0.5, -0.4}}},
	"star":     {fg: [][2]float64{{0, 0}, {0, -0.5}}, bg: [][2]float64{{-1, -1}, {1, 1}, {0, 0.6}}},
	"ring":     {fg: [][2]float64{{0.55, 0}, {0, -0.55}}, bg: [][2]float64{{0, 0}, {-1, -1}, {1, 1}}},
	"stripes":  {fg: [][2]float64{{0, 0.25}, {-0.9, -0.25}, {0.5, 0.75}}, bg: [][2]float64{{0, 0}, {0.3, 0.5}, {-1, -1}}},
}

func colorNear(got, want [3]float32, tol float32) bool {
	for i := range 3 {
		if math.Abs(float64(got[i]-want[i])) > float64(tol) {
			return false
		}
	}
	return true
}

func TestDecoderDrawsComponents(t *testing.T) {
	const h, w, H, W = 32, 32, 256, 256
	var sample []Component
	for k, c := range Components() {
		if k%11 == 0 || c.Shape == "ring" && c.Color == "white" || c.Shape == "stripes" && c.Background == "red" {
			sample = append(sample, c)
		}
	}
	var z []float32
	for _, c := range sample {
		z = append(z, ComponentLatent(c, h, w)...)
	}
	img := decodeORT(t, "demo-sd3", z, len(sample), h, w)
	n := 3 * H * W
	maxDiff := 0.0
	for b, c := range sample {
		got := img[b*n : (b+1)*n]
		for i, v := range ComponentImage(c, h, w) {
			maxDiff = max(maxDiff, math.Abs(float64(v-got[i])))
		}
		fg, bg := colorOf(c.Color), colorOf(c.Background)
		for _, p := range knownPixels[c.Shape].fg {
			if px := pixelAt(got, H, W, p[0], p[1]); !colorNear(px, fg, 0.01) {
				t.Errorf("%v: pixel at %v is %v, want the foreground %v", c, p, px, fg)
			}
		}
		for _, p := range knownPixels[c.Shape].bg {
			if px := pixelAt(got, H, W, p[0], p[1]); !colorNear(px, bg, 0.01) {
				t.Errorf("%v: pixel at %v is %v, want the background %v", c, p, px, bg)
			}
		}
		if got, _ := Classify(got, H, W); got != c {
			t.Errorf("%v decodes to a picture that classifies as %v", c, got)
		}
	}
	t.Logf("%d components: max |ORT − ComponentImage| = %.3g", len(sample), maxDiff)
	if maxDiff > 1e-5 {
		t.Errorf("ORT decoder and ComponentImage differ by %.3g > 1e-5", maxDiff)
	}
}

func colorOf(name string) [3]float32 { return demo.ColorValue(indexOf(Colors(), name)) }

// TestDecoderMatchesGoOnNoisyLatents checks DecodeLatent against the graph on arbitrary latents at a
// non-square size (both signatures share the decoder).
func TestDecoderMatchesGoOnNoisyLatents(t *testing.T) {
	const h, w = 12, 20
	r := rand.New(rand.NewPCG(3, 4))
	comps := Components()
	var z []float32
	for range 2 {
		mu := ComponentLatent(comps[r.IntN(len(comps))], h, w)
		for i := range mu {
			mu[i] += float32(0.2 * r.NormFloat64())
		}
		z = append(z, mu...)
	}
	got := decodeORT(t, "demo-flux", z, 2, h, w)
	n := LatentChannels * h * w
	maxDiff := 0.0
	for b := range 2 {
		want := DecodeLatent(z[b*n:(b+1)*n], h, w)
		for i, v := range want {
			maxDiff = max(maxDiff, math.Abs(float64(v-got[b*len(want)+i])))
		}
	}
	if maxDiff > 1e-5 {
		t.Errorf("max |ORT − DecodeLatent| = %.3g > 1e-5", maxDiff)
	}
}

// TestEncoderRoundTrip encodes decoded components and decodes again: colours come back exactly, the
// shape field approximately; the re-decoded picture differs only along edges (about 1% of the
// values by more than 0.1, none of them away from an edge: every picture classifies back).
func TestEncoderRoundTrip(t *testing.T) {
	const h, w, H, W = 32, 32, 256, 256
	var sample []Component
	for k, c := range Components() {
		if k%13 == 0 {
			sample = append(sample, c)
		}
	}
	var imgs []float32
	for _, c := range sample {
		imgs = append(imgs, ComponentImage(c, h, w)...)
	}
	params := encodeORT(t, "demo-sd3", imgs, len(sample), H, W)
	n := LatentChannels * h * w
	var z []float32
	colorErr := 0.0
	for b, c := range sample {
		mean := params[b*2*n : b*2*n+n]
		for _, lv := range params[b*2*n+n : (b+1)*2*n] {
			if lv != -10 {
				t.Fatalf("logvar %v, want −10", lv)
			}
		}
		mu := ComponentLatent(c, h, w)
		for i := h * w; i < n; i++ {
			colorErr = max(colorErr, math.Abs(float64(mean[i]-mu[i])))
		}
		z = append(z, mean...)
	}
	again := decodeORT(t, "demo-sd3", z, len(sample), h, w)
	sumAbs, maxAbs, bad := 0.0, 0.0, 0
	for i, v := range again {
		d := math.Abs(float64(v - imgs[i]))
		sumAbs += d
		maxAbs = max(maxAbs, d)
		if d > 0.1 {
			bad++
		}
	}
	frac := float64(bad) / float64(len(again))
	t.Logf("round trip over %d pictures: colour latents max err %.3g; decoded mean |Δ| %.4f, max |Δ| %.3f, %.2f%% of values off by > 0.1",
		len(sample), colorErr, sumAbs/float64(len(again)), maxAbs, 100*frac)
	if colorErr > 0.005 || sumAbs/float64(len(again)) > 0.01 || frac > 0.02 {
		t.Error("the encoder does not invert the decoder on demo pictures")
	}
	for b, c := range sample {
		if got, _ := Classify(again[b*3*H*W:(b+1)*3*H*W], H, W); got != c {
			t.Errorf("%v round-trips to %v", c, got)
		}
	}
}
