package scheduler

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// ---- helpers shared by the sampler tests -------------------------------------------------------------

// uniformSigmas returns n+1 evenly spaced times from a to b (b exactly last).
func uniformSigmas(a, b float64, n int) []float64 {
	s := make([]float64, n+1)
	for i := range s {
		s[i] = a + (b-a)*float64(i)/float64(n)
	}
	s[n] = b
	return s
}

// seededNoise is a deterministic NoiseSource (PCG, standard normal) that allocates nothing per Fill.
func seededNoise(seed uint64) NoiseSource {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	return NoiseFunc(func(dst []float32, _, _ float64) error {
		for j := range dst {
			dst[j] = float32(r.NormFloat64())
		}
		return nil
	})
}

// forbiddenNoise fails the test if a sampler draws from it.
func forbiddenNoise(t *testing.T) NoiseSource {
	return NoiseFunc(func([]float32, float64, float64) error {
		t.Helper()
		t.Errorf("deterministic sampler drew noise")
		return errors.New("noise forbidden")
	})
}

// halfModel is v = 0.5·x − 0.25: cheap, allocation-free, in place.
type halfModel struct{}

func (halfModel) Velocity(_ context.Context, dst, x []float32, _ Eval) error {
	for j := range dst {
		dst[j] = 0.5*x[j] - 0.25
	}
	return nil
}

// countingModel counts model calls and can cancel or fail at a given call.
type countingModel struct {
	inner Model
	calls int
}

func (c *countingModel) Velocity(ctx context.Context, dst, x []float32, e Eval) error {
	c.calls++
	return c.inner.Velocity(ctx, dst, x, e)
}

func testMixture(t testing.TB) *GaussianMixture {
	g, err := NewGaussianMixture([][]float64{{1.5, 0.5}, {-1, -1}, {0.5, -1.5}}, []float64{0.5, 0.6, 0.4}, []float64{0.5, 0.3, 0.2})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// normalDraws returns n float32 standard normal values.
func normalDraws(seed uint64, n int) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	x := make([]float32, n)
	for j := range x {
		x[j] = float32(r.NormFloat64())
	}
	return x
}

// expectedCalls is the model-call count for n steps ending at 0, from the table's CallsPerStep.
func expectedCalls(t *testing.T, s SamplerInfo, n int) int {
	switch s.CallsPerStep {
	case "1":
		return n
	case "2":
		return 2 * n
	case "2 (last step 1)":
		return 2*n - 1
	case "1 (first step 2)":
		return n + 1
	case "4":
		return 4 * n
	case "adaptive":
		return -1
	}
	t.Fatalf("%s: unknown CallsPerStep %q", s.Name, s.CallsPerStep)
	return 0
}

func optionsFor(s SamplerInfo, t *testing.T) Options {
	o := DefaultOptions()
	if s.Stochastic {
		o.Noise = seededNoise(1)
	} else {
		o.Noise = forbiddenNoise(t)
	}
	return o
}

// ---- the conformance suite -----------------------------------------------------------------------

// TestSamplerConformance runs every registry entry through the same checks (style lesson 14).
func TestSamplerConformance(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Samplers() {
		if seen[s.Name] {
			t.Fatalf("duplicate sampler name %q", s.Name)
		}
		seen[s.Name] = true
		t.Run(s.Name, func(t *testing.T) {
			t.Run("registry", func(t *testing.T) { checkRegistryEntry(t, s) })
			t.Run("bad input", func(t *testing.T) { checkBadInput(t, s) })
			t.Run("noise contract", func(t *testing.T) { checkNoiseContract(t, s) })
			t.Run("calls and callback", func(t *testing.T) { checkCallsAndCallback(t, s) })
			t.Run("cancel", func(t *testing.T) { checkCancel(t, s) })
			t.Run("callback and model errors", func(t *testing.T) { checkErrorsStop(t, s) })
			t.Run("no per-step allocation", func(t *testing.T) { checkNoStepAllocs(t, s) })
		})
	}
}

func checkRegistryEntry(t *testing.T, s SamplerInfo) {
	if s.Func == nil || s.Doc == "" || s.Order < 0 || (s.Order == 0 && !s.Stochastic) {
		t.Fatalf("incomplete entry %+v", s)
	}
	cites := []string{"diffusers", "ComfyUI", "k-diffusion", "Hairer", "Runge", "midpoint", "§"}
	if !slices.ContainsFunc(cites, func(c string) bool { return strings.Contains(s.Doc, c) }) {
		t.Errorf("Doc %q cites no source", s.Doc)
	}
	got, err := LookupSampler(s.Name)
	if err != nil || got.Name != s.Name {
		t.Fatalf("LookupSampler(%q) = %v, %v", s.Name, got.Name, err)
	}
	if !slices.Contains(SamplerNames(), s.Name) {
		t.Errorf("SamplerNames lacks %q", s.Name)
	}
	_ = expectedCalls(t, s, 1)
}

func TestLookupSamplerUnknown(t *testing.T) {
	_, err := LookupSampler("euler_b")
	if !errors.Is(err, ErrUnknownSampler) {
		t.Fatalf("err = %v, want ErrUnknownSampler", err)
	}
	for _, name := range []string{"euler", "dpmpp_2m", "dopri5", "euler_b"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not mention %q", err, name)
		}
	}
}

func checkBadInput(t *testing.T, s SamplerInfo) {
	never := ModelFunc(func(context.Context, []float32, []float32, Eval) error {
		t.Errorf("model called on bad input")
		return nil
	})
	good := []float64{1, 0.5, 0}
	nan := math.NaN()
	cases := []struct {
		name   string
		m      Model
		x      []float32
		sigmas []float64
		edit   func(*Options)
	}{
		{"empty sigmas", never, []float32{1}, nil, nil},
		{"one sigma", never, []float32{1}, []float64{1}, nil},
		{"sigma above 1", never, []float32{1}, []float64{1.5, 0}, nil},
		{"negative sigma", never, []float32{1}, []float64{1, -0.1}, nil},
		{"NaN sigma", never, []float32{1}, []float64{1, nan, 0}, nil},
		{"increasing sigmas", never, []float32{1}, []float64{0.5, 0.7, 0}, nil},
		{"repeated sigma", never, []float32{1}, []float64{1, 0.5, 0.5, 0}, nil},
		{"empty x", never, nil, good, nil},
		{"nil model", nil, []float32{1}, good, nil},
		{"negative eta", never, []float32{1}, good, func(o *Options) { o.Eta = -1 }},
		{"NaN s_noise", never, []float32{1}, good, func(o *Options) { o.SNoise = nan }},
		{"negative rtol", never, []float32{1}, good, func(o *Options) { o.RTol = -1 }},
	}
	for _, c := range cases {
		o := optionsFor(s, t)
		if c.edit != nil {
			c.edit(&o)
		}
		err := s.Func(context.Background(), c.m, c.x, c.sigmas, o)
		if !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), s.Name) {
			t.Errorf("%s: err = %v, want ErrInvalidInput naming %s", c.name, err, s.Name)
		}
	}
}

func checkNoiseContract(t *testing.T, s SamplerInfo) {
	f := &AnalyticFlow{Target: testMixture(t)}
	sig := uniformSigmas(1, 0, 6)
	run := func(seed uint64) []float32 {
		x := normalDraws(9, 64)
		o := optionsFor(s, t)
		if s.Stochastic {
			o.Noise = seededNoise(seed)
		}
		if err := s.Func(context.Background(), f, x, sig, o); err != nil {
			t.Fatal(err)
		}
		return x
	}
	a, b := run(1), run(1)
	if !slices.Equal(a, b) {
		t.Errorf("same seed gave different bytes")
	}
	if !s.Stochastic {
		return
	}
	if slices.Equal(a, run(2)) {
		t.Errorf("different noise seeds gave identical results")
	}
	o := DefaultOptions()
	err := s.Func(context.Background(), f, normalDraws(9, 64), sig, o)
	if !errors.Is(err, ErrNoiseRequired) || !strings.Contains(err.Error(), s.Name) {
		t.Errorf("nil Noise: err = %v, want ErrNoiseRequired naming %s", err, s.Name)
	}
}

// checkCallsAndCallback counts model calls against CallsPerStep and checks every Step: its fields, X
// being x after the step, and Denoised being the x0 prediction at Sigma for the x the step started
// from (on the analytic flow that is the exact posterior mean; the tolerance admits dpmpp_2m_sde's
// first-σ offset 1 → 0.9999, and FireFlow's reused start velocity).
func checkCallsAndCallback(t *testing.T, s SamplerInfo) {
	const n = 5
	f := &AnalyticFlow{Target: testMixture(t)}
	cm := &countingModel{inner: f}
	sig := uniformSigmas(1, 0, n)
	x := normalDraws(3, 32)
	before := make([]float64, len(x))
	for j, v := range x {
		before[j] = float64(v)
	}
	want := make([]float64, len(x))
	var steps []Step
	o := optionsFor(s, t)
	o.Callback = func(st Step) error {
		if &st.X[0] != &x[0] || len(st.Denoised) != len(x) {
			t.Fatalf("step %d: X is not x or Denoised has %d values", st.Index, len(st.Denoised))
		}
		if st.NFE != cm.calls {
			t.Errorf("step %d: NFE %d, model calls %d", st.Index, st.NFE, cm.calls)
		}
		if err := f.PosteriorMean(want, before, st.Sigma); err != nil {
			t.Fatal(err)
		}
		tol := 1e-3
		if s.Name == "fireflow" && st.Index > 0 {
			tol = 0.5 // its start velocity is the previous midpoint's, an O(h) estimate of v at σ
		}
		if d := maxAbsDiff(st.Denoised, want); d > tol {
			t.Errorf("step %d: Denoised is %.3g from the x0 prediction at σ=%v", st.Index, d, st.Sigma)
		}
		for j, v := range x {
			before[j] = float64(v)
		}
		steps = append(steps, st)
		return nil
	}
	if err := s.Func(context.Background(), cm, x, sig, o); err != nil {
		t.Fatal(err)
	}
	wantCalls := expectedCalls(t, s, n)
	if wantCalls < 0 { // adaptive: one report per accepted step, ending at the last σ
		if len(steps) == 0 || steps[len(steps)-1].SigmaNext != 0 {
			t.Fatalf("adaptive steps %+v", steps)
		}
		return
	}
	if cm.calls != wantCalls || len(steps) != n {
		t.Fatalf("%d model calls and %d callbacks, want %d and %d", cm.calls, len(steps), wantCalls, n)
	}
	for i, st := range steps {
		if st.Index != i || st.Total != n || st.Sigma != sig[i] || st.SigmaNext != sig[i+1] {
			t.Errorf("step %d reported %+v", i, st)
		}
	}
}

func checkCancel(t *testing.T, s SamplerInfo) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cm := &countingModel{inner: halfModel{}}
	o := optionsFor(s, t)
	o.RTol, o.ATol = 1e-9, 1e-9 // enough dopri5 steps to cancel at the third
	nfeAt3 := -1
	o.Callback = func(st Step) error {
		if st.Index == 2 {
			nfeAt3 = st.NFE
			cancel()
		}
		return nil
	}
	sig := uniformSigmas(0.9, 0, 8)
	err := s.Func(ctx, cm, normalDraws(4, 16), sig, o)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if cm.calls != nfeAt3 {
		t.Errorf("%d model calls after cancelling at step 3, want the %d of 3 steps", cm.calls, nfeAt3)
	}
	want := expectedCalls(t, s, 3)
	if s.CallsPerStep == "2 (last step 1)" {
		want = 6 // none of the 3 steps is the last
	}
	if want >= 0 && want != nfeAt3 {
		t.Errorf("3 steps took %d calls, want %d", nfeAt3, want)
	}
}

func checkErrorsStop(t *testing.T, s SamplerInfo) {
	stop := errors.New("stop here")
	cm := &countingModel{inner: halfModel{}}
	o := optionsFor(s, t)
	nfe := 0
	o.Callback = func(st Step) error {
		if st.Index == 1 {
			nfe = st.NFE
			return stop
		}
		return nil
	}
	if err := s.Func(context.Background(), cm, normalDraws(4, 16), uniformSigmas(0.9, 0, 6), o); !errors.Is(err, stop) {
		t.Fatalf("callback error: got %v", err)
	}
	if cm.calls != nfe {
		t.Errorf("model called %d times after the callback stopped at NFE %d", cm.calls, nfe)
	}
	boom := errors.New("model exploded")
	bad := ModelFunc(func(context.Context, []float32, []float32, Eval) error { return boom })
	err := s.Func(context.Background(), bad, normalDraws(4, 16), uniformSigmas(0.9, 0, 6), optionsFor(s, t))
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), s.Name) {
		t.Errorf("model error: got %v", err)
	}
}

// checkNoStepAllocs compares allocations of a short and a long run: per-step work allocates nothing.
// Fixed-step samplers run 4 and 40 steps; dopri5 runs at a loose and a tight tolerance.
func checkNoStepAllocs(t *testing.T, s SamplerInfo) {
	x := normalDraws(5, 256)
	allocs := func(n int, rtol float64) float64 {
		sig := uniformSigmas(0.95, 0, n)
		return testing.AllocsPerRun(5, func() {
			o := DefaultOptions()
			o.Noise = seededNoise(3)
			o.Callback = func(Step) error { return nil }
			o.RTol, o.ATol = rtol, rtol
			if err := s.Func(context.Background(), halfModel{}, x, sig, o); err != nil {
				t.Fatal(err)
			}
		})
	}
	short, long := allocs(4, 1e-3), allocs(40, 1e-8)
	if short != long {
		t.Errorf("allocations grow with steps: %v for the short run, %v for the long one", short, long)
	}
}
