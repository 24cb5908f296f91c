package pipeline

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rflowrt/rflow/internal/compiler/arch"
	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/internal/testmodels"
)

// Echo transformers: graphs with a family's transformer inputs whose output encodes those inputs, so a
// test can read back exactly what the pipeline fed at every call (timestep, guidance, text conditioning,
// ids, latents) and recompute the loop in Go.
//
// SD3 echo, output [B, 16, h, w]:
//
//	channel 0 = timestep[b], 1 = mean(pooled_projections[b]), 2 = mean(encoder_hidden_states[b]),
//	3 = mean(skip_layers) (when the export has that input), the rest = hidden_states' own channels.
//
// FLUX echo, output [B, L, 64]:
//
//	feature 0 = timestep[b], 1 = guidance[b] (0 without), 2 = mean(pooled[b]), 3 = mean(ehs[b]),
//	4–6 = img_ids[l], 7 = mean(txt_ids), the rest = hidden_states' own features.
//
// nanAt, when > 0, makes the output NaN wherever timestep == nanAt ((t − nanAt)/(t − nanAt)·0 is NaN only
// there) and adds 0 elsewhere.
type echoSpec struct {
	skipLayers bool
	floatIDs   bool
	nanAt      float32
	// fixedSide > 0 fixes the SD3 echo's latent height and width (a static export).
	fixedSide int64
}

// sigDim returns the declared size of dimension i of a fixture transformer input.
func sigDim(t testing.TB, in []ort.TensorInfo, name string, i int) int64 {
	t.Helper()
	for _, x := range in {
		if x.Name == name && len(x.Shape) > i && x.Shape[i] > 0 {
			return x.Shape[i]
		}
	}
	t.Fatalf("fixture transformer input %s has no fixed dimension %d", name, i)
	return 0
}

// echoFolder returns a copy of a tiny fixture folder (other components linked) whose transformer is the
// echo graph.
func echoFolder(t testing.TB, kind testmodels.Kind, spec echoSpec) string {
	t.Helper()
	src := testmodels.Cached(t, testmodels.Options{Kind: kind})
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "transformer" {
			continue
		}
		if err := os.Symlink(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	in, _, err := ort.Signature(filepath.Join(src, "transformer", "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	var m *onnx.Model
	if kind.IsFlux() {
		m, err = fluxEcho(kind == testmodels.KindFluxDev, sigDim(t, in, "encoder_hidden_states", 2),
			sigDim(t, in, "pooled_projections", 1), spec)
	} else {
		m, err = sd3Echo(sigDim(t, in, "encoder_hidden_states", 2), sigDim(t, in, "pooled_projections", 1), spec)
	}
	if err != nil {
		t.Fatal(err)
	}
	tdir := filepath.Join(dst, "transformer")
	if err := os.MkdirAll(tdir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(src, "transformer", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tdir, "config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.WriteFile(filepath.Join(tdir, "model.onnx"), onnx.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return dst
}

// bcast broadcasts a per-row value v (any shape with B elements first) onto zero, a [B, …, 1] map.
func bcast(n *arch.Net, zero, v string, rank int) string {
	shape := []int64{-1}
	for range rank - 1 {
		shape = append(shape, 1)
	}
	return n.Add(zero, n.Reshape(v, shape...))
}

// nanGate returns x + (t − at)/(t − at)·0 broadcast: NaN where t == at, x elsewhere.
func nanGate(n *arch.Net, x, t string, at float32, rank int) string {
	if at == 0 {
		return x
	}
	d := n.Sub(t, n.Scalar(at))
	return bcast(n, x, n.Mul(n.Div(d, d), n.Scalar(0)), rank)
}

func sd3Echo(joint, pooled int64, spec echoSpec) (*onnx.Model, error) {
	n := arch.NewNet("sd3_echo", arch.Tensors{})
	b, f := onnx.Sym("batch_size"), onnx.Float
	hd, wd := onnx.Sym("height"), onnx.Sym("width")
	if spec.fixedSide > 0 {
		hd, wd = onnx.Fixed(spec.fixedSide), onnx.Fixed(spec.fixedSide)
	}
	x := n.FloatInput("hidden_states", f, b, onnx.Fixed(16), hd, wd)
	t := n.FloatInput("timestep", f, onnx.Sym("step"))
	e := n.FloatInput("encoder_hidden_states", f, b, onnx.Sym("sequence_length"), onnx.Fixed(joint))
	p := n.FloatInput("pooled_projections", f, b, onnx.Fixed(pooled))
	zero := n.Mul(n.Slice(x, []int64{0}, []int64{1}, []int64{1}), n.Scalar(0))
	chans := []string{bcast(n, zero, t, 4), bcast(n, zero, n.ReduceMean(p, 1), 4), bcast(n, zero, n.ReduceMean(e, 1, 2), 4)}
	first := int64(3)
	if spec.skipLayers {
		s := n.B.Input("skip_layers", onnx.Int64, onnx.Sym("num_skip"))
		mean := n.ReduceMean(n.Cast(s, onnx.Float), 0)
		chans = append(chans, n.Add(zero, n.Reshape(mean, 1, 1, 1, 1)))
		first = 4
	}
	chans = append(chans, n.Slice(x, []int64{first}, []int64{16}, []int64{1}))
	out := nanGate(n, n.Concat(1, chans...), t, spec.nanAt, 4)
	n.FloatOutput(out, "out_hidden_states", f, b, onnx.Fixed(16), hd, wd)
	return n.Model()
}

func fluxEcho(guidance bool, joint, pooled int64, spec echoSpec) (*onnx.Model, error) {
	n := arch.NewNet("flux_echo", arch.Tensors{})
	b, f, l := onnx.Sym("batch_size"), onnx.Float, onnx.Sym("packed_height_width")
	idType := onnx.Int64
	if spec.floatIDs {
		idType = onnx.Float
	}
	x := n.FloatInput("hidden_states", f, b, l, onnx.Fixed(64))
	e := n.FloatInput("encoder_hidden_states", f, b, onnx.Sym("sequence_length"), onnx.Fixed(joint))
	p := n.FloatInput("pooled_projections", f, b, onnx.Fixed(pooled))
	t := n.FloatInput("timestep", f, onnx.Sym("step"))
	img := n.Cast(n.B.Input("img_ids", idType, l, onnx.Fixed(3)), onnx.Float)
	txt := n.Cast(n.B.Input("txt_ids", idType, onnx.Sym("sequence_length"), onnx.Fixed(3)), onnx.Float)
	zero := n.Mul(n.Slice(x, []int64{0}, []int64{1}, []int64{2}), n.Scalar(0))
	g := n.Scalar(0)
	if guidance {
		g = n.FloatInput("guidance", f, b)
	}
	ids := n.Add(n.Mul(n.Slice(x, []int64{0}, []int64{3}, []int64{2}), n.Scalar(0)), n.Unsqueeze(img, 0))
	feats := []string{bcast(n, zero, t, 3), n.Add(zero, n.Reshape(g, -1, 1, 1)), bcast(n, zero, n.ReduceMean(p, 1), 3),
		bcast(n, zero, n.ReduceMean(e, 1, 2), 3), ids, n.Add(zero, n.Reshape(n.ReduceMean(txt, 0, 1), 1, 1, 1)),
		n.Slice(x, []int64{8}, []int64{64}, []int64{2})}
	out := nanGate(n, n.Concat(2, feats...), t, spec.nanAt, 3)
	n.FloatOutput(out, "out_hidden_states", f, b, l, onnx.Fixed(64))
	return n.Model()
}
