package scheduler

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

// gaussianFlowMap is the closed-form flow of a single Gaussian N(μ, s²I): x_t = αμ + k(t)·z with
// k = √(α²s² + σ²) is carried deterministically, so x(t) = α(t)μ + k(t)/k(t0)·(x(t0) − α(t0)μ).
func gaussianFlowMap(p Path, mu []float64, s, t0, t1 float64, x []float64) []float64 {
	k := func(t float64) float64 { a, g := p.Alpha(t), p.Sigma(t); return math.Sqrt(a*a*s*s + g*g) }
	out := make([]float64, len(x))
	for j := range x {
		m := mu[j%len(mu)]
		out[j] = p.Alpha(t1)*m + k(t1)/k(t0)*(x[j]-p.Alpha(t0)*m)
	}
	return out
}

func TestSingleGaussianFlowIsExact(t *testing.T) {
	mu, s := []float64{0.7, -1.2, 0.1}, 0.4
	g, err := NewGaussianMixture([][]float64{mu}, []float64{s}, []float64{1})
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float64, 3*8)
	for j, v := range normalDraws(3, len(x)) {
		x[j] = float64(v)
	}
	for _, p := range []Path{Linear, Cosine} {
		f := &AnalyticFlow{Target: g, Path: p}
		// The velocity is the time derivative of the closed-form map (central differences).
		for _, tt := range []float64{0.05, 0.3, 0.6, 0.95} {
			const h = 1e-5
			plus, minus := gaussianFlowMap(p, mu, s, tt, tt+h, x), gaussianFlowMap(p, mu, s, tt, tt-h, x)
			v := make([]float64, len(x))
			if err := f.VelocityAt(v, x, tt); err != nil {
				t.Fatal(err)
			}
			for j := range x {
				if fd := (plus[j] - minus[j]) / (2 * h); math.Abs(fd-v[j]) > 1e-7 {
					t.Fatalf("%s t=%v: v = %v, d/dt of the flow map = %v", p.Name(), tt, v[j], fd)
				}
			}
		}
		// And the ODE solver used as ground truth reproduces the map over the whole range.
		y := append([]float64(nil), x...)
		rhs := func(tt float64, y, dy []float64) error { return f.VelocityAt(dy, y, tt) }
		if err := dopri5Solve(context.Background(), rhs, y, 1, 0, 1e-10, 1e-10, nil); err != nil {
			t.Fatal(err)
		}
		want := gaussianFlowMap(p, mu, s, 1, 0, x)
		for j := range y {
			if math.Abs(y[j]-want[j]) > 1e-8 {
				t.Fatalf("%s: dopri5 gives %v, flow map %v", p.Name(), y[j], want[j])
			}
		}
	}
}

// mixtureDensity is p_t(x) = Σ w_k N(x; α μ_k, (α² s_k² + σ²) I), written out independently.
func mixtureDensity(g *GaussianMixture, p Path, x []float64, t float64) float64 {
	al, s := p.Alpha(t), p.Sigma(t)
	sum := 0.0
	for k, mu := range g.means {
		v := al*al*g.stds[k]*g.stds[k] + s*s
		q := 0.0
		for d := range x {
			q += (x[d] - al*mu[d]) * (x[d] - al*mu[d])
		}
		sum += g.weights[k] * math.Exp(-q/(2*v)) / math.Pow(2*math.Pi*v, float64(len(x))/2)
	}
	return sum
}

// TestMixtureVelocitySolvesContinuity checks ∂p/∂t + ∇·(p v) = 0 by central differences at points
// around the mixture, on both paths: the velocity transports the exact marginals.
func TestMixtureVelocitySolvesContinuity(t *testing.T) {
	g := testMixture(t)
	pts := [][]float64{{0.3, -0.2}, {1.2, 0.4}, {-0.8, -1.1}, {0.6, -1.4}, {2, 2}}
	for _, p := range []Path{Linear, Cosine} {
		f := &AnalyticFlow{Target: g, Path: p}
		flux := func(x []float64, tt float64, d int) float64 {
			v := make([]float64, 2)
			if err := f.VelocityAt(v, x, tt); err != nil {
				t.Fatal(err)
			}
			return mixtureDensity(g, p, x, tt) * v[d]
		}
		for _, tt := range []float64{0.1, 0.4, 0.7, 0.9} {
			for _, x := range pts {
				const h = 1e-4
				dp := (mixtureDensity(g, p, x, tt+h) - mixtureDensity(g, p, x, tt-h)) / (2 * h)
				div := 0.0
				for d := range 2 {
					xp, xm := append([]float64(nil), x...), append([]float64(nil), x...)
					xp[d] += h
					xm[d] -= h
					div += (flux(xp, tt, d) - flux(xm, tt, d)) / (2 * h)
				}
				if res := dp + div; math.Abs(res) > 1e-6*(math.Abs(dp)+math.Abs(div)+1e-3) {
					t.Errorf("%s t=%v x=%v: ∂p/∂t = %.6g, ∇·(pv) = %.6g", p.Name(), tt, x, dp, div)
				}
			}
		}
	}
}

// TestPosteriorMeanIsX0OfVelocity: the path's x0 conversion of the exact velocity is the exact
// posterior mean, and both agree with a self-normalised importance-sampling estimate.
func TestPosteriorMeanIsX0OfVelocity(t *testing.T) {
	g := testMixture(t)
	r := rand.New(rand.NewPCG(4, 4))
	x := []float64{0.4, -0.3, 1.1, 0.9}
	for _, p := range []Path{Linear, Cosine} {
		f := &AnalyticFlow{Target: g, Path: p}
		for _, tt := range []float64{0.2, 0.5, 0.8} {
			v, pm := make([]float64, 4), make([]float64, 4)
			if err := f.VelocityAt(v, x, tt); err != nil {
				t.Fatal(err)
			}
			if err := f.PosteriorMean(pm, x, tt); err != nil {
				t.Fatal(err)
			}
			for j := range x {
				if got := X0FromVelocity(p, tt, x[j], v[j]); math.Abs(got-pm[j]) > 1e-12 {
					t.Errorf("%s t=%v: x0 of v = %v, posterior mean %v", p.Name(), tt, got, pm[j])
				}
			}
			// Monte Carlo: E[x0 | x_t = x] ∝ ∫ x0 N(x; α x0, σ² I) p(x0) dx0.
			const n = 100000
			draws := make([]float64, 2*n)
			_ = g.Sample(r, draws)
			al, s := p.Alpha(tt), p.Sigma(tt)
			var w, wx, wy, w2 float64
			for i := range n {
				dx, dy := x[0]-al*draws[2*i], x[1]-al*draws[2*i+1]
				wi := math.Exp(-(dx*dx + dy*dy) / (2 * s * s))
				w, wx, wy, w2 = w+wi, wx+wi*draws[2*i], wy+wi*draws[2*i+1], w2+wi*wi
			}
			ess := w * w / w2
			if se := 1 / math.Sqrt(ess); math.Abs(wx/w-pm[0]) > 5*se || math.Abs(wy/w-pm[1]) > 5*se {
				t.Errorf("%s t=%v: Monte Carlo (%.4f, %.4f) vs exact (%.4f, %.4f), ESS %.0f", p.Name(), tt, wx/w, wy/w, pm[0], pm[1], ess)
			}
		}
	}
}

func TestAnalyticEndpointsAndStability(t *testing.T) {
	g := testMixture(t)
	x := []float64{0.3, -0.7, 1e3, -1e3, 40, 0}
	mean := g.Mean()
	for _, p := range []Path{Linear, Cosine} {
		f := &AnalyticFlow{Target: g, Path: p}
		for _, tt := range []float64{0, 1e-9, 0.5, 1 - 1e-9, 1} {
			v, rr := make([]float64, len(x)), make([]float64, 3*3)
			if err := f.VelocityAt(v, x, tt); err != nil {
				t.Fatal(err)
			}
			if err := f.Responsibilities(rr, x, tt); err != nil {
				t.Fatal(err)
			}
			for b := range 3 {
				if s := rr[3*b] + rr[3*b+1] + rr[3*b+2]; math.Abs(s-1) > 1e-12 {
					t.Errorf("%s t=%v: responsibilities sum to %v", p.Name(), tt, s)
				}
			}
			for j, vj := range v {
				if math.IsNaN(vj) || math.IsInf(vj, 0) {
					t.Fatalf("%s t=%v: v[%d] = %v", p.Name(), tt, j, vj)
				}
			}
		}
	}
	// Linear endpoints in closed form: v(x, 1) = x − E[x0]; v(x, 0) = −x.
	f := &AnalyticFlow{Target: g}
	v := make([]float64, 2)
	_ = f.VelocityAt(v, x[:2], 1)
	if math.Abs(v[0]-(x[0]-mean[0])) > 1e-12 || math.Abs(v[1]-(x[1]-mean[1])) > 1e-12 {
		t.Errorf("v(x, 1) = %v, want x − mean", v)
	}
	_ = f.VelocityAt(v, x[:2], 0)
	if math.Abs(v[0]+x[0]) > 1e-12 || math.Abs(v[1]+x[1]) > 1e-12 {
		t.Errorf("v(x, 0) = %v, want −x", v)
	}
}

func TestMixtureSamplingMoments(t *testing.T) {
	g := testMixture(t)
	r := rand.New(rand.NewPCG(6, 6))
	const n = 20000
	for _, tt := range []float64{0, 0.6} {
		f := &AnalyticFlow{Target: g, Path: Cosine}
		d := make([]float64, 2*n)
		if err := f.SampleAt(r, d, tt); err != nil {
			t.Fatal(err)
		}
		x := make([]float32, len(d))
		for j, v := range d {
			x[j] = float32(v)
		}
		al, s := Cosine.Alpha(tt), Cosine.Sigma(tt)
		mean, cov, seM, seC := sampleMoments(x, 2)
		wantM, wantC := g.Mean(), g.Covariance()
		for i := range 2 {
			if math.Abs(mean[i]-al*wantM[i]) > 5*seM[i] {
				t.Errorf("t=%v mean[%d] = %v, want %v", tt, i, mean[i], al*wantM[i])
			}
			for j := range 2 {
				want := al * al * wantC[2*i+j]
				if i == j {
					want += s * s
				}
				if math.Abs(cov[2*i+j]-want) > 5*seC[2*i+j] {
					t.Errorf("t=%v cov[%d,%d] = %v, want %v", tt, i, j, cov[2*i+j], want)
				}
			}
		}
	}
}

func TestAnalyticInputErrors(t *testing.T) {
	bad := []struct {
		means   [][]float64
		stds, w []float64
	}{
		{nil, nil, nil},
		{[][]float64{{0}}, []float64{0}, []float64{1}},
		{[][]float64{{0}}, []float64{1}, []float64{-1}},
		{[][]float64{{0}, {0, 1}}, []float64{1, 1}, []float64{1, 1}},
		{[][]float64{{0}}, []float64{1, 2}, []float64{1}},
	}
	for i, b := range bad {
		if _, err := NewGaussianMixture(b.means, b.stds, b.w); err == nil {
			t.Errorf("case %d accepted", i)
		}
	}
	f := &AnalyticFlow{Target: testMixture(t)}
	if err := f.VelocityAt(make([]float64, 3), make([]float64, 3), 0.5); err == nil {
		t.Error("3 values in 2-D accepted")
	}
	if err := f.VelocityAt(make([]float64, 2), make([]float64, 2), 1.5); err == nil {
		t.Error("t = 1.5 accepted")
	}
	if err := f.Velocity(context.Background(), make([]float32, 2), make([]float32, 4), At(0.5)); err == nil {
		t.Error("dst/x length mismatch accepted")
	}
}
