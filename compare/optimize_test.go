package compare

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/scheduler"
)

// TestOptimizeAnalytic searches 8-step schedules on rflow compare --analytic gmm's mixture and scores
// them on held-out start points: heun's clears the 25 % bar, euler's is logged (its floor is
// lower, see scheduler's TestOptimizeEulerScheduleAnalytic). The preset and flags render the σ found.
func TestOptimizeAnalytic(t *testing.T) {
	g, err := scheduler.NewGaussianMixture([][]float64{{0, 1.5}, {-1.299038105676658, -0.75}, {1.299038105676658, -0.75}},
		[]float64{0.5, 0.4, 0.3}, []float64{0.5, 0.3, 0.2})
	if err != nil {
		t.Fatal(err)
	}
	f := &scheduler.AnalyticFlow{Target: g}
	def, err := scheduler.BuildSchedule(scheduler.ScheduleRequest{Family: scheduler.FamilySD3, Config: scheduler.DefaultFlowMatchConfig(), Steps: 8})
	if err != nil {
		t.Fatal(err)
	}
	held := map[uint64][]float32{101: normalDraws(101, 300*2), 102: normalDraws(102, 300*2)}
	for _, c := range []struct {
		sampler string
		grid    int
		min     float64
	}{{"heun", 17, 0.25}, {"euler", 49, 0.1}} {
		s, _ := scheduler.LookupSampler(c.sampler)
		res, err := OptimizeAnalytic(context.Background(), f, ScheduleSearch{Steps: 8, Sampler: s, GridPoints: c.grid},
			normalDraws(1, 300*2), held, []uint64{101, 102}, def.Sigmas)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: σ %v, held-out %+v, %.0f %% lower", c.sampler, res.Sigmas, res.HeldOut, 100*res.Gain())
		if res.Gain() < c.min || len(res.HeldOut) != 2 {
			t.Errorf("%s: held-out gain %.2f, want ≥ %.2f", c.sampler, res.Gain(), c.min)
		}
		data, err := res.PresetJSON("analytic gmm")
		if err != nil {
			t.Fatal(err)
		}
		var back struct {
			Sigmas []float64
			Flags  string
			Steps  int
		}
		if err := json.Unmarshal(data, &back); err != nil || back.Steps != 8 || len(back.Sigmas) != 9 ||
			!strings.Contains(back.Flags, "--sigmas-raw") || !strings.Contains(res.Markdown(), "held-out seed") {
			t.Errorf("preset %s (%v)", data, err)
		}
	}
	if _, err := OptimizeAnalytic(context.Background(), f, ScheduleSearch{Steps: 8, GridPoints: 4}, nil, nil, nil, def.Sigmas); err == nil {
		t.Error("a grid smaller than the steps was accepted")
	}
	if g := (ScheduleSearchResult{}).Gain(); !math.IsNaN(g) {
		t.Errorf("no held-out rows: gain %v, want NaN", g)
	}
}
