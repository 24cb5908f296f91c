package scheduler

import (
	"context"
	"testing"
)

// TestEvalLocatesEveryCall checks that every sampler tells the model which step a call belongs to: the
// index and interval match the σ list, calls come in step order, the evaluation time lies in the
// step's interval, and each step's calls begin with one at the step's own σ (but for the offsets of a
// first σ of 1: ComfyUI's 0.9999 in dpmpp_2m_sde, diffusers' 1 − 1e-6 in uni_pc; and FireFlow, whose
// later steps call the model at their midpoint only).
func TestEvalLocatesEveryCall(t *testing.T) {
	f := &AnalyticFlow{Target: testMixture(t)}
	sig := uniformSigmas(1, 0, 6)
	for _, s := range Samplers() {
		var evals []Eval
		m := ModelFunc(func(ctx context.Context, dst, x []float32, e Eval) error {
			evals = append(evals, e)
			return f.Velocity(ctx, dst, x, e)
		})
		o := DefaultOptions()
		o.Noise = seededNoise(3)
		if err := s.Func(context.Background(), m, normalDraws(1, 8), sig, o); err != nil {
			t.Fatal(err)
		}
		if s.CallsPerStep == "adaptive" {
			for k, e := range evals {
				if e.Total != 0 || e.Sigma != 1 || e.SigmaNext != 0 || e.NFE != k+1 {
					t.Fatalf("%s call %d: %+v", s.Name, k, e)
				}
			}
			continue
		}
		last := -1
		for k, e := range evals {
			if e.Total != 6 || e.Index < last || e.Index > last+1 || e.NFE != k+1 ||
				e.Sigma != sig[e.Index] || e.SigmaNext != sig[e.Index+1] || e.T > e.Sigma || e.T < e.SigmaNext {
				t.Fatalf("%s call %d: %+v (previous step %d)", s.Name, k, e, last)
			}
			offset := e.Index == 0 && (s.Name == "dpmpp_2m_sde" || s.Name == "uni_pc")
			offset = offset || (s.Name == "fireflow" && e.Index > 0) // its start velocity is reused
			if e.Index != last && !e.First() && !offset {
				t.Errorf("%s: step %d starts with a call at T = %v", s.Name, e.Index, e.T)
			}
			last = e.Index
		}
		if last != 5 {
			t.Errorf("%s: last call in step %d, want 5", s.Name, last)
		}
	}
}

// TestCallbackEditsCarryOn checks that every fixed-step sampler continues from a callback's change of
// Step.X: replacing x after step 0 gives the single-step samplers the end point of a run started there
// on the remaining σ, and moves the multistep samplers' end point.
func TestCallbackEditsCarryOn(t *testing.T) {
	f := &AnalyticFlow{Target: testMixture(t)}
	sig := uniformSigmas(1, 0, 4)
	for _, s := range Samplers() {
		if s.CallsPerStep == "adaptive" || s.Stochastic {
			continue
		}
		pinned := normalDraws(9, 8)
		x := normalDraws(1, 8)
		o := Options{Callback: func(st Step) error {
			if st.Index == 0 {
				copy(st.X, pinned)
			}
			return nil
		}}
		if err := s.Func(context.Background(), f, x, sig, o); err != nil {
			t.Fatal(err)
		}
		// the same sampler started at the pinned x on the remaining σ (single-step samplers only:
		// multistep ones keep history from step 0, so compare against "x moved")
		if s.Name == "euler" || s.Name == "heun" || s.Name == "midpoint" || s.Name == "rk4" {
			y := append([]float32(nil), pinned...)
			if err := s.Func(context.Background(), f, y, sig[1:], Options{}); err != nil {
				t.Fatal(err)
			}
			if d := maxAbsDiff(x, widen(y)); d > 1e-6 {
				t.Errorf("%s: end point %.3g from the run restarted at the edited x", s.Name, d)
			}
			continue
		}
		free := normalDraws(1, 8)
		if err := s.Func(context.Background(), f, free, sig, Options{}); err != nil {
			t.Fatal(err)
		}
		if d := maxAbsDiff(x, widen(free)); d < 1e-3 {
			t.Errorf("%s: the edit of x after step 0 changed the end point by only %.3g", s.Name, d)
		}
	}
}
