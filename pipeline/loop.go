package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rflowrt/rflow/internal/half"
	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/scheduler"
	"github.com/rflowrt/rflow/vae"
)

// pass is one transformer run per step: its inputs in session order, its output, and the per-step
// inputs the loop fills (hidden states and timestep).
type pass struct {
	in     []*ort.Tensor
	out    []*ort.Tensor
	x, ts  *ort.Tensor
	buf    []float32 // the output as float32 (unused when the output is float32: read in place)
	xsBuf  []float32 // staging for hidden states of a non-float32 input
	copies int       // how many copies of the latents x holds (2 for SD3 CFG)
}

// denoiser is the transformer as a scheduler.Model: it maps σ to the timestep input, lays the latents
// out as the export wants them, runs the passes guidance needs and combines their predictions. Every
// tensor and buffer is allocated once per generation; a step allocates nothing in Go.
type denoiser struct {
	sess *ort.Session
	flux bool
	// b, c, h, w are the batch and the NCHW latent shape; n = b·c·h·w.
	b, c, h, w, n int

	main, neg, skip *pass       // neg: FLUX true CFG; skip: SD3 skip-layer guidance
	fx              *fluxExtras // FLUX Fill channels and Kontext reference tokens (nil: none)
	cfg             float32
	trueCFG         float32
	slgScale        float32
	slgStart        float64
	slgStop         float64

	// sigmas and modelTS are the walked schedule; numTrain is N; tsScale the export's timestep scale.
	sigmas, modelTS []float64
	family          scheduler.Family
	numTrain        float32
	tsScale         float64
	cur             int // index of the last on-grid σ seen: the step in progress

	comb []float32 // combined prediction in the export's layout

	// guider is the request's guidance rule (nil: plain CFG); eval the call in progress, which rules
	// that depend on the step read; xPacked FLUX's packed latents for rules that read x.
	guider  *scheduler.Guider
	eval    scheduler.Eval
	xPacked []float32
	calls   int // model calls that ran the transformer

	tensors     []*ort.Tensor
	transformer time.Duration
	inModel     time.Duration
	// observe, when set (tests), sees every pass's raw output in the export's layout.
	observe func(kind string, raw []float32)
}

// steps is the number of steps of the walked schedule.
func (d *denoiser) steps() int { return len(d.sigmas) - 1 }

// timestep returns the transformer's timestep input for a call — the schedule's own model timestep
// when the call is at a grid σ of its step (exact, integer-truncated for dpmpp/unipc), else the family's
// mapping of float32(σ)·N (the intermediate points of midpoint, RK4, …) — times the export's timestep
// scale. The call's step becomes the step in progress (d.cur), which error messages and skip-layer
// guidance use.
func (d *denoiser) timestep(e scheduler.Eval) float64 {
	idx := -1
	switch {
	case e.Total == d.steps() && e.Index >= 0 && e.Index < e.Total:
		d.cur = e.Index
		if e.T == d.sigmas[e.Index] {
			idx = e.Index
		} else if e.T == d.sigmas[e.Index+1] {
			idx = e.Index + 1
		}
	case e.T == d.sigmas[0]: // adaptive samplers (dopri5) hit the grid only at its ends
		idx = 0
	case e.T == d.sigmas[len(d.sigmas)-1]:
		idx = len(d.sigmas) - 1
	}
	var t float64
	if idx >= 0 {
		t = d.modelTS[idx]
	} else {
		t = d.family.ModelTimestep(float64(float32(e.T) * d.numTrain))
	}
	if d.tsScale != 1 {
		t = float64(float32(t * d.tsScale))
	}
	return t
}

// Velocity implements scheduler.Model.
func (d *denoiser) Velocity(ctx context.Context, dst, x []float32, e scheduler.Eval) error {
	start := time.Now()
	defer func() { d.inModel += time.Since(start) }()
	if len(x) != d.n || len(dst) != d.n {
		return fmt.Errorf("pipeline: transformer: latents have %d values, want %d", len(x), d.n)
	}
	sigma := e.T
	t := d.timestep(e)
	d.calls++
	d.eval = e
	if d.xPacked != nil {
		packLatents(d.xPacked, x, d.b, d.c, d.h, d.w)
	}
	if err := d.fill(d.main, x, t); err != nil {
		return err
	}
	raw, err := d.run(ctx, d.main, sigma, "transformer output")
	if err != nil {
		return err
	}
	if d.flux {
		return d.fluxCombine(ctx, dst, raw, sigma)
	}
	return d.sd3Combine(ctx, dst, x, raw, t, sigma)
}

// sd3Combine applies CFG (uncond rows first) and skip-layer guidance, writing NCHW velocity to dst.
func (d *denoiser) sd3Combine(ctx context.Context, dst, x, raw []float32, t, sigma float64) error {
	n := d.n
	if d.main.copies == 1 {
		copy(dst, raw[:n])
		return nil
	}
	if err := d.guide(dst, raw[:n], raw[n:2*n], x, d.cfg); err != nil {
		return err
	}
	if d.skip == nil || !slgActive(d.cur, d.steps(), d.slgStart, d.slgStop) {
		return nil
	}
	if err := d.fill(d.skip, x, t); err != nil {
		return err
	}
	skip, err := d.run(ctx, d.skip, sigma, "transformer output (skip-layer pass)")
	if err != nil {
		return err
	}
	slgAdd(dst, raw[n:2*n], skip[:n], d.slgScale)
	return nil
}

// fluxCombine applies true CFG (a second, negative pass) and unpacks the prediction into dst.
func (d *denoiser) fluxCombine(ctx context.Context, dst, raw []float32, sigma float64) error {
	v := d.latentRows(raw, nil)
	if d.neg != nil {
		vneg, err := d.run(ctx, d.neg, sigma, "transformer output (negative pass)")
		if err != nil {
			return err
		}
		if err := d.guide(d.comb, d.latentRows(vneg, d.comb), v, d.xPacked, d.trueCFG); err != nil {
			return err
		}
		v = d.comb
	}
	unpackLatents(dst, v, d.b, d.c, d.h, d.w)
	return nil
}

// fill writes the latents (packed for FLUX, repeated for CFG) and the timestep into a pass's inputs.
func (d *denoiser) fill(p *pass, x []float32, t float64) error {
	xs := p.x.Float32s()
	if xs == nil {
		xs = p.xsBuf
	}
	for k := range p.copies {
		switch {
		case d.fx != nil:
			d.fx.pack(xs, x, d.b, d.c, d.h, d.w)
		case d.flux:
			packLatents(xs[k*d.n:(k+1)*d.n], x, d.b, d.c, d.h, d.w)
		default:
			copy(xs[k*d.n:(k+1)*d.n], x)
		}
	}
	if p.x.Float32s() == nil {
		if err := p.x.SetFloat32(xs); err != nil {
			return fmt.Errorf("pipeline: transformer input: %w", err)
		}
	}
	if ts := p.ts.Float32s(); ts != nil {
		for i := range ts {
			ts[i] = float32(t)
		}
		return nil
	}
	return setConst(p.ts, float32(t))
}

// run executes a pass and returns its output as float32, checked for NaN and infinities.
func (d *denoiser) run(ctx context.Context, p *pass, sigma float64, what string) ([]float32, error) {
	start := time.Now()
	err := d.sess.Run(ctx, p.in, p.out)
	d.transformer += time.Since(start)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, fmt.Errorf("pipeline: transformer at step %d of %d (σ=%.4g): %w", d.cur+1, d.steps(), sigma, err)
	}
	raw := p.out[0].Float32s()
	if raw == nil {
		if err := p.out[0].ReadFloat32(p.buf); err != nil {
			return nil, fmt.Errorf("pipeline: transformer output: %w", err)
		}
		raw = p.buf
	}
	if i := vae.FirstNonFinite(raw); i >= 0 {
		return nil, &NonFiniteError{What: what, Step: d.cur + 1, Total: d.steps(), Sigma: sigma, Index: i,
			Value: raw[i], Hint: hintPrecision}
	}
	if d.observe != nil {
		d.observe(what, raw)
	}
	return raw, nil
}

// setConst fills a float tensor of any float type with v, allocation-free.
func setConst(t *ort.Tensor, v float32) error {
	if f := t.Float32s(); f != nil {
		for i := range f {
			f[i] = v
		}
		return nil
	}
	var bits uint16
	switch t.Type() {
	case onnx.Float16:
		bits = half.FromFloat32(v)
	case onnx.BFloat16:
		bits = half.BFloat16FromFloat32(v)
	default:
		return fmt.Errorf("pipeline: tensor of type %v is not a float tensor", t.Type())
	}
	u := t.Uint16s()
	for i := range u {
		u[i] = bits
	}
	return nil
}

// close destroys every tensor the denoiser made.
func (d *denoiser) close() error {
	var errs []error
	for _, t := range d.tensors {
		errs = append(errs, t.Destroy())
	}
	d.tensors = nil
	return errors.Join(errs...)
}

// input allocates a tensor for a transformer input (the declared element type) and records it.
func (d *denoiser) input(name string, shape ...int64) (*ort.Tensor, error) {
	if info, ok := d.sess.Input(name); ok && info.Shape != nil && len(info.Shape) == 0 {
		return nil, fmt.Errorf("pipeline: transformer input %s is a scalar; rflow feeds one value per batch row, "+
			"as diffusers' exports take it (re-export with a [batch] %s)", name, name)
	}
	t, err := d.sess.NewInput(name, shape...)
	if err != nil {
		return nil, fmt.Errorf("pipeline: transformer input %s: %w", name, err)
	}
	d.tensors = append(d.tensors, t)
	return t, nil
}

// floats allocates a float input holding vals.
func (d *denoiser) floats(name string, vals []float32, shape ...int64) (*ort.Tensor, error) {
	t, err := d.input(name, shape...)
	if err != nil {
		return nil, err
	}
	if err := t.SetFloat32(vals); err != nil {
		return nil, fmt.Errorf("pipeline: transformer input %s: %w", name, err)
	}
	return t, nil
}

// ints allocates an input holding integer values: as integers for int32/int64 inputs, as floats for
// float ones (FLUX ids of non-Optimum exports).
func (d *denoiser) ints(name string, vals []int64, shape ...int64) (*ort.Tensor, error) {
	t, err := d.input(name, shape...)
	if err != nil {
		return nil, err
	}
	switch t.Type() {
	case onnx.Int32, onnx.Int64:
		err = t.SetInt64(vals)
	default:
		f := make([]float32, len(vals))
		for i, v := range vals {
			f[i] = float32(v)
		}
		err = t.SetFloat32(f)
	}
	if err != nil {
		return nil, fmt.Errorf("pipeline: transformer input %s: %w", name, err)
	}
	return t, nil
}

// newPass puts a pass's tensors in the session's input order and allocates its output, shaped like the
// hidden-states input.
func (d *denoiser) newPass(io TransformerIO, byName map[string]*ort.Tensor, rows int) (*pass, error) {
	p := &pass{copies: rows / d.b, x: byName[io.HiddenStates], ts: byName[io.Timestep]}
	for _, info := range d.sess.Inputs() {
		t := byName[info.Name]
		if t == nil {
			return nil, fmt.Errorf("pipeline: transformer input %s: rflow has nothing to feed it", info)
		}
		p.in = append(p.in, t)
	}
	shape := slices.Clone(p.x.Shape())
	if d.flux { // the prediction has the latents' 4c channels (Fill's hidden states have more)
		shape[len(shape)-1] = int64(4 * d.c)
	}
	out, err := d.sess.NewOutput(io.Output, shape...)
	if err != nil {
		return nil, fmt.Errorf("pipeline: transformer output %s: %w", io.Output, err)
	}
	d.tensors = append(d.tensors, out)
	p.out = []*ort.Tensor{out}
	if out.Float32s() == nil {
		p.buf = make([]float32, out.Len())
	}
	if p.x.Float32s() == nil {
		p.xsBuf = make([]float32, p.x.Len())
	}
	return p, nil
}

// newDenoiser allocates the transformer passes of a plan.
func (p *Pipeline) newDenoiser(sess *ort.Session, pl *plan, cond conditioning) (*denoiser, error) {
	d := &denoiser{sess: sess, flux: pl.flux, b: pl.batch, c: pl.c, h: pl.h, w: pl.w, cfg: float32(pl.cfg),
		trueCFG: float32(pl.trueCFG), sigmas: pl.sigmas, modelTS: pl.modelTS, family: p.m.Family,
		numTrain: float32(p.m.Scheduler.NumTrainTimesteps), tsScale: p.m.Transformer.TimestepScale, observe: p.observe}
	d.n = d.b * d.c * d.h * d.w
	if d.tsScale == 0 {
		d.tsScale = 1
	}
	var err error
	if pl.flux {
		d.comb = make([]float32, d.n)
		if pl.edit != nil {
			d.fx = pl.edit.fx
		}
		err = d.setupFlux(p.m.Transformer, cond, pl.guidance)
	} else {
		r := pl.req
		d.slgScale, d.slgStart, d.slgStop = float32(r.SLGScale), r.SLGStart, r.SLGStop
		err = d.setupSD3(p.m.Transformer, cond, r.SLGLayers)
	}
	if err == nil {
		err = d.newGuider(pl)
	}
	if err != nil {
		return nil, errors.Join(err, d.close())
	}
	return d, nil
}

// denoise loads the transformer, runs the sampler over the plan's σ from x (in place) and releases the
// transformer.
func (p *Pipeline) denoise(ctx context.Context, pl *plan, cond conditioning, x []float32, tm *Timings) error {
	sess, err := p.ms.transformer(ctx)
	if err != nil {
		return err
	}
	d, err := p.newDenoiser(sess, pl, cond)
	if err != nil {
		return err
	}
	o := scheduler.DefaultOptions()
	o.Callback = p.stepCallback(ctx, pl, d)
	if pl.sampler.Stochastic {
		src, err := stepNoise(pl)
		if err != nil {
			return errors.Join(fmt.Errorf("pipeline: step noise: %w", err), d.close())
		}
		o.Noise = src
	}
	var model scheduler.Model = d
	var cache *scheduler.CachedModel
	if pl.cache.Kind != scheduler.StepCacheOff {
		cache = scheduler.NewCachedModel(d, pl.cache)
		model = cache
	}
	run := pl.sampler.Func
	if pl.req.SamplerFunc != nil {
		run = pl.req.SamplerFunc
	}
	start := time.Now()
	err = run(ctx, model, x, pl.sigmas, o)
	tm.Denoise = time.Since(start)
	tm.Transformer, tm.Scheduler, tm.Steps = d.transformer, tm.Denoise-d.inModel, pl.steps()
	tm.ModelCalls = d.calls
	if cache != nil {
		tm.CachedCalls = cache.Skipped()
	}
	if err != nil {
		var nf *NonFiniteError
		if errors.As(err, &nf) {
			err = nf // the step and component say it all; drop the sampler's wrapping
		}
		return errors.Join(ctxErr(ctx, err), d.close())
	}
	if err := d.close(); err != nil {
		return fmt.Errorf("pipeline: transformer tensors: %w", err)
	}
	return p.ms.release(p.ms.closeTransformer)
}

// stepCallback checks each step's latents, reports progress and draws previews.
func (p *Pipeline) stepCallback(ctx context.Context, pl *plan, d *denoiser) scheduler.StepFunc {
	total := pl.steps()
	every := pl.req.PreviewEvery
	return func(st scheduler.Step) error {
		pl.edit.afterStep(st) // inpainting's blend, before anything sees the step
		if i := vae.FirstNonFinite(st.X); i >= 0 {
			return &NonFiniteError{What: "latents after the step", Step: st.Index + 1, Total: total, Sigma: st.Sigma,
				Index: i, Value: st.X[i], Hint: "the sampler or the transformer diverged; " + hintPrecision}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if pl.req.OnStep != nil {
			pl.req.OnStep(st)
		}
		p.ms.events.emit(Event{Stage: StageDenoise, Step: st.Index + 1, Total: total, Sigma: st.Sigma})
		if every > 0 && pl.req.OnPreview != nil && ((st.Index+1)%every == 0 || st.Index+1 == total) {
			p.preview(pl, st)
		}
		return ctx.Err()
	}
}

// preview sends a latent→RGB picture of the first image's x0 prediction (or of the latents, for a
// sampler that reports none) to OnPreview. A preview that fails is skipped: it never stops a run.
func (p *Pipeline) preview(pl *plan, st scheduler.Step) {
	src := st.Denoised
	if src == nil {
		src = st.X
	}
	f := vae.SD3PreviewFactors()
	if pl.flux {
		f = vae.FluxPreviewFactors()
	}
	img, err := vae.Preview(src[:pl.c*pl.h*pl.w], pl.c, pl.h, pl.w, f)
	if err == nil {
		pl.req.OnPreview(st.Index+1, img)
	}
}
