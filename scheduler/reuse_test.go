package scheduler

import (
	"context"
	"math"
	"testing"
)

// TestFireFlowOrderPerModelCall fits FireFlow's end-point error against its model calls on the
// analytic flow (σ 1 → 0, linear path): the bar is a fitted order ≥ 1.8 at ≈ 1 call per step.
// The midpoint rule at the same number of calls is logged for comparison.
func TestFireFlowOrderPerModelCall(t *testing.T) {
	f := &AnalyticFlow{Target: testMixture(t)}
	x0 := normalDraws(29, 32*2)
	truth := exactTransport(t, f, x0, 1, 0)
	var nfes, errs []float64
	for _, n := range []int{16, 32, 64, 128} {
		x := append([]float32(nil), x0...)
		calls := 0
		o := Options{Callback: func(st Step) error { calls = st.NFE; return nil }}
		if err := FireFlow(context.Background(), f, x, uniformSigmas(1, 0, n), o); err != nil {
			t.Fatal(err)
		}
		if calls != n+1 {
			t.Fatalf("%d steps took %d model calls, want %d", n, calls, n+1)
		}
		e := rmsDiff(x, truth)
		mid := append([]float32(nil), x0...)
		if err := Midpoint(context.Background(), f, mid, uniformSigmas(1, 0, (n+1)/2), Options{}); err != nil {
			t.Fatal(err)
		}
		t.Logf("fireflow %3d steps, %3d calls: RMSE %.3g; midpoint at %3d calls: %.3g", n, calls, e, 2*((n+1)/2), rmsDiff(mid, truth))
		nfes, errs = append(nfes, float64(calls)), append(errs, e)
	}
	var sx, sy, sxx, sxy float64
	for i := range nfes {
		lx, ly := math.Log(nfes[i]), math.Log(errs[i])
		sx, sy, sxx, sxy = sx+lx, sy+ly, sxx+lx*lx, sxy+lx*ly
	}
	m := float64(len(nfes))
	order := -(m*sxy - sx*sy) / (m*sxx - sx*sx)
	t.Logf("fireflow: fitted order %.2f per model call", order)
	if order < 1.8 {
		t.Errorf("fireflow: fitted order %.2f per model call, want ≥ 1.8", order)
	}
}

func rmsDiff(x []float32, ref []float64) float64 {
	s := 0.0
	for j := range x {
		d := float64(x[j]) - ref[j]
		s += d * d
	}
	return math.Sqrt(s / float64(len(x)))
}

// TestReuseAliases: rf_solver is the midpoint rule, euler_ge gradient estimation.
func TestReuseAliases(t *testing.T) {
	for alias, want := range map[string]string{"rf_solver": "midpoint", "RF-Solver": "midpoint", "euler_ge": "gradient_estimation"} {
		if s, err := LookupSampler(alias); err != nil || s.Name != want {
			t.Errorf("LookupSampler(%q) = %q, %v; want %s", alias, s.Name, err, want)
		}
	}
}
