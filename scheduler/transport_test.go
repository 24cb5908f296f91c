package scheduler

import (
	"context"
	"testing"
)

func TestTransportMatchesFineSampler(t *testing.T) {
	f := &AnalyticFlow{Target: testMixture(t)}
	x0 := normalDraws(5, 16*2)
	exact := make([]float64, len(x0))
	if err := f.Transport(context.Background(), exact, x0, 1, 0, 0); err != nil {
		t.Fatal(err)
	}
	x := append([]float32(nil), x0...)
	if err := RK4(context.Background(), f, x, uniformSigmas(1, 0, 200), Options{}); err != nil {
		t.Fatal(err)
	}
	if m := maxAbsDiff(x, exact); m > 1e-5 {
		t.Errorf("rk4 with 200 steps is %.3g from Transport", m)
	}
	if err := f.Transport(context.Background(), exact, x0, 1, 0, -1); err == nil {
		t.Error("negative tolerance accepted")
	}
}
