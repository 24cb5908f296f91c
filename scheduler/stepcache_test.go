package scheduler

import (
	"context"
	"testing"
)

func TestParseStepCache(t *testing.T) {
	for in, want := range map[string]string{
		"":            "off",
		"off":         "off",
		"easycache":   "easycache:threshold=0.1,warmup=2,max-skip=3",
		"taylor:0.05": "taylor:threshold=0.05,warmup=2,max-skip=3",
		"easycache:threshold=0.2,warmup=4,max-skip=1": "easycache:threshold=0.2,warmup=4,max-skip=1",
	} {
		c, err := ParseStepCache(in)
		if err != nil || c.String() != want {
			t.Errorf("ParseStepCache(%q) = %v (%v), want %s", in, c, err, want)
			continue
		}
		if back, err := ParseStepCache(c.String()); err != nil || back != c {
			t.Errorf("%q does not read back: %v %v", c.String(), back, err)
		}
	}
	for _, bad := range []string{"teacache", "easycache:warmup=1", "easycache:x=1", "taylor:-1", "off:1"} {
		if _, err := ParseStepCache(bad); err == nil {
			t.Errorf("ParseStepCache(%q) accepted", bad)
		}
	}
}

// With a threshold no prediction reaches, every call after the warmup but the last is skipped (at most
// MaxSkip in a row). Reuse is exact for a constant v; the first-order forecast is exact for v linear in σ.
func TestStepCacheClosedForm(t *testing.T) {
	constant := ModelFunc(func(_ context.Context, dst, _ []float32, e Eval) error {
		for i := range dst {
			dst[i] = 0.5
		}
		return nil
	})
	linear := ModelFunc(func(_ context.Context, dst, _ []float32, e Eval) error {
		for i := range dst {
			dst[i] = float32(2*e.T + 1)
		}
		return nil
	})
	sig := uniformSigmas(1, 0, 10)
	for _, c := range []struct {
		kind StepCacheKind
		m    Model
	}{{StepCacheEasyCache, constant}, {StepCacheTaylor, linear}} {
		ref := []float32{0.25, -1}
		if err := Euler(context.Background(), c.m, ref, sig, Options{}); err != nil {
			t.Fatal(err)
		}
		cfg := DefaultStepCache(c.kind)
		cfg.Threshold = 1e300
		cm := NewCachedModel(c.m, cfg)
		x := []float32{0.25, -1}
		if err := Euler(context.Background(), cm, x, sig, Options{}); err != nil {
			t.Fatal(err)
		}
		// steps 0, 1 (warmup), then 3 skipped per computed call, and step 9 (last) computed: 0 1 [2 3 4] 5 [6 7 8] 9
		if cm.Calls() != 4 || cm.Skipped() != 6 {
			t.Errorf("%s: %d calls, %d skipped; want 4 and 6", c.kind, cm.Calls(), cm.Skipped())
		}
		if d := maxAbsDiff(x, widen(ref)); d > 1e-6 {
			t.Errorf("%s: end point %.3g from the uncached run", c.kind, d)
		}
	}
}

// TestStepCacheAnalytic measures both caches on the analytic mixture at 28 Euler steps: the share of
// model calls saved and the end-point RMSE they add, against the threshold. It asserts only that a
// looser threshold never computes more and that the added error stays below the Euler error itself at
// the default threshold.
func TestStepCacheAnalytic(t *testing.T) {
	f := &AnalyticFlow{Target: testMixture(t)}
	x0 := normalDraws(41, 256*2)
	sig := uniformSigmas(1, 0, 28)
	truth := exactTransport(t, f, x0, 1, 0)
	ref := append([]float32(nil), x0...)
	if err := Euler(context.Background(), f, ref, sig, Options{}); err != nil {
		t.Fatal(err)
	}
	eulerErr := rmsDiff(ref, truth)
	for _, kind := range []StepCacheKind{StepCacheEasyCache, StepCacheTaylor} {
		prevCalls := 1 << 30
		for _, th := range []float64{0.02, 0.05, 0.1, 0.2, 0.4} {
			cfg := DefaultStepCache(kind)
			cfg.Threshold = th
			cm := NewCachedModel(f, cfg)
			x := append([]float32(nil), x0...)
			if err := Euler(context.Background(), cm, x, sig, Options{}); err != nil {
				t.Fatal(err)
			}
			added := rmsDiff(x, widen(ref))
			t.Logf("%-9s threshold %.2f: %2d of 28 calls (%.0f %% saved), RMSE vs uncached %.3g (Euler's own error %.3g), vs exact %.3g",
				kind, th, cm.Calls(), 100*float64(cm.Skipped())/28, added, eulerErr, rmsDiff(x, truth))
			if cm.Calls() > prevCalls {
				t.Errorf("%s: threshold %.2f computes %d calls, more than a tighter one (%d)", kind, th, cm.Calls(), prevCalls)
			}
			prevCalls = cm.Calls()
			if th == 0.1 && added > eulerErr {
				t.Errorf("%s at the default threshold adds %.3g, more than Euler's own error %.3g", kind, added, eulerErr)
			}
		}
	}
}

// A zeroed first step (CFG-Zero*'s zero-init) leaves x where it was while the velocity jumps: the rate
// is infinite and nothing may be skipped until two calls with moving input give a real rate.
func TestStepCacheZeroInit(t *testing.T) {
	m := ModelFunc(func(_ context.Context, dst, _ []float32, e Eval) error {
		for i := range dst {
			dst[i] = 1
			if e.Index == 0 {
				dst[i] = 0
			}
		}
		return nil
	})
	cm := NewCachedModel(m, DefaultStepCache(StepCacheTaylor))
	x := []float32{0, 0}
	if err := Euler(context.Background(), cm, x, uniformSigmas(1, 0, 4), Options{}); err != nil {
		t.Fatal(err)
	}
	// step 0: v = 0, x stays; step 1: v = 1 (rate ∞); step 2 must run (rate from steps 1, 2 is 0 only then)
	if cm.Skipped() > 1 {
		t.Errorf("%d calls skipped, want at most the one after a real rate exists", cm.Skipped())
	}
	if d := float64(x[0]) - (-0.75); d > 1e-6 || d < -1e-6 {
		t.Errorf("x = %v, want −0.75 (three unit steps of −0.25 after a zero step)", x[0])
	}
}
