package assets

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rflowrt/rflow/scheduler"
)

// promptCounts is the pooled vector the demo text encoder emits for a prompt: shape counts, foreground
// and background colour counts, zero-padded to width.
func promptCounts(prompt string, width int) []float32 {
	out := make([]float32, width)
	s, f, b := PromptAttributes(prompt)
	for _, x := range s {
		out[indexOf(Shapes(), x)]++
	}
	for _, x := range f {
		out[6+indexOf(Colors(), x)]++
	}
	for _, x := range b {
		out[14+indexOf(Colors(), x)]++
	}
	return out
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	panic(s)
}

// referenceFlow is scheduler's analytic flow over the materialised means at latent size h×w.
func referenceFlow(t testing.TB, prompt string, h, w int) *scheduler.AnalyticFlow {
	t.Helper()
	cs := Components()
	means := make([][]float64, len(cs))
	stds := make([]float64, len(cs))
	for k, c := range cs {
		mu := ComponentLatent(c, h, w)
		means[k] = make([]float64, len(mu))
		for i, v := range mu {
			means[k][i] = float64(v)
		}
		stds[k] = LatentStd
	}
	gm, err := scheduler.NewGaussianMixture(means, stds, ComponentWeights(prompt))
	if err != nil {
		t.Fatal(err)
	}
	return &scheduler.AnalyticFlow{Target: gm, Path: scheduler.Linear}
}

// testLatents draws B latents x_σ = (1−σ)·x0 + σ·ε: row 0 from a component the prompt favours, row 1
// from a random component, row 2 from pure noise.
func testLatents(r *rand.Rand, prompt string, h, w int, sigma float64) []float32 {
	n := LatentChannels * h * w
	cs, wts := Components(), ComponentWeights(prompt)
	fav := 0
	for k := range wts {
		if wts[k] > wts[fav] {
			fav = k
		}
	}
	x := make([]float32, 3*n)
	for row, k := range []int{fav, r.IntN(len(cs)), -1} {
		var mu []float32
		if k >= 0 {
			mu = ComponentLatent(cs[k], h, w)
		}
		for i := range n {
			x0 := 0.0
			if mu != nil {
				x0 = float64(mu[i]) + LatentStd*r.NormFloat64()
			}
			x[row*n+i] = float32((1-sigma)*x0 + sigma*r.NormFloat64())
		}
	}
	return x
}

// relErr is ‖a − b‖/‖b‖ for each of the rows of length n.
func relErr(a []float32, b []float64, n int) []float64 {
	var out []float64
	for r := 0; r < len(b)/n; r++ {
		num, den := 0.0, 0.0
		for i := r * n; i < (r+1)*n; i++ {
			d := float64(a[i]) - b[i]
			num += d * d
			den += b[i] * b[i]
		}
		out = append(out, math.Sqrt(num/den))
	}
	return out
}

var (
	velocityPrompts = []string{"a green star on a black background", "red", "a ring"}
	velocitySigmas  = []float64{0.95, 0.7, 0.4, 0.1, 0.02}
)

const velocityTol = 1e-5

// checkVelocity compares a graph velocity (computed by run for latents x at σ, NCHW out) with the
// analytic velocity at the σ the graph saw.
func checkVelocity(t *testing.T, h, w int, run func(prompt string, x []float32, sigma float64) ([]float32, float64)) {
	r := rand.New(rand.NewPCG(7, uint64(h*1000+w)))
	n := LatentChannels * h * w
	for _, prompt := range velocityPrompts {
		flow := referenceFlow(t, prompt, h, w)
		for _, sigma := range velocitySigmas {
			x := testLatents(r, prompt, h, w, sigma)
			got, seen := run(prompt, x, sigma)
			xf, want := make([]float64, len(x)), make([]float64, len(x))
			for i, v := range x {
				xf[i] = float64(v)
			}
			if err := flow.VelocityAt(want, xf, seen); err != nil {
				t.Fatal(err)
			}
			for row, e := range relErr(got, want, n) {
				if e > velocityTol || math.IsNaN(e) {
					t.Errorf("%q σ=%v row %d: relative error %.3g > %g", prompt, sigma, row, e, velocityTol)
				} else if testing.Verbose() {
					t.Logf("%q σ=%v row %d: relative error %.3g", prompt, sigma, row, e)
				}
			}
		}
	}
}

func TestSD3VelocityIsAnalytic(t *testing.T) {
	s := openGraph(t, "demo-sd3", "transformer")
	for _, size := range [][2]int{{32, 32}, {16, 24}} {
		h, w := size[0], size[1]
		checkVelocity(t, h, w, func(prompt string, x []float32, sigma float64) ([]float32, float64) {
			ts := float32(sigma * 1000)
			out := runGraph(t, s, map[string]feed{
				"hidden_states":         f32In(x, 3, LatentChannels, int64(h), int64(w)),
				"timestep":              f32In([]float32{ts, ts, ts}, 3),
				"pooled_projections":    f32In(repeat(promptCounts(prompt, 64), 3), 3, 64),
				"encoder_hidden_states": f32In(make([]float32, 3*5*64), 3, 5, 64),
			}, map[string][]int64{"out_hidden_states": {3, LatentChannels, int64(h), int64(w)}})
			return out["out_hidden_states"], float64(ts / 1000)
		})
	}
}

func TestFluxVelocityIsAnalytic(t *testing.T) {
	s := openGraph(t, "demo-flux", "transformer")
	for _, size := range [][2]int{{32, 32}, {16, 24}} {
		h, w := size[0], size[1]
		L := int64(h / 2 * w / 2)
		checkVelocity(t, h, w, func(prompt string, x []float32, sigma float64) ([]float32, float64) {
			sig := float32(sigma)
			out := runGraph(t, s, map[string]feed{
				"hidden_states":         f32In(pack(x, 3, h, w), 3, L, 64),
				"timestep":              f32In([]float32{sig, sig, sig}, 3),
				"guidance":              f32In([]float32{3.5, 3.5, 3.5}, 3),
				"pooled_projections":    f32In(repeat(promptCounts(prompt, 32), 3), 3, 32),
				"encoder_hidden_states": f32In(make([]float32, 3*7*64), 3, 7, 64),
				"txt_ids":               i64In(make([]int64, 7*3), 7, 3),
				"img_ids":               i64In(imgIDs(h, w), L, 3),
			}, map[string][]int64{"out_hidden_states": {3, L, 64}})
			return unpack(out["out_hidden_states"], 3, h, w), float64(sig)
		})
	}
}

func repeat(v []float32, n int) []float32 {
	var out []float32
	for range n {
		out = append(out, v...)
	}
	return out
}

// pack is FLUX's latent packing: packed[b, i*(w/2)+j, c*4+dy*2+dx] = x[b, c, 2i+dy, 2j+dx].
func pack(x []float32, B, h, w int) []float32 {
	out := make([]float32, len(x))
	C := LatentChannels
	for b := range B {
		for c := range C {
			for y := range h {
				for xx := range w {
					i, j, dy, dx := y/2, xx/2, y%2, xx%2
					out[((b*(h/2)+i)*(w/2)+j)*C*4+c*4+dy*2+dx] = x[((b*C+c)*h+y)*w+xx]
				}
			}
		}
	}
	return out
}

// unpack inverts pack.
func unpack(p []float32, B, h, w int) []float32 {
	out := make([]float32, len(p))
	C := LatentChannels
	for b := range B {
		for c := range C {
			for y := range h {
				for xx := range w {
					i, j, dy, dx := y/2, xx/2, y%2, xx%2
					out[((b*C+c)*h+y)*w+xx] = p[((b*(h/2)+i)*(w/2)+j)*C*4+c*4+dy*2+dx]
				}
			}
		}
	}
	return out
}

// imgIDs is FLUX's img_ids: row i*(w/2)+j = [0, i, j].
func imgIDs(h, w int) []int64 {
	var ids []int64
	for i := range h / 2 {
		for j := range w / 2 {
			ids = append(ids, 0, int64(i), int64(j))
		}
	}
	return ids
}
