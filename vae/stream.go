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
// output tensors holds about this many (8 MiB), so ORT's buffers for a strip stay small beside the
// full-resolution tensors, while a strip is still thousands of pixels wide for the convolution kernels.
const stripValues = 2 << 20

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
	first, second *ort.Session // ResNet: norm1+conv1, norm2+conv2+shortcut; upsampler and output: first
	gamma1, beta1 []float32    // the norm before first (norm1 or conv_norm_out)
	gamma2, beta2 []float32    // norm2
}

// loadStreamer builds the stem and strip sessions of the decoder export at path from its own weights,
// on the CPU. It returns errNotStreamable (wrapped) when the export does not name its parameters or
// the folder has no AutoencoderKL config.json.
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
	sess, err := sessionOf(ctx, "vae decoder stem", stem, so)
	if err != nil {
		return nil, err
	}
	s.stem = &graph{sess: sess, what: "vae decoder stem", path: path, in: sess.Inputs()[0], out: sess.Outputs()[0]}
	strip := so
	// every strip session would otherwise keep an arena as large as its strips, and its memory
	// pattern; the strips' buffers are small and short-lived
	strip.SharedArena, strip.LowMem, strip.CacheDir = true, true, ""
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
		if st.first, err = build(arch.VAEStripConv(w, conf, st.Prefix+".conv1", st.In, st.Out, 0, false, act, false)); err != nil {
			return err
		}
		st.second, err = build(arch.VAEStripConv(w, conf, st.Prefix+".conv2", st.Out, st.Out, st.In, true, act, false))
	case arch.VAEUpsample:
		st.first, err = build(arch.VAEStripUpsample(w, st.Prefix, st.In))
	case arch.VAEOut:
		if st.gamma1, st.beta1, err = norm(st.Prefix+".conv_norm_out", st.In); err != nil {
			return err
		}
		// conv_act is always SiLU
		st.first, err = build(arch.VAEStripConv(w, conf, st.Prefix+".conv_out", st.In, st.Out, 0, false, "silu", true))
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

		switch st.Kind {
		case arch.VAEResnet:
			mid, err := newTensor(st.Out, x.h, x.w)
			if err != nil {
				return err
			}
			scale, shift := x.affine(s.groups, s.eps, st.gamma1, st.beta1)
			err = s.strips(ctx, st.first, x, scale, shift, nil, mid)
			if err == nil {
				// the output overwrites the input: a strip's output rows start no later than its input
				// rows (out ≤ in channels), the graph reads its residual rows before it writes, and later
				// strips read only later rows
				y := &tensor{buf: x.buf, c: st.Out, h: x.h, w: x.w, sum: make([]float64, st.Out), sumSq: make([]float64, st.Out)}
				scale, shift = mid.affine(s.groups, s.eps, st.gamma2, st.beta2)
				err = s.strips(ctx, st.second, mid, scale, shift, x, y)
				x = y
				x.buf.shrink(x.c * x.h * x.w)
			}
			mid.buf.release()
			if err != nil {
				return err
			}
		case arch.VAEUpsample:
			y, err := newTensor(x.c, 2*x.h, 2*x.w)
			if err != nil {
				return err
			}
			if err := s.strips(ctx, st.first, x, nil, nil, nil, y); err != nil {
				y.buf.release()
				return err
			}
			x.buf.release()
			x = y
		case arch.VAEOut:
			scale, shift := x.affine(s.groups, s.eps, st.gamma1, st.beta1)
			if err := s.strips(ctx, st.first, x, scale, shift, nil, &tensor{buf: &bigBuf{f: out}, c: 3, h: x.h, w: x.w}); err != nil {
				return err
			}
		}
	}
	return nil
}

// rows is the height of the strips of a layer whose widest tensor has ch channels of w values a row.
func (s *streamer) rows(ch, w int) int { return max(1, s.strip/(ch*w)) }

// strips runs a strip session over x: the norm as scale and shift (nil for an upsampler, whose y is
// twice x's size), res the residual input (nil for none). y receives the output rows and their sums;
// a y with a nil sum is the decoder's NCHW output.
func (s *streamer) strips(ctx context.Context, sess *ort.Session, x *tensor, scale, shift []float32, res, y *tensor) error {
	up := y.h / x.h // 2 for an upsampler
	nchw := y.sum == nil
	rows := min(s.rows(max(x.c, up*up*y.c), x.w), x.h)
	var fixed []*ort.Tensor // scale, shift
	defer func() {
		for _, t := range fixed {
			t.Destroy()
		}
	}()
	for _, v := range [][]float32{scale, shift} {
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
	var staged []float32 // the NCHW output's strip
	for r0 := 0; r0 < x.h; r0 += rows {
		r1 := min(r0+rows, x.h)
		lo, hi := max(r0-1, 0), min(r1+1, x.h)
		if err := pads.SetInt64([]int64{0, 0, int64(1 - (r0 - lo)), 0, 0, 0, int64(1 - (hi - r1)), 0}); err != nil {
			return err
		}
		var tensors []*ort.Tensor
		wrap := func(data []float32, shape ...int64) error {
			t, err := ort.WrapFloat32(data, shape...)
			if err == nil {
				tensors = append(tensors, t)
			}
			return err
		}
		err := wrap(x.rows(lo, hi), int64(hi-lo), int64(x.c), int64(x.w))
		ins := []*ort.Tensor{nil}
		ins = append(ins, fixed...)
		ins = append(ins, pads)
		if err == nil && res != nil {
			err = wrap(res.rows(r0, r1), int64(r1-r0), int64(res.c), int64(res.w))
			if err == nil {
				ins = append(ins, tensors[1])
			}
		}
		n := int64(up * (r1 - r0))
		if err == nil {
			if nchw {
				staged = slices.Grow(staged[:0], int(n)*y.c*y.w)[:int(n)*y.c*y.w]
				err = wrap(staged, 1, int64(y.c), n, int64(y.w))
			} else {
				err = wrap(y.rows(up*r0, up*r1), n, int64(y.c), int64(y.w))
			}
		}
		if err == nil {
			ins[0] = tensors[0]
			err = sess.Run(ctx, ins, tensors[len(tensors)-1:])
		}
		for _, t := range tensors {
			t.Destroy()
		}
		if err != nil {
			return err
		}
		if nchw {
			for c := range y.c {
				copy(y.buf.f[(c*y.h+up*r0)*y.w:(c*y.h+up*r1)*y.w], staged[c*int(n)*y.w:(c+1)*int(n)*y.w])
			}
		} else {
			y.account(up*r0, up*r1)
		}
	}
	return nil
}
