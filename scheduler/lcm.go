package scheduler

import "context"

// LCM is ComfyUI's sample_lcm with the CONST (flow) noise_scaling (k_diffusion/sampling.py,
// model_sampling.py; flow-sampling.md §6.1): x = x0(x, σ); if σn > 0, x = σ(σn)·SNoise·z + α(σn)·x, i.e.
// σn·SNoise·z + (1 − σn)·x on Linear. Every step re-noises the model's x0 prediction to the next
// level, so only the x0 predictions matter (consistency-model sampling): meant for LCM/distilled
// models, whose x0 is a sample. With a posterior-mean x0 it does not sample the target (see
// EulerStochastic, which is the same update). SNoise = 0 adds no noise; ComfyUI's s_noise_end ramp and
// noise_clip_std are not offered.
func LCM(ctx context.Context, m Model, x []float32, sigmas []float64, o Options) error {
	noisy := o.SNoise > 0
	st, err := newStepper(ctx, "lcm", m, x, sigmas, o, noisy)
	if err != nil {
		return err
	}
	n := len(x)
	v, md, z := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range st.steps() {
		t, tn := sigmas[i], sigmas[i+1]
		if err := st.call(i, v, x, t); err != nil {
			return err
		}
		st.x0(md, x, v, t)
		if tn == 0 || !noisy {
			a := st.path.Alpha(tn)
			for j := range x {
				x[j] = float32(a * float64(md[j]))
			}
		} else {
			if err := st.noise(z, t, tn); err != nil {
				return err
			}
			a, s := st.path.Alpha(tn), st.path.Sigma(tn)*o.SNoise
			for j := range x {
				x[j] = float32(s*float64(z[j]) + a*float64(md[j]))
			}
		}
		if err := st.report(i, md); err != nil {
			return err
		}
	}
	return nil
}
