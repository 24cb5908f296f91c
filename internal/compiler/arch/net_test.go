package arch

import (
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/onnx"
)

// The shared blocks (Linear, LayerNorm, tanh GELU, GroupNorm, Conv2d, SiLU) against torch's modules.
func TestBlocksMatchTorch(t *testing.T) {
	g := loadGolden(t, "blocks")
	n := NewNet("blocks", g.weights)
	x := n.FloatInput("x", onnx.Float, onnx.Fixed(2), onnx.Fixed(3), onnx.Fixed(8))
	img := n.FloatInput("img", onnx.Float, onnx.Fixed(1), onnx.Fixed(4), onnx.Fixed(5), onnx.Fixed(6))
	y := n.GELU(n.LayerNorm(n.Linear(x, "lin", 8, 12, true), "ln", 12, 1e-6), true)
	z := n.SiLU(n.Conv2D(n.GroupNorm(img, "gn", 2, 4, 1e-6), "conv", 4, 4, 3, 1, 1))
	n.FloatOutput(y, "y", onnx.Float)
	n.FloatOutput(z, "z", onnx.Float)
	m, err := n.Model()
	if err != nil {
		t.Fatal(err)
	}
	got := runModel(t, m, g, "y", "z")
	assertClose(t, "y", got["y"], g.outputs["y"], 1e-5, 1e-5)
	assertClose(t, "z", got["z"], g.outputs["z"], 1e-5, 1e-5)
}

// A missing tensor or one whose shape disagrees with the configuration names the tensor and shapes.
func TestParamErrors(t *testing.T) {
	w := Tensors{"lin.weight": {Shape: []int64{12, 9}, Data: make([]float32, 108)}}
	n := NewNet("bad", w)
	x := n.FloatInput("x", onnx.Float, onnx.Fixed(8))
	n.FloatOutput(n.Linear(x, "lin", 8, 12, true), "y", onnx.Float)
	_, err := n.Model()
	if err == nil || !strings.Contains(err.Error(), `tensor "lin.weight": expected shape [12 8], found [12 9]`) {
		t.Fatalf("err = %v", err)
	}
	n = NewNet("missing", Tensors{})
	x = n.FloatInput("x", onnx.Float, onnx.Fixed(8))
	n.FloatOutput(n.Linear(x, "lin", 8, 12, false), "y", onnx.Float)
	if _, err := n.Model(); err == nil || !strings.Contains(err.Error(), `tensor "lin.weight" is missing`) {
		t.Fatalf("err = %v", err)
	}
}

func TestTranspose2D(t *testing.T) {
	v := make([]float32, 70*130)
	for i := range v {
		v[i] = float32(i)
	}
	for _, band := range [][2]int{{0, 130}, {0, 1}, {64, 129}, {129, 130}} {
		c0, c1 := band[0], band[1]
		tr := transposeBand(make([]float32, (c1-c0)*70), v, 70, 130, c0, c1)
		for r := range 70 {
			for c := c0; c < c1; c++ {
				if tr[(c-c0)*70+r] != v[r*130+c] {
					t.Fatalf("band %v: (%d,%d) wrong", band, r, c)
				}
			}
		}
	}
}
