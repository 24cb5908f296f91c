package assets

import (
	"math"
	"slices"
	"testing"
)

func TestComponents(t *testing.T) {
	cs := Components()
	if len(cs) != 336 || len(Shapes()) != 6 || len(Colors()) != 8 {
		t.Fatalf("%d components of %d shapes and %d colours", len(cs), len(Shapes()), len(Colors()))
	}
	seen := map[Component]bool{}
	for _, c := range cs {
		if seen[c] || c.Color == c.Background || !slices.Contains(Shapes(), c.Shape) {
			t.Errorf("bad or repeated component %v", c)
		}
		seen[c] = true
	}
	c := Component{"ring", "white", "black"}
	z := ComponentLatent(c, 8, 12)
	n := 8 * 12
	if len(z) != 16*n || z[n] != colorOf("white")[0] || z[6*n+5] != colorOf("black")[2] || slices.ContainsFunc(z[7*n:], nonZero) {
		t.Errorf("ComponentLatent layout: %v …", z[n:n+3])
	}
	if got := ClassifyLatent(z, 8, 12); got != c {
		t.Errorf("ClassifyLatent(μ of %v) = %v", c, got)
	}
	if c.String() != "white ring on black" {
		t.Errorf("String() = %q", c.String())
	}
	defer func() {
		if recover() == nil {
			t.Error("ComponentLatent accepted a colour on itself")
		}
	}()
	ComponentLatent(Component{"star", "red", "red"}, 4, 4)
}

// TestPromptAttributes pins the prompt rule with hand-written expectations.
func TestPromptAttributes(t *testing.T) {
	for _, c := range []struct {
		prompt          string
		shapes, fg, bgs []string
	}{
		{"a green star on a black background", []string{"star"}, []string{"green"}, []string{"black"}},
		{"A RED CIRCLE ON BLUE", []string{"circle"}, []string{"red"}, []string{"blue"}},
		{"a blue background with a yellow donut", []string{"ring"}, []string{"yellow"}, []string{"blue"}},
		{"violet boxes", []string{"square"}, []string{"purple"}, nil},
		{"striped lines on white", []string{"stripes", "stripes"}, nil, []string{"white"}},
		{"on blue, a red star", []string{"star"}, nil, []string{"blue", "red"}},
		{"grey cat", nil, nil, nil},
		{"red, background", nil, []string{"red"}, nil},
	} {
		s, f, b := PromptAttributes(c.prompt)
		if !slices.Equal(s, c.shapes) || !slices.Equal(f, c.fg) || !slices.Equal(b, c.bgs) {
			t.Errorf("%q: shapes %v fg %v bg %v, want %v %v %v", c.prompt, s, f, b, c.shapes, c.fg, c.bgs)
		}
	}
}

func TestComponentWeights(t *testing.T) {
	cs := Components()
	w := ComponentWeights("a green star on a black background")
	top := slices.Index(cs, Component{"star", "green", "black"})
	sum := 0.0
	for _, v := range w {
		sum += v
	}
	if math.Abs(sum-1) > 1e-12 || w[top] < 1-1e-4 {
		t.Errorf("sum %v, weight of the named component %v", sum, w[top])
	}
	w = ComponentWeights("a star")
	stars := 0
	for k, v := range w {
		if cs[k].Shape == "star" && math.Abs(v-1.0/56) > 1e-6 {
			t.Errorf("%v: weight %v, want 1/56", cs[k], v)
		}
		if v > 1e-8 {
			stars++
		}
	}
	if stars != 56 {
		t.Errorf("%d components with weight, want the 56 stars", stars)
	}
	for _, v := range ComponentWeights("") {
		if math.Abs(v-1.0/336) > 1e-12 {
			t.Fatalf("empty prompt: weight %v, want 1/336", v)
		}
	}
}
