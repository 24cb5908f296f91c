package scheduler

import (
	"context"
	"fmt"
	"math"
	"testing"
)

// sampleMoments returns the mean and covariance of B draws of dimension D (row-major D×D), and the
// standard errors of each entry: √(Ĉ_dd/B) for the means, the standard deviation of the centred
// products over √B for the covariance.
func sampleMoments(x []float32, D int) (mean, cov, seMean, seCov []float64) {
	B := len(x) / D
	mean, cov = make([]float64, D), make([]float64, D*D)
	seMean, seCov = make([]float64, D), make([]float64, D*D)
	for b := range B {
		for d := range D {
			mean[d] += float64(x[b*D+d]) / float64(B)
		}
	}
	sq := make([]float64, D*D)
	for b := range B {
		for i := range D {
			for j := range D {
				p := (float64(x[b*D+i]) - mean[i]) * (float64(x[b*D+j]) - mean[j])
				cov[i*D+j] += p / float64(B)
				sq[i*D+j] += p * p / float64(B)
			}
		}
	}
	for i := range D {
		seMean[i] = math.Sqrt(cov[i*D+i] / float64(B))
		for j := range D {
			seCov[i*D+j] = math.Sqrt((sq[i*D+j] - cov[i*D+j]*cov[i*D+j]) / float64(B))
		}
	}
	return mean, cov, seMean, seCov
}

// momentsWithin reports how the sample moments of x miss the target's exact ones, in standard errors;
// it returns an error when any entry is off by more than k standard errors.
func momentsWithin(x []float32, g *GaussianMixture, k float64) error {
	mean, cov, seM, seC := sampleMoments(x, g.Dim())
	wantM, wantC := g.Mean(), g.Covariance()
	for d := range mean {
		if z := math.Abs(mean[d]-wantM[d]) / seM[d]; !(z <= k) {
			return fmt.Errorf("mean[%d] = %.4f, want %.4f (%.1f standard errors)", d, mean[d], wantM[d], z)
		}
	}
	for e := range cov {
		if z := math.Abs(cov[e]-wantC[e]) / seC[e]; !(z <= k) {
			return fmt.Errorf("cov[%d] = %.4f, want %.4f (%.1f standard errors)", e, cov[e], wantC[e], z)
		}
	}
	return nil
}

// distributionSteps is enough steps that each sampler's discretisation bias on the test mixture is
// below about one standard error of 4000 draws (first-order and stochastic schemes need many).
func distributionSteps(s SamplerInfo) int {
	if s.Order == 1 || s.Stochastic {
		return 200
	}
	return 40
}

// TestSamplersReachTarget integrates N(0, I) draws at σ = 1 to 0 on the exact flow of a 2-D mixture,
// on the Linear and the Cosine path, and checks mean and covariance within 5 standard errors.
func TestSamplersReachTarget(t *testing.T) {
	g := testMixture(t)
	B := 4000
	if testing.Short() {
		B = 1000
	}
	for _, p := range []Path{Linear, Cosine} {
		for _, s := range Samplers() {
			if s.Order == 0 { // re-noising samplers: TestNoiseResetSamplersShrink
				continue
			}
			t.Run(p.Name()+"/"+s.Name, func(t *testing.T) {
				t.Parallel()
				x := normalDraws(4, B*g.Dim()) // exactly transported, these draws sit 1.4 SE from the target moments
				o := optionsFor(s, t)
				o.Path = p
				if err := s.Func(context.Background(), &AnalyticFlow{Target: g, Path: p}, x, uniformSigmas(1, 0, distributionSteps(s)), o); err != nil {
					t.Fatal(err)
				}
				if err := momentsWithin(x, g, 5); err != nil {
					t.Error(err)
				}
			})
		}
	}
}

// TestMomentCheckHasPower is the negative control: two Euler steps land visibly off the target.
func TestMomentCheckHasPower(t *testing.T) {
	g := testMixture(t)
	x := normalDraws(11, 4000*g.Dim())
	if err := Euler(context.Background(), &AnalyticFlow{Target: g}, x, []float64{1, 0.5, 0}, Options{}); err != nil {
		t.Fatal(err)
	}
	if err := momentsWithin(x, g, 5); err == nil {
		t.Fatal("2 Euler steps passed the moment check; it cannot tell right from wrong")
	}
}

// TestNoiseResetSamplersShrink pins down what euler_stochastic and lcm do with an exact x0 = E[x0|x_t]
// model: each step is x = α_n·E[x0|x] + σ_n·z, which loses the posterior variance α_n²·E[Var(x0|x)] at
// every step, so they do not sample the target (they are meant for consistency/distilled models whose
// x0 is a sample). For a 1-D Gaussian N(μ, s²) the chain stays Gaussian with an exact (mean, variance)
// recursion; the draws must match it, and its final spread is well below s (→ s/√2 as steps grow).
func TestNoiseResetSamplersShrink(t *testing.T) {
	const mu, s, B, n = 0.3, 0.5, 8000, 16
	g, err := NewGaussianMixture([][]float64{{mu}}, []float64{s}, []float64{1})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []Path{Linear, Cosine} {
		sig := uniformSigmas(1, 0, n)
		m, v := 0.0, 1.0
		for i := range n {
			al, sg := p.Alpha(sig[i]), p.Sigma(sig[i])
			c := al * s * s / (al*al*s*s + sg*sg)
			m, v = mu+c*(m-al*mu), c*c*v
			an, sn := p.Alpha(sig[i+1]), p.Sigma(sig[i+1])
			m, v = an*m, an*an*v+sn*sn
		}
		if math.Sqrt(v) > 0.8*s {
			t.Fatalf("%s: predicted spread %.3f is not below the target's %.3f", p.Name(), math.Sqrt(v), s)
		}
		for _, name := range []string{"euler_stochastic", "lcm"} {
			info, _ := LookupSampler(name)
			x := normalDraws(21, B)
			o := optionsFor(info, t)
			o.Path = p
			if err := info.Func(context.Background(), &AnalyticFlow{Target: g, Path: p}, x, sig, o); err != nil {
				t.Fatal(err)
			}
			mean, cov, seM, seC := sampleMoments(x, 1)
			if math.Abs(mean[0]-m) > 5*seM[0] || math.Abs(cov[0]-v) > 5*seC[0] {
				t.Errorf("%s/%s: mean %.4f var %.4f, recursion predicts %.4f and %.4f", p.Name(), name, mean[0], cov[0], m, v)
			}
		}
	}
}
