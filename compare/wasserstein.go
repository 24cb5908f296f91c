package compare

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// SlicedWasserstein is the sliced 2-Wasserstein distance between two point clouds in D dimensions
// (a: n·D values, b: m·D values; n and m may differ):
//
//	SW₂(a, b) = sqrt( mean over θ of W₂²(θ·a, θ·b) )
//
// over a fixed set of unit directions θ drawn uniformly on the sphere from seed (the same seed gives
// the same directions, so numbers from different runs are comparable). Each 1-D W₂² is exact for the
// two empirical distributions: ∫₀¹ (F⁻¹(u) − G⁻¹(u))² du over the merged quantile steps. For D = 1
// every direction is ±1 and the value is the exact W₂. Shifting one cloud by δ gives ‖δ‖/√D in the
// limit of many directions (the mean of (θ·δ)² over the sphere is ‖δ‖²/D).
func SlicedWasserstein(a, b []float64, dim, projections int, seed uint64) (float64, error) {
	switch {
	case dim < 1:
		return 0, fmt.Errorf("compare: sliced wasserstein: dimension %d, want ≥ 1", dim)
	case projections < 1:
		return 0, fmt.Errorf("compare: sliced wasserstein: %d projections, want ≥ 1", projections)
	case len(a) == 0 || len(b) == 0 || len(a)%dim != 0 || len(b)%dim != 0:
		return 0, fmt.Errorf("compare: sliced wasserstein: %d and %d values are not non-empty multiples of D = %d", len(a), len(b), dim)
	}
	r := rand.New(rand.NewPCG(seed, 0x51ced))
	theta := make([]float64, dim)
	pa, pb := make([]float64, len(a)/dim), make([]float64, len(b)/dim)
	total := 0.0
	for range projections {
		randomDirection(r, theta)
		project(pa, a, theta)
		project(pb, b, theta)
		total += wasserstein1D(pa, pb)
	}
	v := math.Sqrt(total / float64(projections))
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, errors.New("compare: sliced wasserstein: non-finite input")
	}
	return v, nil
}

// randomDirection fills theta with a uniform unit vector.
func randomDirection(r *rand.Rand, theta []float64) {
	for {
		n := 0.0
		for d := range theta {
			theta[d] = r.NormFloat64()
			n += theta[d] * theta[d]
		}
		if n > 1e-12 {
			n = math.Sqrt(n)
			for d := range theta {
				theta[d] /= n
			}
			return
		}
	}
}

// project writes θ·p for each point of pts into dst.
func project(dst, pts, theta []float64) {
	D := len(theta)
	for i := range dst {
		s := 0.0
		for d, t := range theta {
			s += t * pts[i*D+d]
		}
		dst[i] = s
	}
}

// wasserstein1D is W₂² between the empirical distributions of a and b (sorted in place): the
// quantile functions are step functions with steps at i/n and j/m, integrated piece by piece.
func wasserstein1D(a, b []float64) float64 {
	slices.Sort(a)
	slices.Sort(b)
	n, m := float64(len(a)), float64(len(b))
	i, j, u, sum := 0, 0, 0.0, 0.0
	for i < len(a) && j < len(b) {
		next := min(float64(i+1)/n, float64(j+1)/m)
		d := a[i] - b[j]
		sum += (next - u) * d * d
		u = next
		if float64(i+1)/n <= next {
			i++
		}
		if float64(j+1)/m <= next {
			j++
		}
	}
	return sum
}
