package scheduler

import (
	"context"
	"math"
	"testing"
)

// Float64 transcriptions of diffusers' UniPC and ComfyUI's flow (CONST/RF) samplers, checked against
// the float32 samplers on the exact flow of the test mixture.

// noise64 draws one step of float32 noise from src as float64.
func noise64(src NoiseSource, n int) []float64 {
	z32 := make([]float32, n)
	_ = src.Fill(z32, 0, 0)
	z := make([]float64, n)
	for j, v := range z32 {
		z[j] = float64(v)
	}
	return z
}

// solveSmall solves R·x = b by Gaussian elimination with partial pivoting (torch.linalg.solve).
func solveSmall(R [][]float64, b []float64) []float64 {
	n := len(b)
	a := make([][]float64, n)
	for i := range a {
		a[i] = append(append([]float64(nil), R[i]...), b[i])
	}
	for c := range n {
		p := c
		for r := c + 1; r < n; r++ {
			if math.Abs(a[r][c]) > math.Abs(a[p][c]) {
				p = r
			}
		}
		a[c], a[p] = a[p], a[c]
		for r := c + 1; r < n; r++ {
			f := a[r][c] / a[c][c]
			for k := c; k <= n; k++ {
				a[r][k] -= f * a[c][k]
			}
		}
	}
	x := make([]float64, n)
	for r := n - 1; r >= 0; r-- {
		s := a[r][n]
		for k := r + 1; k < n; k++ {
			s -= a[r][k] * x[k]
		}
		x[r] = s / a[r][r]
	}
	return x
}

// uniRB builds diffusers' bh2 R matrix and b vector for predict_x0 (hh = −h).
func uniRB(rks []float64, hh float64, order int) (R [][]float64, b []float64, hPhi1, bh float64) {
	hPhi1 = math.Expm1(hh)
	hPhiK := hPhi1/hh - 1
	fact := 1.0
	bh = math.Expm1(hh)
	for i := 1; i <= order; i++ {
		row := make([]float64, len(rks))
		for k, r := range rks {
			row[k] = math.Pow(r, float64(i-1))
		}
		R = append(R, row)
		b = append(b, hPhiK*fact/bh)
		fact *= float64(i + 1)
		hPhiK = hPhiK/hh - 1/fact
	}
	return R, b, hPhi1, bh
}

// uniUpdate is multistep_uni_p_bh_update (corrector false) or multistep_uni_c_bh_update (true) for
// flow sigmas; outs holds the converted model outputs, newest last; si indexes σ of outs[len−1].
func uniUpdate(x []float64, outs [][]float64, s []float64, si, ti, order int, mt []float64) []float64 {
	lam := dpmLambda
	m0 := outs[len(outs)-1]
	h := lam(s[ti]) - lam(s[si])
	var rks []float64
	var d1s [][]float64
	for i := 1; i < order; i++ {
		mi := outs[len(outs)-1-i]
		rk := (lam(s[si-i]) - lam(s[si])) / h
		rks = append(rks, rk)
		d := make([]float64, len(x))
		for j := range d {
			d[j] = (mi[j] - m0[j]) / rk
		}
		d1s = append(d1s, d)
	}
	rks = append(rks, 1)
	R, b, hPhi1, bh := uniRB(rks, -h, order)
	var rhos []float64
	switch {
	case mt == nil && order == 2:
		rhos = []float64{0.5}
	case mt == nil && order > 2:
		rhos = solveSmall(sub(R, order-1), b[:order-1])
	case mt != nil && order == 1:
		rhos = []float64{0.5}
	case mt != nil:
		rhos = solveSmall(R, b)
	}
	at, st, ss := 1-s[ti], s[ti], s[si]
	out := make([]float64, len(x))
	for j := range x {
		res := 0.0
		for k, d := range d1s {
			res += rhos[k] * d[j]
		}
		if mt != nil {
			res += rhos[len(rhos)-1] * (mt[j] - m0[j])
		}
		out[j] = st/ss*x[j] - at*hPhi1*m0[j] - at*bh*res
	}
	return out
}

func sub(R [][]float64, n int) [][]float64 {
	out := make([][]float64, n)
	for i := range n {
		out[i] = R[i][:n]
	}
	return out
}

// refUniPC transcribes UniPCMultistepScheduler.step (bh2, order 2, predict_x0, lower_order_final) on
// sigmas whose first entry already carries diffusers' −1e-6 offset.
func refUniPC(f f64Flow, x []float64, s []float64) []float64 {
	n := len(s) - 1
	var outs [][]float64
	var last []float64
	order, lowerNums := 0, 0
	for i := range n {
		m := f.x0(x, s[i])
		if i > 0 {
			x = uniUpdate(last, outs, s, i-1, i, order, m)
		}
		outs = append(outs, m)
		order = min(2, n-i, lowerNums+1)
		last = x
		x = uniUpdate(x, outs, s, i, i+1, order, nil)
		lowerNums = min(lowerNums+1, 2)
	}
	return x
}

func TestUniPCMatchesDiffusers(t *testing.T) {
	f := f64Flow{&AnalyticFlow{Target: testMixture(t)}}
	for _, n := range []int{1, 2, 3, 8, 20} {
		s := uniformSigmas(1, 0, n)
		s[n] = 0
		x32 := normalDraws(17, 64)
		x64 := make([]float64, len(x32))
		for j, v := range x32 {
			x64[j] = float64(v)
		}
		if err := UniPC(context.Background(), f.AnalyticFlow, x32, s, Options{}); err != nil {
			t.Fatal(err)
		}
		ref := append([]float64(nil), s...)
		ref[0] -= 1e-6 // diffusers' set_timesteps offset
		if d := maxAbsDiff(x32, refUniPC(f, x64, ref)); d > 2e-6 {
			t.Errorf("%d steps: max |rflow − diffusers float64| = %.3g", n, d)
		}
	}
}

// refAncestralRF transcribes ComfyUI's sample_euler_ancestral_RF (twoS false) and
// sample_dpmpp_2s_ancestral_RF (twoS true).
func refAncestralRF(f f64Flow, x, s []float64, eta, sNoise float64, noise NoiseSource, twoS bool) []float64 {
	for i := range len(s) - 1 {
		den := f.x0(x, s[i])
		if s[i+1] == 0 {
			x = den
			continue
		}
		sd := s[i+1] * (1 + (s[i+1]/s[i]-1)*eta)
		a1, ad := 1-s[i+1], 1-sd
		rc := math.Sqrt(s[i+1]*s[i+1] - sd*sd*a1*a1/(ad*ad))
		if twoS {
			ss := 0.9999
			if s[i] != 1 {
				lf := func(v float64) float64 { return math.Log((1 - v) / v) }
				ss = 1 / (math.Exp(lf(s[i])+0.5*(lf(sd)-lf(s[i]))) + 1)
			}
			u := make([]float64, len(x))
			for j := range u {
				u[j] = ss/s[i]*x[j] + (1-ss/s[i])*den[j]
			}
			den = f.x0(u, ss)
		}
		r := sd / s[i]
		z := noise64(noise, len(x))
		for j := range x {
			x[j] = r*x[j] + (1-r)*den[j]
			if eta > 0 {
				x[j] = a1/ad*x[j] + z[j]*sNoise*rc
			}
		}
	}
	return x
}

// refDPMPP2MSDE transcribes ComfyUI's sample_dpmpp_2m_sde (midpoint) with CONST λ = −logit(σ) and
// offset_first_sigma_for_snr.
func refDPMPP2MSDE(f f64Flow, x, s []float64, eta, sNoise float64, noise NoiseSource) []float64 {
	s = append([]float64(nil), s...)
	if s[0] >= 1 {
		s[0] = 1 - 1e-4
	}
	lam := func(v float64) float64 { return -math.Log(v / (1 - v)) }
	var old []float64
	var h, hLast float64
	for i := range len(s) - 1 {
		den := f.x0(x, s[i])
		if s[i+1] == 0 {
			x = den
		} else {
			h = lam(s[i+1]) - lam(s[i])
			he := h * (eta + 1)
			at := s[i+1] * math.Exp(lam(s[i+1]))
			z := noise64(noise, len(x))
			for j := range x {
				x[j] = s[i+1]/s[i]*math.Exp(-h*eta)*x[j] + at*-math.Expm1(-he)*den[j]
				if old != nil {
					x[j] += 0.5 * at * -math.Expm1(-he) * (1 / (hLast / h)) * (den[j] - old[j])
				}
				x[j] += z[j] * s[i+1] * math.Sqrt(-math.Expm1(-2*h*eta)) * sNoise
			}
		}
		old, hLast = den, h
	}
	return x
}

// refLCM transcribes ComfyUI's sample_lcm with CONST noise_scaling.
func refLCM(f f64Flow, x, s []float64, sNoise float64, noise NoiseSource) []float64 {
	for i := range len(s) - 1 {
		x = f.x0(x, s[i])
		if s[i+1] > 0 {
			z := noise64(noise, len(x))
			for j := range x {
				x[j] = s[i+1]*(z[j]*sNoise) + (1-s[i+1])*x[j]
			}
		}
	}
	return x
}

func TestFlowSamplersMatchComfyUI(t *testing.T) {
	f := f64Flow{&AnalyticFlow{Target: testMixture(t)}}
	type refFunc func(x, s []float64, o Options) []float64
	cases := []struct {
		name string
		run  SamplerFunc
		eta  float64
		ref  refFunc
	}{
		{"euler_ancestral", EulerAncestral, 1, func(x, s []float64, o Options) []float64 {
			return refAncestralRF(f, x, s, o.Eta, o.SNoise, o.Noise, false)
		}},
		{"euler_ancestral eta 0.5", EulerAncestral, 0.5, func(x, s []float64, o Options) []float64 {
			return refAncestralRF(f, x, s, o.Eta, o.SNoise, o.Noise, false)
		}},
		{"dpmpp_2s_ancestral", DPMPP2SAncestral, 1, func(x, s []float64, o Options) []float64 {
			return refAncestralRF(f, x, s, o.Eta, o.SNoise, o.Noise, true)
		}},
		{"dpmpp_2m_sde", DPMPP2MSDE, 1, func(x, s []float64, o Options) []float64 {
			return refDPMPP2MSDE(f, x, s, o.Eta, o.SNoise, o.Noise)
		}},
		{"dpmpp_2m_sde eta 0.3", DPMPP2MSDE, 0.3, func(x, s []float64, o Options) []float64 {
			return refDPMPP2MSDE(f, x, s, o.Eta, o.SNoise, o.Noise)
		}},
		{"lcm", LCM, 1, func(x, s []float64, o Options) []float64 { return refLCM(f, x, s, o.SNoise, o.Noise) }},
	}
	for _, c := range cases {
		for _, s := range [][]float64{uniformSigmas(1, 0, 7), diffusersFlowSigmas(6, 3)} {
			x32 := normalDraws(19, 64)
			x64 := make([]float64, len(x32))
			for j, v := range x32 {
				x64[j] = float64(v)
			}
			o := Options{Eta: c.eta, SNoise: 0.9, Noise: seededNoise(5)}
			if err := c.run(context.Background(), f.AnalyticFlow, x32, s, o); err != nil {
				t.Fatal(err)
			}
			o.Noise = seededNoise(5)
			if d := maxAbsDiff(x32, c.ref(x64, s, o)); d > 5e-6 {
				t.Errorf("%s on σ from %v: max |rflow − ComfyUI float64| = %.3g", c.name, s[0], d)
			}
		}
	}
}

func TestSamplerCrossChecks(t *testing.T) {
	f := &AnalyticFlow{Target: testMixture(t)}
	run := func(fn SamplerFunc, s []float64, o Options) []float32 {
		x := normalDraws(23, 64)
		if err := fn(context.Background(), f, x, s, o); err != nil {
			t.Fatal(err)
		}
		return x
	}
	diff := func(a, b []float32) float64 {
		m := 0.0
		for j := range a {
			m = max(m, math.Abs(float64(a[j]-b[j])))
		}
		return m
	}
	u := uniformSigmas(1, 0, 12)
	// On uniform steps the Lagrange weights of lms are iPNDM's fixed Adams–Bashforth weights.
	if d := diff(run(LMS, u, Options{}), run(IPNDM, u, Options{})); d > 1e-6 {
		t.Errorf("lms vs ipndm on uniform steps: %.3g", d)
	}
	// Without noise, dpmpp_2m_sde is dpmpp_2m (same λ, same midpoint term; both end with x = x0).
	s := diffusersFlowSigmas(20, 3)
	if d := diff(run(DPMPP2MSDE, s, Options{}), run(DPMPP2M, s, Options{})); d > 1e-6 {
		t.Errorf("dpmpp_2m_sde(η=0) vs dpmpp_2m: %.3g", d)
	}
	// η = 0 ancestral steps are DDIM, i.e. the first-order data-prediction step of dpmpp_2m.
	two := []float64{0.8, 0.5}
	if d := diff(run(EulerAncestral, two, Options{}), run(DPMPP2M, two, Options{})); d > 1e-6 {
		t.Errorf("euler_ancestral(η=0) vs first-order DPM-Solver++ step: %.3g", d)
	}
}
