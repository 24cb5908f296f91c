package compare

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rflowrt/rflow/scheduler"
)

func TestErrorStatsHandComputed(t *testing.T) {
	// differences 1, −2, 0, 1: mean square 6/4, max 2
	rmse, maxAbs, err := ErrorStats([]float32{1, 0, 3, 5}, []float64{0, 2, 3, 4})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(rmse-math.Sqrt(1.5)) > 1e-15 || maxAbs != 2 {
		t.Errorf("rmse %v max %v, want %v and 2", rmse, maxAbs, math.Sqrt(1.5))
	}
	if _, _, err := ErrorStats([]float32{1}, []float32{1, 2}); err == nil {
		t.Error("length mismatch accepted")
	}
	if _, _, err := ErrorStats([]float32{}, []float32{}); err == nil {
		t.Error("empty input accepted")
	}
}

func TestFitLogLog(t *testing.T) {
	nfe := []float64{8, 16, 32, 64}
	errs := make([]float64, len(nfe))
	for i, n := range nfe {
		errs[i] = 3 / (n * n) // order 2 exactly
	}
	f, err := FitLogLog(nfe, errs)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(f.Order-2) > 1e-12 || math.Abs(f.Intercept-math.Log(3)) > 1e-12 || f.Points != 4 {
		t.Errorf("fit %+v, want order 2, intercept log 3", f)
	}
	if _, err := FitLogLog([]float64{8, 8}, []float64{1, 2}); err == nil {
		t.Error("a single NFE value gave a fit")
	}
	if _, err := FitLogLog([]float64{8, 16}, []float64{0, 1}); err == nil {
		t.Error("a zero error was used (log 0)")
	}
}

// pointTarget is (almost) a point mass: on the Linear path x_t = (1−t)·μ + t·ε and v = ε − μ is
// constant along every trajectory, so the flow is exactly straight.
func pointTarget(t *testing.T) *scheduler.GaussianMixture {
	g, err := scheduler.NewGaussianMixture([][]float64{{1, -2}}, []float64{1e-9}, []float64{1})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// runStraightness runs sampler name on f from x with n uniform steps 1 → 0 and returns S.
func runStraightness(t *testing.T, name string, f *scheduler.AnalyticFlow, x0 []float32, n int) float64 {
	t.Helper()
	s, err := scheduler.LookupSampler(name)
	if err != nil {
		t.Fatal(err)
	}
	meter := NewStraightness(f.Path)
	x := append([]float32(nil), x0...)
	o := scheduler.Options{Path: f.Path, Callback: meter.Observe}
	if err := s.Func(context.Background(), f, x, uniformSigmas(1, 0, n), o); err != nil {
		t.Fatal(err)
	}
	if meter.Steps() != n {
		t.Fatalf("%s: observed %d steps, want %d", name, meter.Steps(), n)
	}
	v, err := meter.Value(x0)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestStraightness(t *testing.T) {
	x0 := normalDraws(3, 200*2)
	point := &scheduler.AnalyticFlow{Target: pointTarget(t)}
	for _, name := range []string{"euler", "heun"} {
		if s := runStraightness(t, name, point, x0, 16); s > 1e-6 {
			t.Errorf("%s on a point target (linear path): S = %.3g, want ≈ 0", name, s)
		}
	}
	two, err := scheduler.NewGaussianMixture([][]float64{{2, 0}, {-2, 0}}, []float64{0.3, 0.3}, []float64{1, 1})
	if err != nil {
		t.Fatal(err)
	}
	s := runStraightness(t, "heun", &scheduler.AnalyticFlow{Target: two}, x0, 32)
	t.Logf("two-component mixture, linear path: S = %.4f", s)
	if s < 0.05 || s > 2 {
		t.Errorf("two-component mixture: S = %.4f, want clearly positive (0.05 … 2)", s)
	}
	// The point target under the cosine path is curved: x_t = cos(πt/2)·μ + sin(πt/2)·ε.
	if s := runStraightness(t, "heun", &scheduler.AnalyticFlow{Target: pointTarget(t), Path: scheduler.Cosine}, x0, 32); s < 0.05 {
		t.Errorf("point target, cosine path: S = %.4f, want clearly positive", s)
	}
}

// TestStraightnessHandComputed feeds a two-step, one-value trajectory: x 3 → 1 (σ 1 → 0.5, v = 4)
// → 0 (σ 0.5 → 0, v = 2). ū = 3, S = (0.5·1 + 0.5·1)/(1·9) = 1/9.
func TestStraightnessHandComputed(t *testing.T) {
	m := NewStraightness(nil)
	// Linear path: x0 = x − σ·v: step 0 at x = 3, σ = 1, v = 4 → x0 = −1; step 1 at x = 1, σ = 0.5,
	// v = 2 → x0 = 0.
	if err := m.Observe(scheduler.Step{Sigma: 1, SigmaNext: 0.5, X: []float32{1}, Denoised: []float32{-1}}); err != nil {
		t.Fatal(err)
	}
	if err := m.Observe(scheduler.Step{Sigma: 0.5, SigmaNext: 0, X: []float32{0}, Denoised: []float32{0}}); err != nil {
		t.Fatal(err)
	}
	s, err := m.Value([]float32{3})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(s-1.0/9) > 1e-12 {
		t.Errorf("S = %v, want 1/9", s)
	}
	if err := m.Observe(scheduler.Step{Sigma: 0.5, SigmaNext: 0.6, X: []float32{0}, Denoised: []float32{0}}); err == nil {
		t.Error("an increasing step was accepted")
	}
	if _, err := NewStraightness(nil).Value([]float32{1}); err == nil {
		t.Error("no steps gave a value")
	}
}

func TestSlicedWasserstein(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const n, D = 1000, 2
	a := make([]float64, n*D)
	for i := range a {
		a[i] = r.NormFloat64()
	}
	same, err := SlicedWasserstein(a, append([]float64(nil), a...), D, 64, 7)
	if err != nil {
		t.Fatal(err)
	}
	if same > 1e-12 {
		t.Errorf("identical samples: SW = %v, want 0", same)
	}
	// Shift every point by δ = (0.6, 0.8) (‖δ‖ = 1): SW → ‖δ‖/√D.
	b := append([]float64(nil), a...)
	for i := 0; i < len(b); i += D {
		b[i] += 0.6
		b[i+1] += 0.8
	}
	sw, err := SlicedWasserstein(a, b, D, 512, 7)
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 / math.Sqrt(D); math.Abs(sw-want) > 0.03 {
		t.Errorf("shifted by |δ| = 1 in 2-D: SW = %.4f, want ≈ %.4f", sw, want)
	}
	// In 1-D the value is the exact W₂: a shift by 0.5, and unequal sizes {0, 1} vs {0, 0.5, 1}.
	one, err := SlicedWasserstein([]float64{0, 1, 2}, []float64{0.5, 1.5, 2.5}, 1, 3, 1)
	if err != nil || math.Abs(one-0.5) > 1e-12 {
		t.Errorf("1-D shift 0.5: SW = %v (%v), want 0.5", one, err)
	}
	// quantiles: u∈[0,1/3): 0 vs 0; [1/3,1/2): 0 vs 0.5; [1/2,2/3): 1 vs 0.5; [2/3,1): 1 vs 1 → W₂² = 1/6·0.25·2
	uneq, err := SlicedWasserstein([]float64{0, 1}, []float64{0, 0.5, 1}, 1, 1, 1)
	if want := math.Sqrt(2 * 0.25 / 6); err != nil || math.Abs(uneq-want) > 1e-12 {
		t.Errorf("unequal sizes: SW = %v (%v), want %v", uneq, err, want)
	}
	if _, err := SlicedWasserstein(a, b[:3], D, 8, 1); err == nil {
		t.Error("a ragged cloud was accepted")
	}
}

// uniformSigmas is n uniform steps from a to b (n+1 values).
func uniformSigmas(a, b float64, n int) []float64 {
	s := make([]float64, n+1)
	for i := range s {
		s[i] = a + (b-a)*float64(i)/float64(n)
	}
	s[n] = b
	return s
}

// normalDraws is n standard normal float32 values from a fixed PCG stream.
func normalDraws(seed uint64, n int) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}
