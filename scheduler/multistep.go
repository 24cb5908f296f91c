package scheduler

import "context"

// Linear multistep samplers: they keep the last few derivatives d = v (k-diffusion's to_d(x, σ, x0) =
// (x − x0)/σ is v on the Linear path) and end a schedule at σ = 0 with x = x0(x, σ), ComfyUI's
// "denoising step". That last step is an Euler step, so on schedules ending at 0 their global order is 2
// even though the interior formulas are of order up to 4.

// dHistory is a ring of derivative buffers: cur() is where the model writes this step's d, prev(k) the
// d of k steps ago (k = 1..3); rotate() after a step makes cur the newest history entry, no copying.
type dHistory struct{ buf [4][]float32 }

func newDHistory(n int) *dHistory {
	h := &dHistory{}
	for j := range h.buf {
		h.buf[j] = make([]float32, n)
	}
	return h
}

func (h *dHistory) cur() []float32       { return h.buf[0] }
func (h *dHistory) prev(k int) []float32 { return h.buf[k] }
func (h *dHistory) rotate() {
	h.buf[0], h.buf[1], h.buf[2], h.buf[3] = h.buf[3], h.buf[0], h.buf[1], h.buf[2]
}

// ipndmWeights are the fixed Adams–Bashforth weights of iPNDM by order (newest derivative first).
var ipndmWeights = [5][4]float64{
	{},
	{1},
	{3.0 / 2, -1.0 / 2},
	{23.0 / 12, -16.0 / 12, 5.0 / 12},
	{55.0 / 24, -59.0 / 24, 37.0 / 24, -9.0 / 24},
}

// IPNDM is ComfyUI's sample_ipndm (from zju-pi/diff-sampler, max_order 4): x ← x + (σn − σ)·Σ w_k·d_k
// with the fixed Adams–Bashforth weights of order min(4, i+1) (exact for uniform steps only), and
// x = x0 on a step to σ = 0.
func IPNDM(ctx context.Context, m Model, x []float32, sigmas []float64, o Options) error {
	return multistep(ctx, "ipndm", m, x, sigmas, o, func(i int, _ []float64) (w [4]float64, order int) {
		order = min(4, i+1)
		return ipndmWeights[order], order
	})
}

// LMS is k-diffusion's sample_lms (order 4): x ← x + Σ_j c_j·d_{i−j}, where c_j integrates the Lagrange
// basis polynomial of σ_{i−j} over [σ_i, σ_{i+1}] for the order min(4, i+1) (k-diffusion integrates
// with scipy quad; here 3-point Gauss–Legendre, exact for these cubics); x = x0 on a step to σ = 0.
func LMS(ctx context.Context, m Model, x []float32, sigmas []float64, o Options) error {
	return multistep(ctx, "lms", m, x, sigmas, o, func(i int, s []float64) (w [4]float64, order int) {
		order = min(4, i+1)
		for j := range order {
			w[j] = lmsCoeff(order, s, i, j) / (s[i+1] - s[i]) // multistep multiplies by the step
		}
		return w, order
	})
}

// multistep runs x ← x + (σn − σ)·Σ_k w_k·d_{i−k} with weights from weights(i, sigmas).
func multistep(ctx context.Context, name string, m Model, x []float32, sigmas []float64, o Options,
	weights func(i int, sigmas []float64) ([4]float64, int)) error {
	st, err := newStepper(ctx, name, m, x, sigmas, o, false)
	if err != nil {
		return err
	}
	h := newDHistory(len(x))
	for i := range st.steps() {
		t, tn := sigmas[i], sigmas[i+1]
		d := h.cur()
		if err := st.call(i, d, x, t); err != nil {
			return err
		}
		st.denoised(x, d, t)
		if tn == 0 {
			st.x0(x, x, d, t)
		} else {
			w, order := weights(i, sigmas)
			dt := tn - t
			d1, d2, d3 := h.prev(1), h.prev(2), h.prev(3)
			for j := range x {
				acc := w[0] * float64(d[j])
				if order > 1 {
					acc += w[1] * float64(d1[j])
				}
				if order > 2 {
					acc += w[2] * float64(d2[j])
				}
				if order > 3 {
					acc += w[3] * float64(d3[j])
				}
				x[j] = float32(float64(x[j]) + dt*acc)
			}
		}
		h.rotate()
		if err := st.report(i, nil); err != nil {
			return err
		}
	}
	return nil
}

// lmsCoeff is k-diffusion's linear_multistep_coeff: ∫_{σ_i}^{σ_{i+1}} Π_{k≠j} (τ − σ_{i−k})/(σ_{i−j} − σ_{i−k}) dτ.
func lmsCoeff(order int, s []float64, i, j int) float64 {
	// 3-point Gauss–Legendre on [−1, 1]: exact for degree ≤ 5.
	nodes := [3]float64{-0.7745966692414834, 0, 0.7745966692414834}
	weights := [3]float64{5.0 / 9, 8.0 / 9, 5.0 / 9}
	a, b := s[i], s[i+1]
	sum := 0.0
	for q := range nodes {
		tau := (a+b)/2 + (b-a)/2*nodes[q]
		prod := 1.0
		for k := range order {
			if k != j {
				prod *= (tau - s[i-k]) / (s[i-j] - s[i-k])
			}
		}
		sum += weights[q] * prod
	}
	return sum * (b - a) / 2
}
