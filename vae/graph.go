package vae

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/ort"
)

// ErrSignature is wrapped by every error about a VAE export whose inputs or outputs are not what a
// vae_decoder or vae_encoder has.
var ErrSignature = errors.New("vae signature")

// graph is a loaded vae_decoder or vae_encoder: one rank-4 float input, one rank-4 float output
// (float32, float16 or bfloat16; the ort layer converts).
type graph struct {
	sess    *ort.Session
	what    string // "vae decoder" or "vae encoder", for errors
	path    string
	in, out ort.TensorInfo
	batch   int // the batch size the export fixes, 0 when it is symbolic
}

// openGraph loads path and checks its signature: input channels inCh, output channels outCh, each
// either declared so or symbolic.
func openGraph(ctx context.Context, what, path string, so ort.SessionOptions, inCh, outCh int) (*graph, error) {
	sess, err := ort.NewSession(ctx, path, so)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", what, err)
	}
	g := &graph{sess: sess, what: what, path: path}
	if err := g.checkSignature(inCh, outCh); err != nil {
		sess.Close()
		return nil, err
	}
	return g, nil
}

func (g *graph) checkSignature(inCh, outCh int) error {
	ins, outs := g.sess.Inputs(), g.sess.Outputs()
	if len(ins) != 1 || len(outs) != 1 {
		return fmt.Errorf("%w: %s %s: want one input and one output, the model has inputs %v and outputs %v",
			ErrSignature, g.what, g.path, ins, outs)
	}
	g.in, g.out = ins[0], outs[0]
	for _, c := range []struct {
		info ort.TensorInfo
		ch   int
	}{{g.in, inCh}, {g.out, outCh}} {
		if err := checkTensor(c.info, c.ch); err != nil {
			return fmt.Errorf("%w: %s %s: %s: %v", ErrSignature, g.what, g.path, c.info, err)
		}
	}
	if len(g.in.Shape) == 4 && g.in.Shape[0] > 0 {
		g.batch = int(g.in.Shape[0])
	}
	if len(g.in.Shape) == 4 && len(g.out.Shape) == 4 && g.in.Shape[0] > 0 && g.out.Shape[0] > 0 && g.in.Shape[0] != g.out.Shape[0] {
		return fmt.Errorf("%w: %s %s: input %s and output %s declare different batch sizes", ErrSignature, g.what, g.path, g.in, g.out)
	}
	return nil
}

func checkTensor(info ort.TensorInfo, ch int) error {
	switch info.Type {
	case onnx.Float, onnx.Float16, onnx.BFloat16:
	default:
		return fmt.Errorf("element type %v, want float32, float16 or bfloat16", info.Type)
	}
	if info.Shape == nil { // rank not declared: ORT checks at run time
		return nil
	}
	if len(info.Shape) != 4 {
		return fmt.Errorf("rank %d, want 4 (batch, channels, height, width)", len(info.Shape))
	}
	if c := info.Shape[1]; c > 0 && c != int64(ch) {
		return fmt.Errorf("%d channels, want %d", c, ch)
	}
	return nil
}

// checkSpatial reports an export whose fixed input and output sizes contradict the scale factor:
// the output is factor times the input (decoder) or the input factor times the output (encoder).
func (g *graph) checkSpatial(small, large ort.TensorInfo, factor int) error {
	if len(small.Shape) != 4 || len(large.Shape) != 4 {
		return nil
	}
	for d := 2; d < 4; d++ {
		if s, l := small.Shape[d], large.Shape[d]; s > 0 && l > 0 && s*int64(factor) != l {
			return fmt.Errorf("%w: %s %s: %s and %s do not differ by the config's spatial factor %d",
				ErrSignature, g.what, g.path, g.in, g.out, factor)
		}
	}
	return nil
}

// run feeds in (shape inShape, batch first) and returns the output of shape outShape. An export with
// a fixed batch size runs the batch in chunks of that size.
func (g *graph) run(ctx context.Context, in []float32, inShape, outShape [4]int) ([]float32, error) {
	b, chunk := inShape[0], inShape[0]
	if g.batch > 0 {
		if b%g.batch != 0 {
			return nil, fmt.Errorf("%s: batch %d is not a multiple of the batch size %d the export fixes", g.path, b, g.batch)
		}
		chunk = g.batch
	}
	inPer, outPer := len(in)/b, volumeOf(outShape)/b
	inT, err := g.sess.NewInput(g.in.Name, dims64(chunk, inShape)...)
	if err != nil {
		return nil, err
	}
	defer inT.Destroy()
	outT, err := g.sess.NewOutput(g.out.Name, dims64(chunk, outShape)...)
	if err != nil {
		return nil, err
	}
	defer outT.Destroy()
	out := make([]float32, outPer*b)
	for k := 0; k < b; k += chunk {
		if err := inT.SetFloat32(in[k*inPer : (k+chunk)*inPer]); err != nil {
			return nil, err
		}
		if err := g.sess.Run(ctx, []*ort.Tensor{inT}, []*ort.Tensor{outT}); err != nil {
			return nil, err
		}
		if err := outT.ReadFloat32(out[k*outPer : (k+chunk)*outPer]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (g *graph) close() error {
	if g == nil {
		return nil
	}
	return g.sess.Close()
}

func dims64(batch int, s [4]int) []int64 {
	return []int64{int64(batch), int64(s[1]), int64(s[2]), int64(s[3])}
}

// maxElements bounds any tensor this package allocates (2^32 values, 16 GiB of float32; a batch of
// 16 images of 4096² is 2^30), so that sizes from user input can neither overflow int arithmetic nor
// ask for absurd allocations.
const maxElements = 1 << 32

// volume is the product of dims, or an error when a dimension is below 1 or the product exceeds
// maxElements.
func volume(dims ...int) (int, error) {
	n := 1
	for _, d := range dims {
		if d < 1 {
			return 0, fmt.Errorf("dimensions %v: every dimension must be ≥ 1", dims)
		}
		if d > maxElements/n {
			return 0, fmt.Errorf("dimensions %v: more than 2^32 values", dims)
		}
		n *= d
	}
	return n, nil
}

// volumeOf is the product of a shape already checked by volume.
func volumeOf(s [4]int) int { return s[0] * s[1] * s[2] * s[3] }

// checkLen checks a flat NCHW buffer against its dimensions.
func checkLen(what string, x []float32, b, c, h, w int) error {
	n, err := volume(b, c, h, w)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if len(x) != n {
		return fmt.Errorf("%s: %d values for [%d,%d,%d,%d], want %d", what, len(x), b, c, h, w, n)
	}
	return nil
}

// exp32 is torch's float32 exp, correctly rounded here (torch's vectorised expf is within 1 ulp).
func exp32(x float32) float32 { return float32(math.Exp(float64(x))) }
