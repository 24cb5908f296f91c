package textenc

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/ort/orttest"
)

// Transparent encoders: graphs with the real Optimum input/output names whose values are simple
// functions of the ids, so the Go reference below is exact. hidden_states.k = E[id] + k;
// last_hidden_state = 2·hidden_states.N; pooled = mean over the sequence of last_hidden_state;
// text_embeds = pooled·P. T5: last_hidden_state = 3·E[id].
type clipSpec struct {
	vocab, width, layers, proj int // proj 0: CLIPTextModel (pooler_output), else CLIPTextModelWithProjection
	ids                        onnx.DataType
	symbolicWidth              bool // declare the output widths symbolic (the runner must read config.json)
	noHidden                   bool // export without hidden_states.* outputs
}

func testEmbedding(vocab, width int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	e := make([]float32, vocab*width)
	for i := range e {
		e[i] = float32(r.NormFloat64())
	}
	return e
}

func widthDim(n int, symbolic bool) onnx.Dim {
	if symbolic {
		return onnx.Sym("width")
	}
	return onnx.Fixed(int64(n))
}

func buildCLIP(t *testing.T, dir string, s clipSpec) (path string, emb, proj []float32) {
	t.Helper()
	b := onnx.NewBuilder("clip", 17)
	ids := b.Input("input_ids", s.ids, onnx.Sym("batch_size"), onnx.Sym("sequence_length"))
	emb = testEmbedding(s.vocab, s.width, 1)
	h0 := b.Op("Gather", []string{b.Initializer(onnx.Float32Tensor("E", []int64{int64(s.vocab), int64(s.width)}, emb)), ids})
	seqDims := []onnx.Dim{onnx.Sym("batch_size"), onnx.Sym("sequence_length"), widthDim(s.width, s.symbolicWidth)}
	var last string
	for k := 0; k <= s.layers; k++ {
		hk := h0
		if k > 0 {
			hk = b.Op("Add", []string{h0, b.Initializer(onnx.Float32Tensor("", []int64{1}, []float32{float32(k)}))})
		}
		if !s.noHidden {
			b.Output(hk, "hidden_states."+strconv.Itoa(k), onnx.Float, seqDims...)
		}
		last = hk
	}
	lastHidden := b.Op("Mul", []string{last, b.Initializer(onnx.Float32Tensor("two", []int64{1}, []float32{2}))})
	b.Output(lastHidden, "last_hidden_state", onnx.Float, seqDims...)
	pooled := b.Op("ReduceMean", []string{lastHidden}, onnx.AttrInts("axes", 1), onnx.AttrInt("keepdims", 0))
	if s.proj > 0 {
		proj = testEmbedding(s.width, s.proj, 2)
		te := b.Op("MatMul", []string{pooled, b.Initializer(onnx.Float32Tensor("P", []int64{int64(s.width), int64(s.proj)}, proj))})
		b.Output(te, "text_embeds", onnx.Float, onnx.Sym("batch_size"), widthDim(s.proj, s.symbolicWidth))
	} else {
		b.Output(pooled, "pooler_output", onnx.Float, onnx.Sym("batch_size"), widthDim(s.width, s.symbolicWidth))
	}
	path = filepath.Join(dir, "model.onnx")
	if err := b.Model().WriteFile(path, onnx.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return path, emb, proj
}

func buildT5(t *testing.T, dir string, vocab, width int) (string, []float32) {
	b := onnx.NewBuilder("t5", 17)
	ids := b.Input("input_ids", onnx.Int64, onnx.Sym("batch_size"), onnx.Sym("sequence_length"))
	emb := testEmbedding(vocab, width, 3)
	h := b.Op("Gather", []string{b.Initializer(onnx.Float32Tensor("E", []int64{int64(vocab), int64(width)}, emb)), ids})
	h = b.Op("Mul", []string{h, b.Initializer(onnx.Float32Tensor("three", []int64{1}, []float32{3}))})
	b.Output(h, "last_hidden_state", onnx.Float, onnx.Sym("batch_size"), onnx.Sym("sequence_length"), onnx.Fixed(int64(width)))
	path := filepath.Join(dir, "model.onnx")
	if err := b.Model().WriteFile(path, onnx.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return path, emb
}

// clipRef is the Go reference of the transparent CLIP: hidden_states[-(skip+2)] and the pooled output.
func clipRef(ids [][]int64, emb, proj []float32, width, layers, skip int) (hidden, pooled []float32) {
	layer := float32(layers - 1 - skip)
	for _, row := range ids {
		mean := make([]float64, width)
		for _, id := range row {
			for d := 0; d < width; d++ {
				e := emb[int(id)*width+d]
				hidden = append(hidden, e+layer)
				mean[d] += 2 * float64(e+float32(layers)) / float64(len(row))
			}
		}
		if proj == nil {
			for d := range mean {
				pooled = append(pooled, float32(mean[d]))
			}
			continue
		}
		p := len(proj) / width
		for j := 0; j < p; j++ {
			s := 0.0
			for d := 0; d < width; d++ {
				s += mean[d] * float64(proj[d*p+j])
			}
			pooled = append(pooled, float32(s))
		}
	}
	return hidden, pooled
}

func assertClose(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Abs(float64(got[i]-want[i])) > tol*(1+math.Abs(float64(want[i]))) {
			t.Fatalf("%s[%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
}

func TestMain(m *testing.M) { orttest.Main(m) }

func TestCLIPEncoderWithProjection(t *testing.T) {
	for _, idType := range []onnx.DataType{onnx.Int32, onnx.Int64} {
		t.Run(idType.String(), func(t *testing.T) {
			const width, layers, proj = 8, 4, 6
			path, emb, p := buildCLIP(t, t.TempDir(), clipSpec{vocab: 50, width: width, layers: layers, proj: proj, ids: idType})
			enc, err := LoadCLIPEncoder(context.Background(), path, CLIPEncoderOptions{Session: orttest.Options(), Hidden: true, ClipSkip: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer enc.Close()
			if enc.PooledName() != "text_embeds" || enc.Layers() != layers {
				t.Fatalf("pooled %q, layers %d", enc.PooledName(), enc.Layers())
			}
			ids := [][]int64{{49 % 50, 1, 2, 3, 0}, {7, 7, 7, 7, 0}}
			for _, skip := range []int{0, 1} {
				out, err := enc.Encode(context.Background(), ids, skip)
				if err != nil {
					t.Fatal(err)
				}
				if out.Batch != 2 || out.SeqLen != 5 || out.PooledDim != proj || out.HiddenDim != width {
					t.Fatalf("shape %+v", out)
				}
				wantH, wantP := clipRef(ids, emb, p, width, layers, skip)
				assertClose(t, "hidden", out.Hidden, wantH, 1e-6)
				assertClose(t, "pooled", out.Pooled, wantP, 1e-5)
			}
			if _, err := enc.Encode(context.Background(), ids, 2); err == nil {
				t.Fatal("clip skip 2 was not loaded but Encode accepted it")
			}
			if _, err := enc.Encode(context.Background(), [][]int64{{1, 2}, {1}}, 0); err == nil {
				t.Fatal("ragged id rows accepted")
			}
		})
	}
}

func TestCLIPEncoderPoolerOnly(t *testing.T) {
	dir := t.TempDir()
	path, emb, _ := buildCLIP(t, dir, clipSpec{vocab: 30, width: 4, layers: 2, ids: onnx.Int64, noHidden: true})
	enc, err := LoadCLIPEncoder(context.Background(), path, CLIPEncoderOptions{Session: orttest.Options()})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	ids := [][]int64{{1, 2, 3}}
	out, err := enc.Encode(context.Background(), ids, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, want := clipRef(ids, emb, nil, 4, 2, 0)
	assertClose(t, "pooler_output", out.Pooled, want, 1e-6)
	if out.Hidden != nil {
		t.Fatal("hidden states returned without being asked for")
	}
	_, err = LoadCLIPEncoder(context.Background(), path, CLIPEncoderOptions{Session: orttest.Options(), Hidden: true})
	if !errors.Is(err, ErrEncoderSignature) {
		t.Fatalf("hidden states from an export without them: want ErrEncoderSignature, got %v", err)
	}
}

func TestCLIPEncoderWidthFromConfig(t *testing.T) {
	dir := t.TempDir()
	path, _, _ := buildCLIP(t, dir, clipSpec{vocab: 20, width: 4, layers: 2, proj: 3, ids: onnx.Int64, symbolicWidth: true})
	o := CLIPEncoderOptions{Session: orttest.Options(), Hidden: true}
	if _, err := LoadCLIPEncoder(context.Background(), path, o); !errors.Is(err, ErrEncoderSignature) {
		t.Fatalf("symbolic width without config.json: want ErrEncoderSignature, got %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"hidden_size": 4, "projection_dim": 3}`), 0o644); err != nil {
		t.Fatal(err)
	}
	enc, err := LoadCLIPEncoder(context.Background(), path, o)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	out, err := enc.Encode(context.Background(), [][]int64{{1, 2}}, 0)
	if err != nil || out.PooledDim != 3 || out.HiddenDim != 4 {
		t.Fatalf("widths from config.json: %+v, %v", out, err)
	}
}

func TestT5Encoder(t *testing.T) {
	path, emb := buildT5(t, t.TempDir(), 40, 6)
	enc, err := LoadT5Encoder(context.Background(), path, orttest.Options())
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	ids := [][]int64{{5, 6, 1, 0}, {39, 1, 0, 0}}
	out, err := enc.Encode(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	var want []float32
	for _, row := range ids {
		for _, id := range row {
			for d := 0; d < 6; d++ {
				want = append(want, 3*emb[int(id)*6+d])
			}
		}
	}
	if out.Dim != 6 || enc.Dim() != 6 {
		t.Fatalf("dim %d", out.Dim)
	}
	assertClose(t, "last_hidden_state", out.Hidden, want, 1e-6)
	// An export without last_hidden_state is not a T5 encoder.
	b := onnx.NewBuilder("other", 17)
	x := b.Input("input_ids", onnx.Int64, onnx.Sym("b"), onnx.Sym("s"))
	b.Output(b.Op("Cast", []string{x}, onnx.AttrInt("to", int64(onnx.Float))), "encoder_output", onnx.Float, onnx.Sym("b"), onnx.Sym("s"))
	other := filepath.Join(t.TempDir(), "model.onnx")
	if err := b.Model().WriteFile(other, onnx.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadT5Encoder(context.Background(), other, orttest.Options()); !errors.Is(err, ErrEncoderSignature) {
		t.Fatalf("want ErrEncoderSignature, got %v", err)
	}
}
