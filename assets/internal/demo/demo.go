// Package demo holds the definitions the demo model family is built from and that package assets
// exposes: the shapes and colours, the latent picture code, the mixture's constants and the
// demo vocabulary. The generator (assets/gen via assets/internal/build) and package assets both
// import it, so the embedded graphs and the Go mirrors cannot drift apart.
package demo

import "math"

// Model constants. Every graph and every Go mirror reads them from here.
const (
	// LatentChannels is the latent width (SD3 and FLUX VAEs have 16).
	LatentChannels = 16
	// Scale is the VAE's spatial factor.
	Scale = 8
	// BaseLatent is the latent side the shape fields are defined on (256×256 images). Other sizes
	// resize the fields bilinearly (Resize, half_pixel) to min(h, w) and edge-pad them (FieldAt).
	BaseLatent = 32
	// Std is the standard deviation s of every mixture component (isotropic, in latent units).
	Std = 0.02
	// Beta is the prompt sharpness β: log w_k = β·(shape + fg + bg presence of component k's attributes).
	Beta = 16
	// FieldWidth is the width w of the field tanh(sd/w), in base-resolution latent pixels.
	FieldWidth = 2.0
	// Sharpness is the decoder's k0: alpha = sigmoid(k0·min(h, w)/BaseLatent·field).
	Sharpness = 32.0
	// PooledFeatures is the number of prompt features the text encoder emits: shape, foreground and
	// background colour counts.
	PooledFeatures = 6 + 8 + 8
)

// Shapes are the shape names, in component order (Component k: shape k/56).
var Shapes = []string{"circle", "square", "triangle", "star", "ring", "stripes"}

// Colors are the colour names, in palette order.
var Colors = []string{"red", "green", "blue", "yellow", "orange", "purple", "white", "black"}

// Palette holds the sRGB values of Colors (0–255).
var Palette = [][3]float64{
	{230, 40, 40}, {40, 180, 60}, {40, 80, 220}, {245, 215, 40},
	{245, 140, 30}, {140, 60, 190}, {245, 245, 245}, {15, 15, 15},
}

// ColorValue is colour c in the model's [−1, 1] range, as float32 (what the graphs store).
func ColorValue(c int) [3]float32 {
	var v [3]float32
	for i, x := range Palette[c] {
		v[i] = float32(x/127.5 - 1)
	}
	return v
}

// Component is one mixture component: indices into Shapes and Colors (FG ≠ BG).
type Component struct{ Shape, FG, BG int }

// Components lists the 6·8·7 = 336 components in the order the graphs index them: shape-major, then
// foreground colour, then background colour (skipping the foreground).
func Components() []Component {
	var out []Component
	for s := range Shapes {
		for f := range Colors {
			for b := range Colors {
				if b != f {
					out = append(out, Component{s, f, b})
				}
			}
		}
	}
	return out
}

// LogPrior returns log w_k (unnormalised) for presence vectors of the prompt's shapes, foreground
// and background colours (each entry min(count, 1)).
func LogPrior(c Component, shape, fg, bg []float64) float64 {
	return Beta * (math.Min(shape[c.Shape], 1) + math.Min(fg[c.FG], 1) + math.Min(bg[c.BG], 1))
}
