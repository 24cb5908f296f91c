package scheduler

import (
	"context"
	"math"
)

// ancestralStep is ComfyUI's rectified-flow ancestral split of a step t → tn (flow-sampling.md §6.3):
// a deterministic move down to t_down = tn·(1 + (tn/t − 1)·η), then a rescale to α(tn) plus fresh noise
// that restores the marginal at tn. ComfyUI writes it with σ = t, α = 1 − t; here α and σ come from the
// path, which leaves the Linear formulas unchanged. t_down is clamped at 0 (ComfyUI lets η > 1 push it
// negative).
type ancestralStep struct {
	tDown   float64
	scale   float64 // α(tn)/α(t_down), applied after the move
	renoise float64 // √(σ(tn)² − σ(t_down)²·α(tn)²/α(t_down)²), clamped at 0 against rounding
}

func newAncestralStep(p Path, t, tn, eta float64) ancestralStep {
	td := max(0, tn*(1+(tn/t-1)*eta))
	an, ad := p.Alpha(tn), p.Alpha(td)
	sn, sd := p.Sigma(tn), p.Sigma(td)
	return ancestralStep{tDown: td, scale: an / ad, renoise: math.Sqrt(max(0, sn*sn-sd*sd*an*an/(ad*ad)))}
}

// ddimMove writes dst = cx·x + cx0·x0 for the deterministic move t → s (dst may alias x).
func ddimMove(p Path, dst, x, x0 []float32, t, s float64) {
	cx, cx0 := ddimCoefs(p, t, s)
	for j := range dst {
		dst[j] = float32(cx*float64(x[j]) + cx0*float64(x0[j]))
	}
}

// renoise applies x = scale·x + sNoise·renoise·z after an ancestral move (η > 0 only, as in ComfyUI);
// z is drawn only when the noise term is non-zero.
func (st *stepper) renoise(a ancestralStep, x, z []float32, t, tn float64) error {
	if st.o.Eta == 0 {
		return nil
	}
	c := st.o.SNoise * a.renoise
	if c == 0 || z == nil {
		for j := range x {
			x[j] = float32(a.scale * float64(x[j]))
		}
		return nil
	}
	if err := st.noise(z, t, tn); err != nil {
		return err
	}
	for j := range x {
		x[j] = float32(a.scale*float64(x[j]) + c*float64(z[j]))
	}
	return nil
}

// EulerAncestral is ComfyUI's sample_euler_ancestral_RF (k_diffusion/sampling.py, flow-sampling.md §6.3):
// m = x0(x, σ); on a step to 0, x = m; otherwise x ← (σ_down/σ)·x + (1 − σ_down/σ)·m and, if η > 0,
// x ← (α_n/α_down)·x + SNoise·renoise·z, with σ_down and renoise from ancestralStep. Eta = 0 makes it
// deterministic (DDIM); noise is drawn only when η > 0 and SNoise > 0.
func EulerAncestral(ctx context.Context, m Model, x []float32, sigmas []float64, o Options) error {
	noisy := o.Eta > 0 && o.SNoise > 0
	st, err := newStepper(ctx, "euler_ancestral", m, x, sigmas, o, noisy)
	if err != nil {
		return err
	}
	n, p := len(x), st.path
	v, md, z := make([]float32, n), make([]float32, n), []float32(nil)
	if noisy {
		z = make([]float32, n)
	}
	for i := range st.steps() {
		t, tn := sigmas[i], sigmas[i+1]
		if err := st.call(i, v, x, t); err != nil {
			return err
		}
		st.x0(md, x, v, t)
		if tn == 0 {
			copy(x, md)
		} else {
			a := newAncestralStep(p, t, tn, o.Eta)
			ddimMove(p, x, x, md, t, a.tDown)
			if err := st.renoise(a, x, z, t, tn); err != nil {
				return err
			}
		}
		if err := st.report(i, md); err != nil {
			return err
		}
	}
	return nil
}

// DPMPP2SAncestral is ComfyUI's sample_dpmpp_2s_ancestral_RF (flow-sampling.md §6.3): DPM-Solver++(2S)
// from σ to σ_down with its midpoint σ_s halfway in λ = log(α/σ) (σ_s = 0.9999 when σ = 1, where λ = −∞),
// u = (σ_s/σ)·x + (1 − σ_s/σ)·m, D = x0(u, σ_s), x ← (σ_down/σ)·x + (1 − σ_down/σ)·D, then the same
// renoise as euler_ancestral. A step to 0 is x = m (ComfyUI's Euler step x + d·(0 − σ) there equals m
// up to rounding), one model call; other steps take two.
func DPMPP2SAncestral(ctx context.Context, m Model, x []float32, sigmas []float64, o Options) error {
	noisy := o.Eta > 0 && o.SNoise > 0
	st, err := newStepper(ctx, "dpmpp_2s_ancestral", m, x, sigmas, o, noisy)
	if err != nil {
		return err
	}
	n := len(x)
	v, md, u, z := make([]float32, n), make([]float32, n), make([]float32, n), []float32(nil)
	if noisy {
		z = make([]float32, n)
	}
	for i := range st.steps() {
		t, tn := sigmas[i], sigmas[i+1]
		if err := st.call(i, v, x, t); err != nil {
			return err
		}
		st.x0(md, x, v, t)
		if tn == 0 {
			copy(x, md)
		} else if err := st.move2S(i, x, md, u, v, z, t, tn); err != nil {
			return err
		}
		if err := st.report(i, md); err != nil {
			return err
		}
	}
	return nil
}

// move2S is one DPM-Solver++(2S) ancestral step t → tn > 0 from x and m = x0(x, t); u and v are scratch.
func (st *stepper) move2S(i int, x, md, u, v, z []float32, t, tn float64) error {
	p := st.path
	a := newAncestralStep(p, t, tn, st.o.Eta)
	ts := 0.9999
	if t < 1 {
		ts = TimeAtLogSNR(p, (LogSNR(p, t)+LogSNR(p, a.tDown))/2)
	}
	ddimMove(p, u, x, md, t, ts)
	if err := st.call(i, v, u, ts); err != nil {
		return err
	}
	st.x0(v, u, v, ts) // v now holds D = x0(u, σ_s)
	ddimMove(p, x, x, v, t, a.tDown)
	return st.renoise(a, x, z, t, tn)
}
