package assets

import (
	"math"

	"github.com/rflowrt/rflow/assets/internal/demo"
)

// PromptAttributes applies the demo text encoder's rule to a prompt and returns the shapes, foreground
// colours and background colours it names, one entry per mention, in prompt order.
//
// The rule works on the demo CLIP tokens (lower-cased; 75 content tokens at most): a shape word
// (circle/circles/disc/disk/dot, square/box, triangle, star, ring/donut/doughnut, stripes/stripe/
// striped/lines, and plurals) names a shape; a colour word (red, green, blue, yellow, orange,
// purple/violet, white, black) is a background colour when the word "on" appears anywhere before it
// or the next token is "background", and a foreground colour otherwise. Every other word is ignored.
// The mirror is exact for prompts whose letters are ASCII.
func PromptAttributes(prompt string) (shapes, fgs, bgs []string) {
	s, f, b := demo.Attributes(prompt)
	return attrNames(s, demo.Shapes), attrNames(f, demo.Colors), attrNames(b, demo.Colors)
}

func attrNames(idx []int, table []string) []string {
	var out []string
	for _, i := range idx {
		out = append(out, table[i])
	}
	return out
}

// ComponentWeights returns the normalised mixture weights the transformer uses for a prompt, in
// Components() order: w_k ∝ exp(β·(n_shape + n_fg + n_bg)), where each n is 1 when the prompt names
// component k's shape (foreground colour, background colour) and 0 otherwise. Attributes the prompt
// leaves open get equal weight, so the seed chooses them.
func ComponentWeights(prompt string) []float64 {
	s, f, b := demo.Attributes(prompt)
	shape, fg, bg := make([]float64, len(demo.Shapes)), make([]float64, len(demo.Colors)), make([]float64, len(demo.Colors))
	for _, i := range s {
		shape[i]++
	}
	for _, i := range f {
		fg[i]++
	}
	for _, i := range b {
		bg[i]++
	}
	cs := demo.Components()
	logw := make([]float64, len(cs))
	top := math.Inf(-1)
	for k, c := range cs {
		logw[k] = demo.LogPrior(c, shape, fg, bg)
		top = max(top, logw[k])
	}
	w := make([]float64, len(cs))
	sum := 0.0
	for k, l := range logw {
		w[k] = math.Exp(l - top)
		sum += w[k]
	}
	for k := range w {
		w[k] /= sum
	}
	return w
}
