package scheduler

import (
	"math"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b)) }

func guider(t *testing.T, spec string, rows int) *Guider {
	t.Helper()
	r, err := ParseGuidanceRule(spec)
	if err != nil {
		t.Fatal(err)
	}
	g, err := r.NewGuider(rows, nil)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestParseGuidanceRule(t *testing.T) {
	for in, want := range map[string]string{
		"":                                "cfg",
		"CFG":                             "cfg",
		"cfg-zero*":                       "cfg-zero-star:zero-steps=1",
		"cfg-zero-star:zero-steps=0":      "cfg-zero-star:zero-steps=0",
		"apg":                             "apg:eta=1,norm-threshold=5,momentum=0",
		"apg:eta=0,norm=15,momentum=-0.5": "apg:eta=0,norm-threshold=15,momentum=-0.5",
		"cfgpp":                           "cfg++",
	} {
		r, err := ParseGuidanceRule(in)
		if err != nil || r.String() != want {
			t.Errorf("ParseGuidanceRule(%q) = %v (%v), want %s", in, r, err, want)
			continue
		}
		if back, err := ParseGuidanceRule(r.String()); err != nil || back != r {
			t.Errorf("%q does not read back: %v %v", r.String(), back, err)
		}
	}
	for _, bad := range []string{"pag", "apg:eta", "apg:momentum=1", "cfg:eta=1", "cfg-zero-star:zero-steps=1.5", "apg:norm=-1"} {
		if _, err := ParseGuidanceRule(bad); err == nil {
			t.Errorf("ParseGuidanceRule(%q) accepted", bad)
		}
	}
}

// TestCFGHandComputed: u + g·(c − u) in float32.
func TestCFGHandComputed(t *testing.T) {
	dst := make([]float32, 2)
	g := guider(t, "cfg", 1)
	if err := g.Combine(dst, []float32{3, -1}, []float32{1, 1}, nil, 4.5, At(0.5)); err != nil {
		t.Fatal(err)
	}
	if dst[0] != 10 || dst[1] != -8 {
		t.Errorf("cfg: %v, want [10 -8]", dst)
	}
}

// TestCFGZeroStar checks eq. 8 of Fan et al.: s* = ⟨v_c, v_u⟩/‖v_u‖² per image, v = s*·v_u +
// w·(v_c − s*·v_u), and the zero-initialised first step.
func TestCFGZeroStar(t *testing.T) {
	g := guider(t, "cfg-zero-star", 2)
	// image 0: v_u = (1, 0), v_c = (2, 3): s* = 2, v = (2, 3w). image 1: v_u = (0, 2), v_c = (1, 1): s* = 1/2,
	// v = (0, 1) + w·((1, 1) − (0, 1)) = (w, 1).
	cond, uncond := []float32{2, 3, 1, 1}, []float32{1, 0, 0, 2}
	dst := make([]float32, 4)
	const w = 3.5
	if err := g.Combine(dst, cond, uncond, nil, w, Eval{Index: 0, Total: 4, Sigma: 1, SigmaNext: 0.75, T: 1, NFE: 1}); err != nil {
		t.Fatal(err)
	}
	if dst[0] != 0 || dst[1] != 0 || dst[2] != 0 || dst[3] != 0 {
		t.Errorf("step 0 (zero-init): %v, want zeros", dst)
	}
	if err := g.Combine(dst, cond, uncond, nil, w, Eval{Index: 1, Total: 4, Sigma: 0.75, SigmaNext: 0.5, T: 0.75, NFE: 2}); err != nil {
		t.Fatal(err)
	}
	want := []float64{2, 3 * w, w, 1}
	for i := range want {
		if !near(float64(dst[i]), want[i], 1e-6) {
			t.Errorf("v[%d] = %v, want %v", i, dst[i], want[i])
		}
	}
}

// TestAPG checks Alg. 1 of Sadat et al. on the x0 predictions of the Linear path (x0 = x − σ·v).
func TestAPG(t *testing.T) {
	const sigma, w = 0.5, 4.0
	e := Eval{Total: 1, Sigma: sigma, T: sigma, NFE: 1}
	x := []float32{1, 1}
	// choose D_c = (2, 0) and D_u = (1, −1): Δ = (1, 1), Δ∥ = (1, 0) along D_c, Δ⊥ = (0, 1).
	vel := func(x0 []float64) []float32 {
		return []float32{float32((1 - x0[0]) / sigma), float32((1 - x0[1]) / sigma)}
	}
	cond, uncond := vel([]float64{2, 0}), vel([]float64{1, -1})
	x0 := func(v []float32) []float64 {
		return []float64{1 - sigma*float64(v[0]), 1 - sigma*float64(v[1])}
	}
	dst := make([]float32, 2)
	for _, c := range []struct {
		spec string
		want []float64 // D = D_c + (w−1)·(Δ⊥ + η·Δ∥) after rescaling
	}{
		{"apg:eta=1,norm=0", []float64{2 + 3, 0 + 3}},                                 // CFG: D_u + w·Δ
		{"apg:eta=0,norm=0", []float64{2, 3}},                                         // orthogonal part only
		{"apg:eta=0.5,norm=0", []float64{2 + 1.5, 3}},                                 // half the parallel part
		{"apg:eta=1,norm=0.5", []float64{2 + 3*0.5/math.Sqrt2, 3 * 0.5 / math.Sqrt2}}, // ‖Δ‖ = √2 → 0.5
	} {
		g := guider(t, c.spec, 1)
		if err := g.Combine(dst, cond, uncond, x, w, e); err != nil {
			t.Fatal(err)
		}
		got := x0(dst)
		for i := range got {
			if !near(got[i], c.want[i], 1e-6) {
				t.Errorf("%s: D = %v, want %v", c.spec, got, c.want)
				break
			}
		}
	}
	// APG with η = 1 and no threshold is CFG on the velocities too.
	cfg := make([]float32, 2)
	CFG(cfg, uncond, cond, w)
	guider(t, "apg:eta=1,norm=0", 1).Combine(dst, cond, uncond, x, w, e)
	for i := range cfg {
		if !near(float64(dst[i]), float64(cfg[i]), 1e-6) {
			t.Errorf("apg(η=1, r=0) = %v, cfg = %v", dst, cfg)
		}
	}
	// momentum β: the second call uses Δ₂ + β·Δ₁ (same Δ twice: (1 + β)·Δ).
	g := guider(t, "apg:eta=1,norm=0,momentum=-0.5", 1)
	g.Combine(dst, cond, uncond, x, w, e)
	e2 := e
	e2.NFE = 2
	g.Combine(dst, cond, uncond, x, w, e2)
	got := x0(dst)
	if want := []float64{2 + 3*0.5, 3 * 0.5}; !near(got[0], want[0], 1e-6) || !near(got[1], want[1], 1e-6) {
		t.Errorf("momentum −0.5, second call: D = %v, want %v", got, want)
	}
}

// TestCFGPPEulerStep checks that an Euler step with CFG++'s velocity lands on Chung et al.'s update in
// flow form, x_next = (1 − σn)·x0_g + σn·ε_u with x0 = x − σ·v and ε = x + (1 − σ)·v.
func TestCFGPPEulerStep(t *testing.T) {
	const s, sn, lambda = 0.8, 0.55, 0.6
	x := []float64{0.3, -1.2, 2}
	vc := []float32{1.5, -0.25, 0.75}
	vu := []float32{-0.5, 0.5, 1}
	g := guider(t, "cfg++", 1)
	v := make([]float32, 3)
	if err := g.Combine(v, vc, vu, nil, lambda, Eval{Index: 2, Total: 5, Sigma: s, SigmaNext: sn, T: s, NFE: 3}); err != nil {
		t.Fatal(err)
	}
	for i := range x {
		x0u, x0c := x[i]-s*float64(vu[i]), x[i]-s*float64(vc[i])
		x0g := x0u + lambda*(x0c-x0u)
		epsU := x[i] + (1-s)*float64(vu[i])
		want := (1-sn)*x0g + sn*epsU
		got := x[i] + (sn-s)*float64(v[i])
		if !near(got, want, 1e-6) {
			t.Errorf("value %d: Euler step with cfg++ gives %v, the paper's update %v", i, got, want)
		}
	}
}
