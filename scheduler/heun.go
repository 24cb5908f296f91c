package scheduler

import "context"

// Heun is Heun's second-order method on dx/dt = v (Karras et al. 2022, Algorithm 2 with s_churn = 0),
// as diffusers' FlowMatchHeunDiscreteScheduler and ComfyUI's sample_heun compute it
// (flow-sampling.md §2.7): d = v(x, σ); x̃ = x + (σn − σ)·d; d2 = v(x̃, σn); x ← x + (σn − σ)·(d + d2)/2.
// A step that ends at σn = 0 is a plain Euler step, so a schedule ending at 0 costs 2N − 1 model calls.
// diffusers forms d as (x − (x − σ·v))/σ, which is v up to float32 rounding; this uses v itself and
// does the per-element arithmetic in float64, rounding x and x̃ to float32 once.
func Heun(ctx context.Context, m Model, x []float32, sigmas []float64, o Options) error {
	st, err := newStepper(ctx, "heun", m, x, sigmas, o, false)
	if err != nil {
		return err
	}
	n := len(x)
	v, v2, xt := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range st.steps() {
		t, tn := sigmas[i], sigmas[i+1]
		if err := st.call(i, v, x, t); err != nil {
			return err
		}
		st.denoised(x, v, t)
		dt := tn - t
		if tn == 0 {
			addScaled(x, x, v, dt)
		} else {
			addScaled(xt, x, v, dt)
			if err := st.call(i, v2, xt, tn); err != nil {
				return err
			}
			h := dt / 2
			for j := range x {
				x[j] = float32(float64(x[j]) + h*(float64(v[j])+float64(v2[j])))
			}
		}
		if err := st.report(i, nil); err != nil {
			return err
		}
	}
	return nil
}

// addScaled writes dst = f32(x + a·y), computed in float64 (dst may alias x).
func addScaled(dst, x, y []float32, a float64) {
	x, y = x[:len(dst)], y[:len(dst)]
	for j := range dst {
		dst[j] = float32(float64(x[j]) + a*float64(y[j]))
	}
}
