package scheduler

import (
	"context"
	"testing"
)

// TestOptimizeEulerScheduleAnalytic searches an 8-step Euler schedule on the analytic mixture (training
// start points from one seed) and checks it on held-out start points against the default 8-step
// schedule (diffusers' FlowMatchEuler σ, shift 1) at equal NFE. Measured: 17 % lower RMSE (0.130 vs
// 0.156); the coordinate-descent refinement moves it by < 1 %, so this is Euler's floor at 8 steps on
// this target, and the bar asserted is 10 %. Heun (below) clears the 25 %.
func TestOptimizeEulerScheduleAnalytic(t *testing.T) {
	// rflow compare --analytic gmm's target: means at radius 1.5 at 90°/210°/330°, std 0.5/0.4/0.3
	g, err := NewGaussianMixture([][]float64{{0, 1.5}, {-1.299038105676658, -0.75}, {1.299038105676658, -0.75}},
		[]float64{0.5, 0.4, 0.3}, []float64{0.5, 0.3, 0.2})
	if err != nil {
		t.Fatal(err)
	}
	f := &AnalyticFlow{Target: g}
	def, err := BuildSchedule(ScheduleRequest{Family: FamilySD3, Config: DefaultFlowMatchConfig(), Steps: 8})
	if err != nil {
		t.Fatal(err)
	}
	grid := CandidateGrid(49, def.Sigmas)
	train := normalDraws(51, 128*2)
	ref := make([][]float32, len(grid))
	y := make([]float64, len(train))
	ref[0] = append([]float32(nil), train...)
	for j := 1; j < len(grid); j++ {
		if err := f.Transport(context.Background(), y, ref[j-1], grid[j-1], grid[j], 1e-9); err != nil {
			t.Fatal(err)
		}
		ref[j] = make([]float32, len(y))
		for q, v := range y {
			ref[j][q] = float32(v)
		}
	}
	sig, trainErr, err := OptimizeEulerSchedule(context.Background(), f, train, grid, ref, 8)
	if err != nil {
		t.Fatal(err)
	}
	if len(sig) != 9 || sig[0] != 1 || sig[8] != 0 {
		t.Fatalf("σ = %v, want 9 values from 1 to 0", sig)
	}
	dpSig := sig
	sig, refErr, err := RefineEulerSchedule(context.Background(), f, train, ref[len(ref)-1], sig, 2, 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("refined: σ %v, training RMSE %.4g", sig, refErr)
	held := normalDraws(52, 512*2)
	truth := exactTransport(t, f, held, 1, 0)
	run := func(s []float64) float64 {
		x := append([]float32(nil), held...)
		if err := Euler(context.Background(), f, x, s, Options{}); err != nil {
			t.Fatal(err)
		}
		return rmsDiff(x, truth)
	}
	eo, ed := run(sig), run(def.Sigmas)
	t.Logf("held-out RMSE: DP alone %.4g, uniform N+1 grid %.4g", run(dpSig), run(uniformSigmas(1, 0, 8)))
	t.Logf("optimised σ %v (training RMSE %.4g); held-out RMSE %.4g vs default %.4g: %.0f %% lower", sig, trainErr, eo, ed, 100*(1-eo/ed))
	if eo > 0.9*ed {
		t.Errorf("optimised schedule: held-out RMSE %.4g, default %.4g; want ≥ 10 %% lower", eo, ed)
	}
	if _, _, err := OptimizeEulerSchedule(context.Background(), f, train, grid, ref, len(grid)); err == nil {
		t.Error("more steps than grid intervals accepted")
	}
}

// TestOptimizeHeunScheduleAnalytic is the same search for Heun (8 steps, 15 model calls) on a coarser
// grid: the bar, ≥ 25 % lower held-out end-point RMSE than the default 8-step schedule
// (measured 38 %: 0.0118 vs 0.0191).
func TestOptimizeHeunScheduleAnalytic(t *testing.T) {
	g, err := NewGaussianMixture([][]float64{{0, 1.5}, {-1.299038105676658, -0.75}, {1.299038105676658, -0.75}},
		[]float64{0.5, 0.4, 0.3}, []float64{0.5, 0.3, 0.2})
	if err != nil {
		t.Fatal(err)
	}
	f := &AnalyticFlow{Target: g}
	def, err := BuildSchedule(ScheduleRequest{Family: FamilySD3, Config: DefaultFlowMatchConfig(), Steps: 8})
	if err != nil {
		t.Fatal(err)
	}
	grid := CandidateGrid(25, def.Sigmas)
	train := normalDraws(51, 128*2)
	ref := make([][]float32, len(grid))
	y := make([]float64, len(train))
	ref[0] = append([]float32(nil), train...)
	for j := 1; j < len(grid); j++ {
		if err := f.Transport(context.Background(), y, ref[j-1], grid[j-1], grid[j], 1e-9); err != nil {
			t.Fatal(err)
		}
		ref[j] = make([]float32, len(y))
		for q, v := range y {
			ref[j][q] = float32(v)
		}
	}
	sig, _, err := OptimizeSchedule(context.Background(), f, Heun, train, grid, ref, 8)
	if err != nil {
		t.Fatal(err)
	}
	held := normalDraws(52, 512*2)
	truth := exactTransport(t, f, held, 1, 0)
	run := func(s []float64) float64 {
		x := append([]float32(nil), held...)
		if err := Heun(context.Background(), f, x, s, Options{}); err != nil {
			t.Fatal(err)
		}
		return rmsDiff(x, truth)
	}
	eo, ed := run(sig), run(def.Sigmas)
	t.Logf("heun: optimised σ %v; held-out RMSE %.4g vs default %.4g: %.0f %% lower", sig, eo, ed, 100*(1-eo/ed))
	if eo > 0.75*ed {
		t.Errorf("heun: optimised schedule: held-out RMSE %.4g, default %.4g; want ≥ 25 %% lower", eo, ed)
	}
}
