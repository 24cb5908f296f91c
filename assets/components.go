package assets

import (
	"fmt"
	"math"
	"slices"

	"github.com/rflowrt/rflow/assets/internal/demo"
)

// Model constants of the demo family.
const (
	// LatentStd is the standard deviation s of every mixture component.
	LatentStd = demo.Std
	// PromptBeta is β: a component's log-weight is β times the number of its attributes (shape,
	// foreground colour, background colour) that the prompt names.
	PromptBeta = demo.Beta
	// LatentChannels and VAEScale describe the latent space: 16 channels at 1/8 of the image size.
	LatentChannels = demo.LatentChannels
	VAEScale       = demo.Scale
	// DefaultSize is the image side the shape fields are drawn for (256 px; latent 32×32).
	DefaultSize = demo.BaseLatent * demo.Scale
)

// Component is one picture of the demo mixture: a shape in a colour on a background colour.
type Component struct{ Shape, Color, Background string }

func (c Component) String() string { return c.Color + " " + c.Shape + " on " + c.Background }

// Shapes are the shape names: circle, square, triangle, star, ring, stripes.
func Shapes() []string { return slices.Clone(demo.Shapes) }

// Colors are the colour names: red, green, blue, yellow, orange, purple, white, black.
func Colors() []string { return slices.Clone(demo.Colors) }

// Components lists the 336 mixture components in the transformer graph's order: shape-major, then
// colour, then background (every colour but the foreground one).
func Components() []Component {
	cs := demo.Components()
	out := make([]Component, len(cs))
	for i, c := range cs {
		out[i] = Component{demo.Shapes[c.Shape], demo.Colors[c.FG], demo.Colors[c.BG]}
	}
	return out
}

func (c Component) internal() (demo.Component, error) {
	s, f, b := slices.Index(demo.Shapes, c.Shape), slices.Index(demo.Colors, c.Color), slices.Index(demo.Colors, c.Background)
	if s < 0 || f < 0 || b < 0 || f == b {
		return demo.Component{}, fmt.Errorf("assets: %q is not a demo component", c)
	}
	return demo.Component{Shape: s, FG: f, BG: b}, nil
}

func mustInternal(c Component) demo.Component {
	ic, err := c.internal()
	if err != nil {
		panic(err)
	}
	return ic
}

// ComponentLatent is the mean latent μ_k of component c at latent size h×w (image size 8h×8w), NCHW
// without the batch dimension: [16, h, w]. Channel 0 is the shape field tanh(signed distance / 2 px)
// (drawn for 32×32 and resized bilinearly to other sizes, as the graphs do; non-square sizes stretch
// the shape), channels 1–3 the foreground colour and 4–6 the background colour, in [−1, 1],
// everywhere; channels 7–15 are zero. The VAE's scaling factor is 1 and its shift 0, so this is also
// the pipeline's latent. It panics if c is not one of Components().
func ComponentLatent(c Component, h, w int) []float32 { return demo.Latent(mustInternal(c), h, w) }

// ComponentImage is component c decoded: RGB [3, 8h, 8w] in [−1, 1] for latent size h×w, computed in
// Go the way the vae_decoder graph computes it (equal to ORT's output within 1e-5).
func ComponentImage(c Component, h, w int) []float32 {
	return demo.Decode(ComponentLatent(c, h, w), h, w)
}

// DecodeLatent is the vae_decoder graph in Go: latent [16, h, w] → RGB [3, 8h, 8w].
func DecodeLatent(latent []float32, h, w int) []float32 { return demo.Decode(latent, h, w) }

// ClassifyLatent returns the component whose mean latent is nearest to latent [16, h, w].
func ClassifyLatent(latent []float32, h, w int) Component {
	n := h * w
	best, bestD := Component{}, math.Inf(1)
	var dS [6]float64
	var dC [2][8]float64
	for s := range demo.Shapes {
		dS[s] = sqDist(latent[:n], demo.FieldAt(s, h, w), 0)
	}
	for slot := range 2 {
		for c := range demo.Colors {
			v := demo.ColorValue(c)
			for ch := range 3 {
				off := (1 + 3*slot + ch) * n
				dC[slot][c] += sqDist(latent[off:off+n], nil, v[ch])
			}
		}
	}
	for _, c := range demo.Components() {
		if d := dS[c.Shape] + dC[0][c.FG] + dC[1][c.BG]; d < bestD {
			best, bestD = Component{demo.Shapes[c.Shape], demo.Colors[c.FG], demo.Colors[c.BG]}, d
		}
	}
	return best
}

// sqDist is Σ (x − ref)² with ref a slice, or the constant k when ref is nil.
func sqDist(x, ref []float32, k float32) float64 {
	d := 0.0
	for i, v := range x {
		r := k
		if ref != nil {
			r = ref[i]
		}
		e := float64(v - r)
		d += e * e
	}
	return d
}

// Classify returns the component whose decoded picture is nearest to rgb ([3, height, width] in
// [−1, 1], planar, height and width multiples of 8) and the root-mean-square difference to it. A
// picture the demo generates lies about 0.01 (RMS) from its component; the two closest components
// (a circle and a square of the same colours) are 0.071 apart at 256×256.
func Classify(rgb []float32, height, width int) (Component, float64) {
	h, w := height/demo.Scale, width/demo.Scale
	n := height * width
	if h*demo.Scale != height || w*demo.Scale != width || len(rgb) != 3*n {
		panic(fmt.Sprintf("assets: Classify: %d values for a %d×%d image", len(rgb), height, width))
	}
	best, bestD := Component{}, math.Inf(1)
	for s := range demo.Shapes {
		a := demo.Alpha(s, h, w)
		for f := range demo.Colors {
			for b := range demo.Colors {
				if b == f {
					continue
				}
				if d := pictureDist(rgb, a, demo.ColorValue(f), demo.ColorValue(b), bestD); d < bestD {
					best, bestD = Component{demo.Shapes[s], demo.Colors[f], demo.Colors[b]}, d
				}
			}
		}
	}
	return best, math.Sqrt(bestD / float64(3*n))
}

// pictureDist is Σ ‖rgb − (bg + a·(fg − bg))‖², stopping early once above limit.
func pictureDist(rgb, a []float32, fg, bg [3]float32, limit float64) float64 {
	n := len(a)
	d := 0.0
	for ch := range 3 {
		p := rgb[ch*n : (ch+1)*n]
		span := fg[ch] - bg[ch]
		for i, v := range p {
			e := float64(v - (bg[ch] + a[i]*span))
			d += e * e
		}
		if d > limit {
			return d
		}
	}
	return d
}
