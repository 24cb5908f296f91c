package vae

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"

	"github.com/rflowrt/rflow/internal/compiler/arch"
	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/ort"
)

// A streamed decode runs the decoder's stem (up to the mid block, at latent resolution) whole, then
// every up-block layer in row strips (arch.DecoderSteps), holding at most a layer's input and output
// at full resolution in buffers of its own: a ResNet writes its output over its input, the
// GroupNorms take the statistics of the whole tensor, accumulated in float64 as each strip is
// written. The pixels are those of the whole decode (convolutions see the same rows; the norms the
// same statistics) while the peak falls from ~5 full-resolution tensors plus ORT's buffers to two.

// stripValues is the size, in float32 values, that sets a strip's height: the widest of its input and
// output tensors holds about this many (4 MiB), so ORT's buffers for a strip stay small beside the
// full-resolution tensors, while a strip is still thousands of pixels wide for the convolution kernels
// (at 1024² the bench decode peaked 53 MiB higher with twice this).
const stripValues = 1 << 20

// errNotStreamable says why a decoder export cannot be streamed; LoadDecoder then loads it whole.
var errNotStreamable = errors.New("not streamable")

// streamer is a loaded streamed decoder.
type streamer struct {
	stem   *graph
	steps  []streamStep
	groups int
	eps    float64
	strip  int // stripValues; tests lower it to make many strips of small images
}

// streamStep is one arch.VAEStep with its strip sessions and norm parameters.
type streamStep struct {
	arch.VAEStep
	first, second *ort.Session // ResNet: norm1, conv1 (and its shortcut), then norm2, conv2 and the residual; upsampler and output: first
	gamma1, beta1 []float32    // the norm before first (norm1 or conv_norm_out)
	gamma2, beta2 []float32    // norm2
}

// loadStreamer builds the stem and strip sessions of the decoder export at path from its own weights,
// on the CPU. It returns errNotStreamable (wrapped) when the export does not name its parameters, the
// folder has no AutoencoderKL config.json, or the provider is not the CPU.
func loadStreamer(ctx context.Context, path string, so ort.SessionOptions) (*streamer, error) {
	if so.Provider != "" && so.Provider != "cpu" {
		return nil, fmt.Errorf("%w: provider %s", errNotStreamable, so.Provider)
	}
	conf, err := arch.ReadConfig(filepath.Join(filepath.Dir(path), "config.json"))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotStreamable, err)
	}
	cfg, err := arch.ParseVAEConfig(conf)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotStreamable, err)
	}
	m, err := onnx.ReadModel(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotStreamable, err)
	}
	w, ok := newExportWeights(m)
	if !ok {
		return nil, fmt.Errorf("%w: the export does not name its parameters", errNotStreamable)
	}
	s := &streamer{groups: cfg.NormGroups, eps: 1e-6, strip: stripValues}
	ok = false
	defer func() {
		if !ok {
			s.close()
		}
	}()
	stem, err := arch.VAEDecoderStem(w, conf, arch.IO{})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotStreamable, err)
	}
	// every session would otherwise keep an arena as large as its largest run (the stem's, at latent
	// resolution, is larger than a strip's), and the strips a memory pattern; run one after another,
	// they share one arena
	strip := so
	strip.SharedArena, strip.LowMem, strip.CacheDir = true, true, ""
	stemOpts := so
	stemOpts.SharedArena = true
	sess, err := sessionOf(ctx, "vae decoder stem", stem, stemOpts)
	if err != nil {
		return nil, err
	}
	s.stem = &graph{sess: sess, what: "vae decoder stem", path: path, in: sess.Inputs()[0], out: sess.Outputs()[0]}
	for i, st := range cfg.DecoderSteps() {
		step := streamStep{VAEStep: st}
		if so.ProfilePrefix != "" { // a file per session: they would share the second in its name
			strip.ProfilePrefix = fmt.Sprintf("%s-strip%02d", so.ProfilePrefix, i)
		}
		if err := step.load(ctx, w, conf, cfg.Act, strip); err != nil {
			s.steps = append(s.steps, step)
			return nil, err
		}
		s.steps = append(s.steps, step)
	}
	ok = true
	return s, nil
}

// sessionOf loads a built model.
func sessionOf(ctx context.Context, name string, m *onnx.Model, so ort.SessionOptions) (*ort.Session, error) {
	data, err := m.Marshal()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errNotStreamable, name, err)
	}
	sess, err := ort.NewSessionFromBytes(ctx, name, data, "", so)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	return sess, nil
}

// load builds the step's strip sessions and reads its norms.
func (st *streamStep) load(ctx context.Context, w *exportWeights, conf arch.Config, act string, so ort.SessionOptions) error {
	norm := func(name string, ch int) (gamma, beta []float32, err error) {
		if gamma, err = w.Float32(name+".weight", []int64{int64(ch)}); err == nil {
			beta, err = w.Float32(name+".bias", []int64{int64(ch)})
		}
		if err != nil {
			err = fmt.Errorf("%w: %v", errNotStreamable, err)
		}
		return gamma, beta, err
	}
	built := 0
	build := func(m *onnx.Model, err error) (*ort.Session, error) {
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errNotStreamable, err)
		}
		o := so
		if o.ProfilePrefix != "" { // a file per session: they would share the second in its name
			o.ProfilePrefix = fmt.Sprintf("%s-%d", o.ProfilePrefix, built)
		}
		built++
		return sessionOf(ctx, "vae decoder strip "+st.Prefix, m, o)
	}
	var err error
	switch st.Kind {
	case arch.VAEResnet:
		if st.gamma1, st.beta1, err = norm(st.Prefix+".norm1", st.In); err != nil {
			return err
		}
		if st.gamma2, st.beta2, err = norm(st.Prefix+".norm2", st.Out); err != nil {
			return err
		}
		first := arch.StripConv{Conv: st.Prefix + ".conv1", In: st.In, Out: st.Out, Act: act}
		if st.In != st.Out {
			first.Shortcut = st.Prefix + ".conv_shortcut"
		}
		if st.first, err = build(arch.VAEStripConv(w, conf, first)); err != nil {
			return err
		}
		st.second, err = build(arch.VAEStripConv(w, conf, arch.StripConv{Conv: st.Prefix + ".conv2", In: st.Out, Out: st.Out, Act: act, Residual: st.Out}))
	case arch.VAEUpsample:
		st.first, err = build(arch.VAEStripUpsample(w, st.Prefix, st.In))
	case arch.VAEOut:
		if st.gamma1, st.beta1, err = norm(st.Prefix+".conv_norm_out", st.In); err != nil {
			return err
		}
		// conv_act is always SiLU
		st.first, err = build(arch.VAEStripConv(w, conf, arch.StripConv{Conv: st.Prefix + ".conv_out", In: st.In, Out: st.Out, Act: "silu", NCHW: true}))
	}
	return err
}

func (s *streamer) close() error {
	if s == nil {
		return nil
	}
	errs := []error{s.stem.close()}
	for _, st := range s.steps {
		for _, sess := range []*ort.Session{st.first, st.second} {
			if sess != nil {
				errs = append(errs, sess.Close())
			}
		}
	}
	s.stem, s.steps = nil, nil
	return errors.Join(errs...)
}

// run decodes unscaled latents [b, C, h, w] into out [b, 3, S·h, S·w]: the stem for the whole batch,
// then the strips image by image.
func (s *streamer) run(ctx context.Context, in []float32, b, c, h, w, sf int, out []float32) error {
	ch := int(s.stem.out.Shape[1])
	feats, err := s.stem.run(ctx, in, [4]int{b, c, h, w}, [4]int{b, ch, h, w})
	if err != nil {
		return err
	}
	per := len(out) / b
	for i := range b {
		if err := s.image(ctx, feats[i*ch*h*w:(i+1)*ch*h*w], ch, h, w, out[i*per:(i+1)*per]); err != nil {
			return err
		}
	}
	return nil
}

// tensor is one image's activation [H, C, W] (rows major, so a strip of rows is contiguous; see
// arch.VAEStripConv) in a bigBuf, with the per-channel sums of its values and squares (for the next
// GroupNorm).
type tensor struct {
	buf        *bigBuf
	c, h, w    int
	sum, sumSq []float64
}

func newTensor(c, h, w int) (*tensor, error) {
	buf, err := newBigBuf(c * h * w)
	if err != nil {
		return nil, err
	}
	return &tensor{buf: buf, c: c, h: h, w: w, sum: make([]float64, c), sumSq: make([]float64, c)}, nil
}

// rows is the window of rows [r0, r1).
func (t *tensor) rows(r0, r1 int) []float32 { return t.buf.f[r0*t.c*t.w : r1*t.c*t.w] }

// account adds rows [r0, r1) to the sums, in float64.
func (t *tensor) account(r0, r1 int) {
	for r := r0; r < r1; r++ {
		for c := range t.c {
			row := t.buf.f[(r*t.c+c)*t.w : (r*t.c+c+1)*t.w]
			var s0, s1, q0, q1 float64
			i := 0
			for ; i+1 < len(row); i += 2 {
				a, b := float64(row[i]), float64(row[i+1])
				s0, s1 = s0+a, s1+b
				q0, q1 = q0+a*a, q1+b*b
			}
			if i < len(row) {
				a := float64(row[i])
				s0, q0 = s0+a, q0+a*a
			}
			t.sum[c] += s0 + s1
			t.sumSq[c] += q0 + q1
		}
	}
}

// affine is GroupNorm(groups, eps, gamma, beta) over t as a per-channel x·scale + shift.
func (t *tensor) affine(groups int, eps float64, gamma, beta []float32) (scale, shift []float32) {
	scale, shift = make([]float32, t.c), make([]float32, t.c)
	per := t.c / groups
	n := float64(per * t.h * t.w)
	for g := range groups {
		var s, q float64
		for c := g * per; c < (g+1)*per; c++ {
			s, q = s+t.sum[c], q+t.sumSq[c]
		}
		mean := s / n
		rstd := 1 / math.Sqrt(max(q/n-mean*mean, 0)+eps)
		for c := g * per; c < (g+1)*per; c++ {
			a := float64(gamma[c]) * rstd
			scale[c], shift[c] = float32(a), float32(float64(beta[c])-mean*a)
		}
	}
	return scale, shift
}

// image runs the steps on one image's stem features [ch, h, w] (NCHW), writing its pixels [3, H, W]
// to out.
func (s *streamer) image(ctx context.Context, feats []float32, ch, h, w int, out []float32) error {
	x, err := newTensor(ch, h, w)
	if err != nil {
		return err
	}
	defer func() { x.buf.release() }()
	for c := range ch {
		for r := range h {
			copy(x.buf.f[(r*ch+c)*w:(r*ch+c+1)*w], feats[(c*h+r)*w:(c*h+r+1)*w])
		}
	}
	x.account(0, h)
	for _, st := range s.steps {
		if err := ctx.Err(); err != nil {
			return err
		}

		var err error
		switch st.Kind {
		case arch.VAEResnet:
			x, err = s.resnet(ctx, st, x)
		case arch.VAEUpsample:
			var y *tensor
			if y, err = newTensor(x.c, 2*x.h, 2*x.w); err != nil {
				return err
			}
			err = s.strips(ctx, pass{sess: st.first, x: x, consume: true, y: y})
			x.buf.release()
			x = y
		case arch.VAEOut:
			scale, shift := x.affine(s.groups, s.eps, st.gamma1, st.beta1)
			err = s.strips(ctx, pass{sess: st.first, x: x, scale: scale, shift: shift,
				y: &tensor{buf: &bigBuf{f: out}, c: 3, h: x.h, w: x.w}})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// resnet runs a ResNet step on x and returns its output, which takes x's buffer: the first half
// writes the inner tensor (and, when the width changes, the shortcut of x over x's rows as the strips
// pass them, giving the rest back), the second half writes the output over the shortcut (or x).
func (s *streamer) resnet(ctx context.Context, st streamStep, x *tensor) (*tensor, error) {
	mid, err := newTensor(st.Out, x.h, x.w)
	if err != nil {
		return x, err
	}
	defer mid.buf.release()
	res := x
	first := pass{sess: st.first, x: x, y: mid}
	first.scale, first.shift = x.affine(s.groups, s.eps, st.gamma1, st.beta1)
	if st.In != st.Out {
		// the shortcut overwrites x when no strip's output rows reach the rows the next strip reads:
		// r1·out ≤ (r1 − 1)·in for every strip end r1, so for the first (the smallest)
		rows := s.rowsOf(first)
		if rows*st.Out <= (rows-1)*st.In {
			res = &tensor{buf: x.buf, c: st.Out, h: x.h, w: x.w}
			first.consume = true
		} else if res, err = newTensor(st.Out, x.h, x.w); err != nil {
			return x, err
		}
		first.sc = res
	}
	if err := s.strips(ctx, first); err != nil {
		return x, err
	}
	if res.buf != x.buf {
		x.buf.release()
	}
	// the output overwrites the residual: the graph reads a strip's residual rows before it writes
	// them, and later strips read only later rows
	y := &tensor{buf: res.buf, c: st.Out, h: x.h, w: x.w, sum: make([]float64, st.Out), sumSq: make([]float64, st.Out)}
	second := pass{sess: st.second, x: mid, res: res, y: y, consume: true}
	second.scale, second.shift = mid.affine(s.groups, s.eps, st.gamma2, st.beta2)
	err = s.strips(ctx, second)
	y.buf.shrink(y.c * y.h * y.w)
	return y, err
}

// pass is one run of a strip session over a tensor.
type pass struct {
	sess         *ort.Session
	x            *tensor   // the input, read with a row of halo on each side
	scale, shift []float32 // x's norm as an affine (nil for an upsampler)
	res          *tensor   // the residual rows (nil: none)
	y            *tensor   // the output rows (twice x's size for an upsampler); a nil sum: the NCHW output
	sc           *tensor   // the shortcut output's rows (nil: none), possibly over x's buffer
	consume      bool      // x is dead after the pass: give its rows back as the strips leave them
}

// rowsOf is the height of p's strips: its widest tensor holds about s.strip values.
func (s *streamer) rowsOf(p pass) int {
	up := p.y.h / p.x.h
	return min(max(1, s.strip/(max(p.x.c, up*up*p.y.c)*p.x.w)), p.x.h)
}

// strips runs p strip by strip. Inputs and the HCW output are windows of the tensors' buffers; the
// shortcut output is staged and copied after each run, since it may overwrite x.
func (s *streamer) strips(ctx context.Context, p pass) error {
	x, y := p.x, p.y
	up := y.h / x.h // 2 for an upsampler
	nchw := y.sum == nil
	rows := s.rowsOf(p)
	var fixed []*ort.Tensor // scale, shift
	defer func() {
		for _, t := range fixed {
			t.Destroy()
		}
	}()
	for _, v := range [][]float32{p.scale, p.shift} {
		if v == nil {
			continue
		}
		t, err := ort.WrapFloat32(v, int64(x.c), 1, 1)
		if err != nil {
			return err
		}
		fixed = append(fixed, t)
	}
	pads, err := ort.NewTensor(onnx.Int64, 8)
	if err != nil {
		return err
	}
	defer pads.Destroy()
	var staged []float32 // the NCHW output's or the shortcut's strip
	for r0 := 0; r0 < x.h; r0 += rows {
		r1 := min(r0+rows, x.h)
		lo, hi := max(r0-1, 0), min(r1+1, x.h)
		if err := pads.SetInt64([]int64{0, 0, int64(1 - (r0 - lo)), 0, 0, 0, int64(1 - (hi - r1)), 0}); err != nil {
			return err
		}
		n := up * (r1 - r0)
		var tensors []*ort.Tensor
		wrap := func(data []float32, shape ...int) *ort.Tensor {
			if err != nil {
				return nil
			}
			dims := make([]int64, len(shape))
			for i, d := range shape {
				dims[i] = int64(d)
			}
			var t *ort.Tensor
			if t, err = ort.WrapFloat32(data, dims...); err == nil {
				tensors = append(tensors, t)
			}
			return t
		}
		ins := []*ort.Tensor{wrap(x.rows(lo, hi), hi-lo, x.c, x.w)}
		ins = append(ins, fixed...)
		ins = append(ins, pads)
		if p.res != nil {
			ins = append(ins, wrap(p.res.rows(r0, r1), r1-r0, p.res.c, p.res.w))
		}
		var outs []*ort.Tensor
		switch {
		case nchw:
			staged = slices.Grow(staged[:0], n*y.c*y.w)[:n*y.c*y.w]
			outs = append(outs, wrap(staged, 1, y.c, n, y.w))
		default:
			outs = append(outs, wrap(y.rows(up*r0, up*r1), n, y.c, y.w))
		}
		if p.sc != nil {
			staged = slices.Grow(staged[:0], n*p.sc.c*p.sc.w)[:n*p.sc.c*p.sc.w]
			outs = append(outs, wrap(staged, n, p.sc.c, p.sc.w))
		}
		if err == nil {
			err = p.sess.Run(ctx, ins, outs)
		}
		for _, t := range tensors {
			t.Destroy()
		}
		if err != nil {
			return err
		}
		switch {
		case nchw:
			for c := range y.c {
				copy(y.buf.f[(c*y.h+up*r0)*y.w:(c*y.h+up*r1)*y.w], staged[c*n*y.w:(c+1)*n*y.w])
			}
		default:
			y.account(up*r0, up*r1)
		}
		written := 0 // the prefix of x's buffer the shortcut now holds
		if p.sc != nil {
			copy(p.sc.rows(r0, r1), staged)
			if p.sc.buf == x.buf {
				written = r1 * p.sc.c * p.sc.w
			}
		}
		if p.consume { // the next strip reads from row r1 − 1
			x.buf.drop(written, (r1-1)*x.c*x.w)
		}
	}
	return nil
}
