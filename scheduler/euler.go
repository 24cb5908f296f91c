package scheduler

import "context"

// Euler integrates dx/dt = v with Euler steps: x ← x + (σn − σ)·v. The arithmetic is diffusers'
// FlowMatchEulerDiscreteScheduler.step in float32 bit for bit (flow-sampling.md §2.5, §9.2):
// dt = float32(σn − σ), then x = f32(x + f32(dt·v)) per element, two roundings and no FMA. (dt is
// the float32 of the float64 difference; for float32 σ values that difference is exact whenever
// σn = 0 or σ/σn < 2^29, so dt is then torch's float32 σn − σ.) Equal to ComfyUI's sample_euler with
// s_churn = 0. Path-independent: the path only shapes the reported Denoised.
func Euler(ctx context.Context, m Model, x []float32, sigmas []float64, o Options) error {
	st, err := newStepper(ctx, "euler", m, x, sigmas, o, false)
	if err != nil {
		return err
	}
	v := make([]float32, len(x))
	for i := range st.steps() {
		t, tn := sigmas[i], sigmas[i+1]
		if err := st.call(i, v, x, t); err != nil {
			return err
		}
		st.denoised(x, v, t)
		eulerStep(x, v, float32(tn-t))
		if err := st.report(i, nil); err != nil {
			return err
		}
	}
	return nil
}

// eulerStep is x = f32(x + f32(dt·v)); the explicit float32 conversion of the product forbids the
// compiler from fusing it into an FMA (Go spec, "Arithmetic operators"), which would round once.
func eulerStep(x, v []float32, dt float32) {
	v = v[:len(x)]
	for i := range x {
		x[i] += float32(dt * v[i])
	}
}

// EulerStochastic is diffusers' FlowMatchEulerDiscreteScheduler with stochastic_sampling=True
// (flow-sampling.md §2.5): x0 = x − σ·v, then x = α(σn)·x0 + σ(σn)·noise, i.e. (1−σn)·x0 + σn·noise on
// Linear, in float32 arithmetic like torch. Every step forgets x and resamples the noise, so it only
// uses the model's x0 predictions. No noise is drawn for a final σn = 0 (diffusers draws and discards
// one tensor there). SNoise and Eta are ignored, as in diffusers. With a model whose x0 is the posterior
// mean E[x0|x] (any well-trained flow model) this does not sample the target: every step drops the
// posterior variance, and the spread shrinks (towards 1/√2 of the data's for a Gaussian as steps grow).
// It suits consistency/distilled models, whose x0 is itself a sample.
func EulerStochastic(ctx context.Context, m Model, x []float32, sigmas []float64, o Options) error {
	st, err := newStepper(ctx, "euler_stochastic", m, x, sigmas, o, true)
	if err != nil {
		return err
	}
	v := make([]float32, len(x))
	z := make([]float32, len(x))
	for i := range st.steps() {
		t, tn := sigmas[i], sigmas[i+1]
		if err := st.call(i, v, x, t); err != nil {
			return err
		}
		st.x0(v, x, v, t) // v now holds x0
		copy(x, v)
		if tn > 0 {
			if err := st.noise(z, t, tn); err != nil {
				return err
			}
			a, s := float32(st.path.Alpha(tn)), float32(st.path.Sigma(tn))
			for j := range x {
				x[j] = float32(a*v[j]) + float32(s*z[j])
			}
		}
		if err := st.report(i, v); err != nil {
			return err
		}
	}
	return nil
}
