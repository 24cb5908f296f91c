package vae

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"sync"

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

// stripValues sets the block height of each resolution level: a block of the level's widest tensor
// holds about this many float32 values (4 MiB), so ORT's buffers for a strip stay small beside the
// full-resolution tensors, while a strip is still thousands of pixels wide for the convolution kernels
// (at 1024² the bench decode peaked 53 MiB higher with twice this; 2 and 4 times this were no faster).
const stripValues = 1 << 20

// streamer is a loaded streamed decoder.
type streamer struct {
	mu     sync.Mutex // one decode at a time: a second would hold its own full-resolution tensors
	stem   *graph
	steps  []streamStep
	groups int
	eps    float64
	strip  int // stripValues; tests lower it to make many strips of small images
	// levelWidth is the widest tensor (channels) at each resolution level, the stem's first
	levelWidth []int
}

// streamStep is one arch.VAEStep with its strip sessions and norm parameters.
type streamStep struct {
	arch.VAEStep
	first, second *ort.Session // ResNet: norm1, conv1 (and its shortcut), then norm2, conv2 and the residual; upsampler and output: first
	gamma1, beta1 []float32    // the norm before first (norm1 or conv_norm_out)
	gamma2, beta2 []float32    // norm2
}

// loadStreamer builds the stem and strip sessions of the decoder export at path from its own weights,
// on the CPU. It fails when the export does not name its parameters, the folder has no AutoencoderKL
// config.json, or the provider is not the CPU; LoadDecoder then runs the export whole.
func loadStreamer(ctx context.Context, path string, so ort.SessionOptions) (*streamer, error) {
	if so.Provider != "" && so.Provider != "cpu" {
		return nil, fmt.Errorf("provider %s: the decoder streams on the CPU only", so.Provider)
	}
	conf, err := arch.ReadConfig(filepath.Join(filepath.Dir(path), "config.json"))
	if err != nil {
		return nil, err
	}
	cfg, err := arch.ParseVAEConfig(conf)
	if err != nil {
		return nil, err
	}
	m, err := onnx.ReadModel(path)
	if err != nil {
		return nil, err
	}
	w, ok := newExportWeights(m)
	if !ok {
		return nil, errors.New("the export does not name its parameters")
	}
	s := &streamer{groups: cfg.NormGroups, eps: arch.VAENormEps, strip: stripValues}
	ok = false
	defer func() {
		if !ok {
			s.close()
		}
	}()
	stem, err := arch.VAEDecoderStem(w, conf, arch.IO{})
	if err != nil {
		return nil, err
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
	for _, st := range cfg.DecoderSteps() {
		step := streamStep{VAEStep: st}
		err := step.load(ctx, w, cfg.Act, strip)
		s.steps = append(s.steps, step) // closed on failure too
		if err != nil {
			return nil, err
		}
	}
	s.levelWidth = []int{0}
	for _, st := range s.steps {
		if st.Kind == arch.VAEUpsample {
			s.levelWidth = append(s.levelWidth, 0)
		}
		l := len(s.levelWidth) - 1
		s.levelWidth[l] = max(s.levelWidth[l], st.In, st.Out)
	}
	ok = true
	return s, nil
}

// sessionOf loads a built model.
func sessionOf(ctx context.Context, name string, m *onnx.Model, so ort.SessionOptions) (*ort.Session, error) {
	data, err := m.Marshal()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	sess, err := ort.NewSessionFromBytes(ctx, name, data, "", so)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	return sess, nil
}

// load builds the step's strip sessions and reads its norms.
func (st *streamStep) load(ctx context.Context, w *exportWeights, act string, so ort.SessionOptions) error {
	norm := func(name string, ch int) (gamma, beta []float32, err error) {
		if gamma, err = w.Float32(name+".weight", []int64{int64(ch)}); err == nil {
			beta, err = w.Float32(name+".bias", []int64{int64(ch)})
		}
		return gamma, beta, err
	}
	built := 0
	build := func(m *onnx.Model, err error) (*ort.Session, error) {
		if err != nil {
			return nil, err
		}
		o := so
		if o.ProfilePrefix != "" { // a file per session: they would share the second in its name
			o.ProfilePrefix = fmt.Sprintf("%s-%s-%d", o.ProfilePrefix, st.Prefix, built)
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
		if st.first, err = build(arch.VAEStripConv(w, first)); err != nil {
			return err
		}
		st.second, err = build(arch.VAEStripConv(w, arch.StripConv{Conv: st.Prefix + ".conv2", In: st.Out, Out: st.Out, Act: act, Residual: st.Out}))
	case arch.VAEUpsample:
		st.first, err = build(arch.VAEStripUpsample(w, st.Prefix, st.In))
	case arch.VAEOut:
		if st.gamma1, st.beta1, err = norm(st.Prefix+".conv_norm_out", st.In); err != nil {
			return err
		}
		// conv_act is always SiLU
		st.first, err = build(arch.VAEStripConv(w, arch.StripConv{Conv: st.Prefix + ".conv_out", In: st.In, Out: st.Out, Act: "silu"}))
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
	s.mu.Lock()
	defer s.mu.Unlock()
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

// tensor is one image's activation [C, H, W] in a bigBuf as blocks of r rows, one after another,
// each NCHW [C, rows, W] (the last may be shorter): a block is a strip graph's input or output as it
// is. It carries the per-channel sums of its values and squares, for the next GroupNorm.
type tensor struct {
	buf        *bigBuf
	c, h, w, r int
	sum, sumSq []float64
}

func newTensor(c, h, w, r int) (*tensor, error) {
	buf, err := newBigBuf(c * h * w)
	if err != nil {
		return nil, err
	}
	return &tensor{buf: buf, c: c, h: h, w: w, r: r, sum: make([]float64, c), sumSq: make([]float64, c)}, nil
}

// like is a tensor of c channels with t's shape and blocks over buf (a nil buf: a new one).
func (t *tensor) like(c int, buf *bigBuf) (*tensor, error) {
	if buf == nil {
		return newTensor(c, t.h, t.w, t.r)
	}
	return &tensor{buf: buf, c: c, h: t.h, w: t.w, r: t.r, sum: make([]float64, c), sumSq: make([]float64, c)}, nil
}

// blocks is the number of blocks; rowsIn the rows of block b.
func (t *tensor) blocks() int      { return (t.h + t.r - 1) / t.r }
func (t *tensor) rowsIn(b int) int { return min(t.r, t.h-b*t.r) }

// block is block b's values; end is where it ends in the buffer.
func (t *tensor) block(b int) []float32 {
	off := b * t.r * t.c * t.w
	return t.buf.f[off : off+t.c*t.rowsIn(b)*t.w]
}

// rows copies rows [r0, r1) of every channel into dst [c, r1−r0, w].
func (t *tensor) rows(dst []float32, r0, r1 int) {
	n := r1 - r0
	for r := r0; r < r1; {
		b, i := r/t.r, r%t.r
		blk, bn := t.block(b), t.rowsIn(b)
		k := min(bn-i, r1-r) // rows of this block
		for c := range t.c {
			copy(dst[(c*n+r-r0)*t.w:(c*n+r-r0+k)*t.w], blk[(c*bn+i)*t.w:(c*bn+i+k)*t.w])
		}
		r += k
	}
}

// account adds block b to the sums, in float64, the channels split among goroutines (ORT's threads
// are idle meanwhile).
func (t *tensor) account(b int) {
	blk, n := t.block(b), t.rowsIn(b)*t.w
	parallel(t.c, len(blk), func(c0, c1 int) {
		for c := c0; c < c1; c++ {
			v := blk[c*n : (c+1)*n]
			var s0, s1, q0, q1 float64
			i := 0
			for ; i+1 < len(v); i += 2 {
				a, b := float64(v[i]), float64(v[i+1])
				s0, s1 = s0+a, s1+b
				q0, q1 = q0+a*a, q1+b*b
			}
			if i < len(v) {
				a := float64(v[i])
				s0, q0 = s0+a, q0+a*a
			}
			t.sum[c] += s0 + s1
			t.sumSq[c] += q0 + q1
		}
	})
}

// parallel runs work over channels [0, c) in up to GOMAXPROCS goroutines, one when the values are
// too few to be worth it.
func parallel(c, values int, work func(c0, c1 int)) {
	parts := min(runtime.GOMAXPROCS(0), c, max(1, values/(64<<10)))
	if parts == 1 {
		work(0, c)
		return
	}
	var wg sync.WaitGroup
	for k := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work(k*c/parts, (k+1)*c/parts)
		}()
	}
	wg.Wait()
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

// blockRows is the block height at a level of the decoder whose tensors are at most ch wide, w values
// a row and h rows: about s.strip values a block, even when upsampled (an upsampler writes two rows
// for each it reads), at least 1 (2) and at most h.
func (s *streamer) blockRows(ch, h, w int, upsampled bool) int {
	r := max(1, s.strip/(ch*w))
	if upsampled {
		r = max(2, r&^1)
	}
	return min(r, h)
}

// image runs the steps on one image's stem features [ch, h, w] (NCHW), writing its pixels [3, H, W]
// to out.
func (s *streamer) image(ctx context.Context, feats []float32, ch, h, w int, out []float32) error {
	level := 0 // the steps' resolution level: the number of upsamplers passed
	x, err := newTensor(ch, h, w, s.blockRows(s.levelWidth[level], h, w, false))
	if err != nil {
		return err
	}
	defer func() { x.buf.release() }()
	for b := range x.blocks() {
		blk, n := x.block(b), x.rowsIn(b)
		for c := range ch {
			copy(blk[c*n*w:(c+1)*n*w], feats[(c*h+b*x.r)*w:(c*h+b*x.r+n)*w])
		}
		x.account(b)
	}
	for _, st := range s.steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		var err error
		switch st.Kind {
		case arch.VAEResnet:
			x, err = s.resnet(ctx, st, x)
		case arch.VAEUpsample:
			level++
			var y *tensor
			if y, err = newTensor(x.c, 2*x.h, 2*x.w, s.blockRows(s.levelWidth[level], 2*x.h, 2*x.w, true)); err != nil {
				return err
			}
			err = s.strips(ctx, pass{sess: st.first, x: x, consume: true, y: y})
			x.buf.release()
			x = y
		case arch.VAEOut:
			scale, shift := x.affine(s.groups, s.eps, st.gamma1, st.beta1)
			err = s.strips(ctx, pass{sess: st.first, x: x, scale: scale, shift: shift,
				y: &tensor{c: 3, h: x.h, w: x.w, r: x.r}, out: out})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// resnet runs a ResNet step on x and returns its output, which takes x's buffer: the first half
// writes the inner tensor (and, when the width changes, the shortcut of x over x's blocks as the
// strips pass them, giving the rest back), the second half writes the output over the shortcut (or x).
func (s *streamer) resnet(ctx context.Context, st streamStep, x *tensor) (*tensor, error) {
	mid, err := x.like(st.Out, nil)
	if err != nil {
		return x, err
	}
	defer mid.buf.release()
	res := x
	first := pass{sess: st.first, x: x, y: mid}
	first.scale, first.shift = x.affine(s.groups, s.eps, st.gamma1, st.beta1)
	if st.In != st.Out {
		// block b of the shortcut ends where block b+1 of x starts, or before, when it is narrower
		var buf *bigBuf
		if st.Out < st.In {
			buf, first.consume = x.buf, true
		}
		if res, err = x.like(st.Out, buf); err != nil {
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
	// the output overwrites the residual: the residual is added element by element, each value read
	// before its sum is written
	y, _ := res.like(st.Out, res.buf)
	second := pass{sess: st.second, x: mid, res: res, y: y, consume: true}
	second.scale, second.shift = mid.affine(s.groups, s.eps, st.gamma2, st.beta2)
	err = s.strips(ctx, second)
	y.buf.shrink(y.c * y.h * y.w)
	return y, err
}

// pass is one run of a strip session over a tensor, a block at a time.
type pass struct {
	sess         *ort.Session
	x            *tensor   // the input
	scale, shift []float32 // x's norm as an affine (nil for an upsampler)
	res          *tensor   // the residual (nil: none)
	y            *tensor   // the output (twice x's size for an upsampler)
	out          []float32 // when set, y is the decoder's output, written here as NCHW [3, H, W]
	sc           *tensor   // the shortcut output (nil: none), possibly over x's buffer
	consume      bool      // x is dead after the pass: give its blocks back as the strips leave them
}

// strips runs p block by block. The input, residual and output blocks are the tensors' own memory;
// the halo rows are copied, the row above before anything overwrites it; the shortcut and the
// decoder's output are staged and copied after each run, the shortcut since it may overwrite x.
func (s *streamer) strips(ctx context.Context, p pass) error {
	x, y := p.x, p.y
	up := y.h / x.h // 2 for an upsampler
	var keep []*ort.Tensor
	defer func() {
		for _, t := range keep {
			t.Destroy()
		}
	}()
	ortTensor := func(shape ...int64) (*ort.Tensor, error) {
		t, err := ort.NewTensor(onnx.Float, shape...)
		if err == nil {
			keep = append(keep, t)
		}
		return t, err
	}
	row := []int64{1, int64(x.c), 1, int64(x.w)}
	top, err := ortTensor(row...)
	if err != nil {
		return err
	}
	bottom, err := ortTensor(row...)
	if err != nil {
		return err
	}
	fixed := []*ort.Tensor{top, bottom} // after x, in the graph's input order
	var mask *ort.Tensor                // the full blocks'; the last block's may be shorter
	if p.scale != nil {
		for _, v := range [][]float32{p.scale, p.shift} {
			t, err := ort.WrapFloat32(v, int64(x.c), 1, 1)
			if err != nil {
				return err
			}
			keep = append(keep, t)
			fixed = append(fixed, t)
		}
		if mask, err = ortTensor(1, 1, int64(x.r+2), 1); err != nil {
			return err
		}
		fixed = append(fixed, mask)
	}
	var staged, gathered []float32 // the shortcut's block or the output's; an upsampler's input rows
	strips := x.blocks()
	if up > 1 { // an upsampler's strips are its output's blocks, so that each level has blocks of its own size
		strips = y.blocks()
	}
	for b := range strips {
		var r0, r1 int // x's rows
		var input []float32
		if up > 1 {
			r0, r1 = b*y.r/2, (b*y.r+y.rowsIn(b))/2
			gathered = slices.Grow(gathered[:0], x.c*(r1-r0)*x.w)[:x.c*(r1-r0)*x.w]
			x.rows(gathered, r0, r1)
			input = gathered
		} else {
			r0, r1 = b*x.r, b*x.r+x.rowsIn(b)
			input = x.block(b)
		}
		n := r1 - r0
		// top holds row r0−1 already (zeros above the image); bottom is row r1 or zeros
		if r1 < x.h {
			x.rows(bottom.Float32s(), r1, r1+1)
		} else {
			clear(bottom.Float32s())
		}
		if mask != nil {
			if n+2 != len(mask.Float32s()) {
				if mask, err = ortTensor(1, 1, int64(n+2), 1); err != nil { // the old one is destroyed on return
					return err
				}
				fixed[len(fixed)-1] = mask
			}
			m := mask.Float32s()
			for i := range m {
				m[i] = 1
			}
			m[0], m[n+1] = float32(min(r0, 1)), float32(min(x.h-r1, 1))
		}
		var wrapped []*ort.Tensor
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
				wrapped = append(wrapped, t)
			}
			return t
		}
		ins := append([]*ort.Tensor{wrap(input, 1, x.c, n, x.w)}, fixed...)
		if p.res != nil {
			ins = append(ins, wrap(p.res.block(b), 1, p.res.c, n, p.res.w))
		}
		var outs []*ort.Tensor
		switch {
		case up > 1: // the four phases, n+1 rows each
			phase := x.c * (n + 1) * x.w
			staged = slices.Grow(staged[:0], 4*phase)[:4*phase]
			for i := range 4 {
				outs = append(outs, wrap(staged[i*phase:(i+1)*phase], 1, x.c, n+1, x.w))
			}
		case p.out != nil:
			staged = slices.Grow(staged[:0], y.c*n*y.w)[:y.c*n*y.w]
			outs = append(outs, wrap(staged, 1, y.c, n, y.w))
		default:
			outs = append(outs, wrap(y.block(b), 1, y.c, n, y.w))
		}
		if p.sc != nil {
			staged = slices.Grow(staged[:0], p.sc.c*n*p.sc.w)[:p.sc.c*n*p.sc.w]
			outs = append(outs, wrap(staged, 1, p.sc.c, n, p.sc.w))
		}
		if err == nil {
			err = p.sess.Run(ctx, ins, outs)
		}
		for _, t := range wrapped {
			t.Destroy()
		}
		if err != nil {
			return err
		}
		x.rows(top.Float32s(), r1-1, r1) // the next strip's row above, before the shortcut may overwrite it
		switch {
		case up > 1:
			interleave(y.block(b), staged, x.c, n, x.w)
			y.account(b)
		case p.out != nil:
			for c := range y.c {
				copy(p.out[(c*y.h+r0)*y.w:(c*y.h+r1)*y.w], staged[c*n*y.w:(c+1)*n*y.w])
			}
		default:
			y.account(b)
		}
		written := 0 // the prefix of x's buffer the shortcut now holds
		if p.sc != nil {
			blk := p.sc.block(b)
			copy(blk, staged)
			if p.sc.buf == x.buf {
				written = b*p.sc.r*p.sc.c*p.sc.w + len(blk)
			}
		}
		if p.consume { // later strips read rows r1 on (and the row above, copied): the blocks before are dead
			dead := r1 / x.r * x.r * x.c * x.w
			if r1 == x.h {
				dead = x.c * x.h * x.w
			}
			x.buf.drop(written, dead)
		}
	}
	return nil
}

// interleave writes the upsampled block dst [c, 2n, 2w] from the four phases [4][c, n+1, w] of
// arch.VAEStripUpsample: row 2i+a, column 2j+b is phase (a, b)'s row i+a, column j.
func interleave(dst, phases []float32, c, n, w int) {
	phase := c * (n + 1) * w
	work := func(c0, c1 int) {
		for ch := c0; ch < c1; ch++ {
			for i := range n {
				for a := range 2 {
					src0 := phases[(2*a)*phase+(ch*(n+1)+i+a)*w:][:w]
					src1 := phases[(2*a+1)*phase+(ch*(n+1)+i+a)*w:][:w]
					row := dst[(ch*2*n+2*i+a)*2*w:][:2*w]
					for j, v := range src0 {
						row[2*j], row[2*j+1] = v, src1[j]
					}
				}
			}
		}
	}
	parallel(c, c*n*w, work)
}
