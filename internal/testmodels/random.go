package testmodels

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/rflowrt/rflow/internal/half"
)

// RandomWeights is an arch.Weights that makes any parameter on demand: deterministic normal values
// drawn from a generator seeded by (Seed, name), scaled by the parameter's role so activations stay
// near unit size through deep stacks: norm scales 1 + N(0, 0.1²), biases and other vectors N(0, 0.02²)
// (norm biases N(0, 0.1²)), embedding tables N(0, 0.2²), weights of rank ≥ 2 N(0, 1/fan_in).
// With BF16 every value is rounded to the nearest bfloat16, so a bf16 checkpoint of the same weights
// holds them exactly.
type RandomWeights struct {
	Seed uint64
	BF16 bool
}

// Shape implements arch.Weights: any shape (nil, true), so the builder's expectation is used.
func (r RandomWeights) Shape(string) ([]int64, bool) { return nil, true }

// Float32 implements arch.Weights.
func (r RandomWeights) Float32(name string, shape []int64) ([]float32, error) {
	h := fnv.New64a()
	h.Write([]byte(name))
	rng := rand.New(rand.NewPCG(r.Seed, h.Sum64()))
	n := 1
	for _, d := range shape {
		n *= int(d)
	}
	mean, std := randomInit(name, shape)
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(mean + rng.NormFloat64()*std)
	}
	if r.BF16 {
		for i, x := range v {
			v[i] = half.BFloat16ToFloat32(half.BFloat16FromFloat32(x))
		}
	}
	return v, nil
}

// randomInit is the mean and standard deviation for a parameter, from its name and shape.
func randomInit(name string, shape []int64) (mean, std float64) {
	isNorm := strings.Contains(name, "norm") || strings.Contains(name, ".ln") || strings.Contains(name, "layer_norm")
	switch {
	case len(shape) >= 2 && (strings.Contains(name, "embed") || strings.Contains(name, "shared") ||
		strings.Contains(name, "relative_attention_bias")) && !strings.Contains(name, "proj") &&
		!strings.Contains(name, "linear") && !strings.Contains(name, "embedder"):
		return 0, 0.02 * 10 // lookup tables: rows are used as they are
	case len(shape) >= 2:
		fanIn := 1
		for _, d := range shape[1:] {
			fanIn *= int(d)
		}
		return 0, 1 / math.Sqrt(float64(fanIn))
	case isNorm && strings.HasSuffix(name, ".bias"):
		return 0, 0.1
	case isNorm || strings.HasSuffix(name, ".scale"):
		return 1, 0.1
	}
	return 0, 0.02
}
