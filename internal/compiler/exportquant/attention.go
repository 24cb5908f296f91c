package exportquant

import (
	"fmt"
	"math"

	"github.com/rflowrt/rflow/internal/onnx"
)

// fuseAttention rewrites g's attention patterns — on split heads q, k, v [B, heads, S, d]:
//
//	MatMul(q·a, Transpose(k, 0,1,3,2)·b) (·c or ÷c) → Softmax(last axis) → MatMul(·, v)
//
// with a, b, c float32 scalar constants (torch's exporter writes the scale after the MatMul, or as
// √scale on both q and kᵀ for scaled_dot_product_attention) — into com.microsoft MultiHeadAttention,
// which ONNX Runtime's CPU kernel runs as flash attention without the [S_q, S_k] probabilities. The
// head count is read from the Reshape that split the heads ([.., .., heads, d] with heads a
// constant). Attention with a mask or bias added to the scores is left as it is (the fused kernel
// would take its non-flash path anyway). It returns the number of patterns fused.
func fuseAttention(g *onnx.Graph) (int, error) {
	x := indexGraph(g)
	f := fuser{g: g, x: x, names: map[string]bool{}}
	for name := range x.producer {
		f.names[name] = true
	}
	for _, t := range g.Initializers {
		f.names[t.Name] = true
	}
	for _, v := range g.Inputs {
		f.names[v.Name] = true
	}
	// New nodes replace the final MatMul in place (every value they read is defined before it); the
	// nodes of the old pattern that become unused are removed afterwards.
	replace := map[int][]onnx.Node{}
	drop := map[int]bool{}
	fused := 0
	for i := range g.Nodes {
		p, ok := f.match(i)
		if !ok || drop[i] {
			continue
		}
		replace[i] = f.emit(p)
		if p.outMerged != "" {
			drop[x.consumers[p.out][0]] = true // its output is now defined by the new nodes
		}
		fused++
	}
	if fused == 0 {
		return 0, nil
	}
	out := make([]onnx.Node, 0, len(g.Nodes)+4*fused)
	for i, n := range g.Nodes {
		if r, ok := replace[i]; ok {
			out = append(out, r...)
		} else if !drop[i] {
			out = append(out, n)
		}
	}
	g.Nodes = out
	g.Initializers = append(g.Initializers, f.added...)
	return fused, nil
}

type fuser struct {
	g     *onnx.Graph
	x     *graphIndex
	names map[string]bool
	added []onnx.Tensor
	seq   int
	// headDim is the head size of the pattern being matched (0: unknown) and headTensors the values
	// whose last dimension it is: what a scale computed from Shape(q) evaluates with.
	headDim     int64
	headTensors map[string]bool
}

// operand is q, k or v: [B, heads, S, d], or [B, S, heads, d] when bshd.
type operand struct {
	name string
	bshd bool
}

// attention is one matched pattern.
type attention struct {
	q, k, v   operand
	heads     int64
	scale     float32
	out       string // the output to define: [B, heads, S_q, d]
	outMerged string // when set, the [B, S_q, heads·d] value the pattern's consumers merged heads into
	name      string
}

// producerOf returns the node defining name, if a node does.
func (f *fuser) producerOf(name string) (*onnx.Node, bool) {
	i, ok := f.x.producer[name]
	if !ok {
		return nil, false
	}
	return &f.g.Nodes[i], true
}

// only reports whether name is used by exactly one node and is not a graph output.
func (f *fuser) only(name string) bool {
	return len(f.x.consumers[name]) == 1 && !f.x.outputs[name]
}

// constant is name's value when it is constant: an initializer or a Constant node's value (nil if not).
func (f *fuser) constant(name string) *onnx.Tensor {
	if c, ok := f.x.constTensor(f.g, name); ok {
		return c
	}
	var t *onnx.Tensor
	if n, ok := f.producerOf(name); ok && n.OpType == "Constant" && n.Domain == "" {
		for _, a := range n.Attrs {
			if a.Name == "value" && a.T != nil {
				t = a.T
			}
		}
	}
	return t
}

// scalar returns the value of a float32 scalar (or one-element) constant: an initializer or a
// Constant node's value.
func (f *fuser) scalar(name string) (float32, bool) {
	t := f.constant(name)
	if t == nil || t.Type != onnx.Float || t.RawSize() != 4 {
		return 0, false
	}
	v, err := t.Float32s()
	if err != nil || len(v) != 1 {
		return 0, false
	}
	return v[0], true
}

// scaled strips a multiplication or division by a float32 scalar constant used only here: it returns
// the unscaled value and the factor (1 when there is none). found counts the constants stripped.
func (f *fuser) scaled(name string, found *int) (string, float32) {
	n, ok := f.producerOf(name)
	if !ok || n.Domain != "" || len(n.Inputs) != 2 || !f.only(name) {
		return name, 1
	}
	switch n.OpType {
	case "Mul":
		if c, ok := f.factor(n.Inputs[1], found); ok {
			return n.Inputs[0], c
		}
		if c, ok := f.factor(n.Inputs[0], found); ok {
			return n.Inputs[1], c
		}
	case "Div":
		if c, ok := f.factor(n.Inputs[1], found); ok && c != 0 {
			return n.Inputs[0], 1 / c
		}
	}
	return name, 1
}

// factor is the value of a scale factor: a float32 scalar constant, or a scalar computed from
// constants and the head size (torch's scaled_dot_product_attention export: √(1/√d) from
// Shape(q)[-1]) when it contains float32 evidence (a float constant or a Cast to float); found counts
// the factors found.
func (f *fuser) factor(name string, found *int) (float32, bool) {
	if c, ok := f.scalar(name); ok {
		*found++
		return c, true
	}
	v, isFloat, ok := f.value(name, 0)
	if !ok || !isFloat || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	*found++
	return float32(v), true
}

// value evaluates a scalar expression: constants, Cast, Sqrt, Reciprocal, the four operations, and
// the last dimension of a head tensor read by Shape → Slice[-1:] or Gather(-1). isFloat reports a
// float32 constant or a Cast to float32 in it.
func (f *fuser) value(name string, depth int) (v float64, isFloat, ok bool) {
	if depth > 16 {
		return 0, false, false
	}
	if c, ok := f.scalar(name); ok {
		return float64(c), true, true
	}
	if iv, ok := f.int64s(name); ok && len(iv) == 1 {
		return float64(iv[0]), false, true
	}
	n, ok := f.producerOf(name)
	if !ok || n.Domain != "" || len(n.Inputs) == 0 {
		return 0, false, false
	}
	arg := func(i int) (float64, bool, bool) {
		if i >= len(n.Inputs) {
			return 0, false, false
		}
		return f.value(n.Inputs[i], depth+1)
	}
	switch n.OpType {
	case "Cast":
		x, fl, ok := arg(0)
		for _, a := range n.Attrs {
			if a.Name == "to" && a.I == int64(onnx.Float) {
				fl = true
			}
		}
		return x, fl, ok
	case "Sqrt":
		x, fl, ok := arg(0)
		return math.Sqrt(x), fl, ok && x >= 0
	case "Reciprocal":
		x, fl, ok := arg(0)
		return 1 / x, fl, ok && x != 0
	case "Mul", "Div", "Add", "Sub":
		a, fa, oka := arg(0)
		b, fb, okb := arg(1)
		if !oka || !okb || len(n.Inputs) != 2 {
			return 0, false, false
		}
		switch n.OpType {
		case "Mul":
			v = a * b
		case "Div":
			if b == 0 {
				return 0, false, false
			}
			v = a / b
		case "Add":
			v = a + b
		default:
			v = a - b
		}
		return v, fa || fb, true
	case "Slice", "Gather":
		sh, ok := f.producerOf(n.Inputs[0])
		if !ok || sh.OpType != "Shape" || len(sh.Inputs) != 1 || !f.headTensors[sh.Inputs[0]] || f.headDim <= 0 || len(n.Inputs) < 2 {
			return 0, false, false
		}
		idx, ok := f.int64s(n.Inputs[1]) // Slice starts, Gather indices
		if !ok || len(idx) != 1 || (idx[0] != -1 && idx[0] != 3) {
			return 0, false, false
		}
		return float64(f.headDim), false, true
	}
	return 0, false, false
}

// perm returns a Transpose node's perm.
func perm(n *onnx.Node) []int64 {
	for _, a := range n.Attrs {
		if a.Name == "perm" {
			return a.Ints
		}
	}
	return nil
}

func isPerm(n *onnx.Node, want ...int64) bool {
	p := perm(n)
	if n.OpType != "Transpose" || n.Domain != "" || len(p) != len(want) {
		return false
	}
	for i := range p {
		if p[i] != want[i] {
			return false
		}
	}
	return true
}

// match recognises the pattern ending in the MatMul node i.
func (f *fuser) match(i int) (attention, bool) {
	pv := &f.g.Nodes[i]
	if pv.OpType != "MatMul" || pv.Domain != "" || len(pv.Inputs) != 2 || len(pv.Outputs) != 1 {
		return attention{}, false
	}
	sm, ok := f.producerOf(pv.Inputs[0])
	if !ok || sm.OpType != "Softmax" || sm.Domain != "" || !f.only(pv.Inputs[0]) {
		return attention{}, false
	}
	axis := int64(-1)
	for _, a := range sm.Attrs {
		if a.Name == "axis" {
			axis = a.I
		}
	}
	if axis != -1 && axis != 3 {
		return attention{}, false
	}
	// The scale's constants are float32 scalars: at least one must be there, which also shows the
	// attention runs in float32 (the CPU kernel's type).
	found := 0
	f.headDim, f.headTensors = 0, nil
	scores, c := f.scaled(sm.Inputs[0], &found)
	if !f.only(sm.Inputs[0]) {
		return attention{}, false
	}
	qk, ok := f.producerOf(scores)
	if !ok || qk.OpType != "MatMul" || qk.Domain != "" || len(qk.Inputs) != 2 || !f.only(scores) {
		return attention{}, false
	}
	// The heads (and head size) come first: a scale computed from Shape(q) needs the head size.
	heads, reshape, ok := f.headCount(qk.Inputs[0])
	if !ok {
		return attention{}, false
	}
	f.headDim = f.headSize(reshape, heads)
	f.headTensors = map[string]bool{qk.Inputs[0]: true}
	for _, name := range qk.Inputs {
		if n, ok := f.producerOf(name); ok && n.OpType == "Mul" {
			for _, in := range n.Inputs {
				f.headTensors[in] = true
			}
		}
		if n, ok := f.producerOf(name); ok && n.OpType == "Transpose" {
			f.headTensors[n.Inputs[0]] = true
		}
	}
	q, a := f.scaled(qk.Inputs[0], &found)
	kt, b := f.scaled(qk.Inputs[1], &found)
	// kᵀ is Transpose(k, 0,1,3,2) of k [B, heads, S, d], or Transpose(k, 0,2,3,1) of k [B, S, heads, d]
	tr, ok := f.producerOf(kt)
	if !ok || !f.only(kt) || !(isPerm(tr, 0, 1, 3, 2) || isPerm(tr, 0, 2, 3, 1)) {
		return attention{}, false
	}
	f.headTensors[tr.Inputs[0]] = true
	k, b2 := f.scaled(tr.Inputs[0], &found) // √scale may also be applied to k before the transpose
	if found == 0 {
		return attention{}, false
	}
	p := attention{q: operand{name: q}, k: operand{name: k, bshd: isPerm(tr, 0, 2, 3, 1)}, v: operand{name: pv.Inputs[1]},
		heads: heads, scale: a * b * b2 * c, out: pv.Outputs[0], name: pv.Name}
	if math.IsNaN(float64(p.scale)) || math.IsInf(float64(p.scale), 0) || p.scale <= 0 {
		return attention{}, false
	}
	// The usual consumer merges the heads back: Transpose(0,2,1,3) → Reshape [B, S, heads·d].
	if f.only(p.out) {
		if t, ok := f.consumer(p.out); ok && isPerm(t, 0, 2, 1, 3) {
			p.outMerged = t.Outputs[0]
		}
	}
	return p, true
}

// consumer returns the single node reading name.
func (f *fuser) consumer(name string) (*onnx.Node, bool) {
	cs := f.x.consumers[name]
	if len(cs) != 1 {
		return nil, false
	}
	return &f.g.Nodes[cs[0]], true
}

// headCount finds the number of heads of split-heads value q [B, heads, S, d]: walking back through
// shape-keeping operators (a Concat along the sequence as in SD3's and FLUX's joint attention, scalar
// scalings, RMS qk-norm, RoPE) to Transpose(0,2,1,3) and on to the Reshape [.., .., heads, d] that
// split the heads, whose third element must be a constant.
func (f *fuser) headCount(q string) (int64, *onnx.Node, bool) {
	transposed := false
	for range 48 {
		n, ok := f.producerOf(q)
		if !ok || n.Domain != "" || len(n.Inputs) == 0 {
			return 0, nil, false
		}
		switch {
		case isPerm(n, 0, 2, 1, 3):
			transposed = true
		case n.OpType == "Transpose":
			return 0, nil, false
		case n.OpType == "Reshape":
			if !transposed || len(n.Inputs) != 2 {
				return 0, nil, false
			}
			h, ok := f.headsOfShape(n.Inputs[1])
			return h, n, ok
		case n.OpType == "Mul" && len(n.Inputs) == 2:
			if _, ok := f.scalar(n.Inputs[0]); ok {
				q = n.Inputs[1]
				continue
			}
		}
		q = n.Inputs[0]
	}
	return 0, nil, false
}

// headSize is the size of a head, d, for the split-heads Reshape [.., .., heads, d]: the shape's
// last element when it is a positive constant, else the width of the projection feeding the
// Reshape (a MatMul or Gemm with a constant weight, perhaps followed by its bias Add) over heads;
// 0 when neither is known.
func (f *fuser) headSize(reshape *onnx.Node, heads int64) int64 {
	if v, ok := f.int64s(reshape.Inputs[1]); ok && len(v) == 4 && v[3] > 0 {
		return v[3]
	}
	x := reshape.Inputs[0]
	for range 4 {
		n, ok := f.producerOf(x)
		if !ok || n.Domain != "" || len(n.Inputs) < 2 {
			return 0
		}
		switch n.OpType {
		case "Add":
			x = n.Inputs[0]
			if _, ok := f.x.constTensor(f.g, x); ok {
				x = n.Inputs[1]
			}
			continue
		case "MatMul", "Gemm":
			w, ok := f.x.constTensor(f.g, n.Inputs[1])
			if !ok || len(w.Dims) != 2 {
				return 0
			}
			width := w.Dims[1]
			for _, a := range n.Attrs {
				if a.Name == "transB" && a.I != 0 {
					width = w.Dims[0]
				}
			}
			if width%heads != 0 {
				return 0
			}
			return width / heads
		}
		return 0
	}
	return 0
}

// headsOfShape is the heads element of a split-heads Reshape's shape [.., .., heads, d]: the one
// before last, read from a constant int64 shape or from the constant tail of a Concat (exporters
// write dynamic dimensions as Unsqueezed scalars, or x.unflatten(-1, (heads, -1)) as
// Concat(Slice(Shape(x)), [heads, -1])).
func (f *fuser) headsOfShape(name string) (int64, bool) {
	var tail []int64 // the known elements, last first
	if v, ok := f.int64s(name); ok {
		if len(v) != 4 {
			return 0, false
		}
		tail = []int64{v[3], v[2]}
	} else {
		n, ok := f.producerOf(name)
		if !ok || n.OpType != "Concat" || n.Domain != "" {
			return 0, false
		}
		for i := len(n.Inputs) - 1; i >= 0 && len(tail) < 2; i-- {
			if v, ok := f.int64s(n.Inputs[i]); ok {
				for j := len(v) - 1; j >= 0; j-- {
					tail = append(tail, v[j])
				}
				continue
			}
			if u, ok := f.producerOf(n.Inputs[i]); !ok || u.OpType != "Unsqueeze" {
				return 0, false
			}
			tail = append(tail, -1) // one dynamic element
		}
	}
	if len(tail) < 2 || tail[1] <= 0 {
		return 0, false
	}
	return tail[1], true
}

// int64s returns the values of a constant int64 tensor (initializer or Constant node).
func (f *fuser) int64s(name string) ([]int64, bool) {
	t := f.constant(name)
	if t == nil || t.Type != onnx.Int64 || t.RawSize() > 64 {
		return nil, false
	}
	v, err := t.Int64s()
	return v, err == nil
}

func (f *fuser) unique(base string) string {
	for {
		f.seq++
		s := fmt.Sprintf("%s_fused_%d", base, f.seq)
		if !f.names[s] {
			f.names[s] = true
			return s
		}
	}
}

// shapeConst adds an int64 shape initializer.
func (f *fuser) shapeConst(v ...int64) string {
	t := onnx.Int64Tensor(f.unique("shape"), []int64{int64(len(v))}, v)
	f.added = append(f.added, t)
	return t.Name
}

// emit writes the nodes replacing the pattern's final MatMul: q, k, v with their heads merged
// ([B, S, heads·d]), MultiHeadAttention, and the heads split again (or, when the pattern's consumer
// merges them, a Reshape standing in for that consumer's Transpose).
func (f *fuser) emit(p attention) []onnx.Node {
	var nodes []onnx.Node
	merged := func(op operand) string {
		v := op.name
		if n, ok := f.producerOf(v); ok && !op.bshd && isPerm(n, 0, 2, 1, 3) {
			v, op.bshd = n.Inputs[0], true // the split heads' own [B, S, heads, d] input
		}
		if !op.bshd { // [B, heads, S, d] → Transpose(0,2,1,3)
			t := f.unique(v + "_bshd")
			nodes = append(nodes, onnx.Node{Name: t, OpType: "Transpose", Inputs: []string{v}, Outputs: []string{t},
				Attrs: []onnx.Attribute{onnx.AttrInts("perm", 0, 2, 1, 3)}})
			v = t
		}
		m := f.unique(v + "_merged") // [B, S, heads, d] → [B, S, heads·d]
		nodes = append(nodes, onnx.Node{Name: m, OpType: "Reshape", Inputs: []string{v, f.shapeConst(0, 0, -1)}, Outputs: []string{m}})
		return m
	}
	q, k, v := merged(p.q), merged(p.k), merged(p.v)
	y := f.unique(p.name + "_mha")
	nodes = append(nodes, onnx.Node{Name: y, OpType: "MultiHeadAttention", Domain: msDomain, Inputs: []string{q, k, v},
		Outputs: []string{y}, Attrs: []onnx.Attribute{onnx.AttrInt("num_heads", p.heads), onnx.AttrFloat("scale", p.scale)}})
	// back to [B, S, heads, d]
	split := p.out
	if p.outMerged != "" {
		split = p.outMerged // the consumer Transpose's output: [B, S, heads, d] as well
	}
	bshd := split
	if p.outMerged == "" {
		bshd = f.unique(p.name + "_bshd")
	}
	nodes = append(nodes, onnx.Node{Name: f.unique(p.name + "_split"), OpType: "Reshape",
		Inputs: []string{y, f.shapeConst(0, 0, p.heads, -1)}, Outputs: []string{bshd}})
	if p.outMerged == "" {
		nodes = append(nodes, onnx.Node{Name: f.unique(p.name + "_bhsd"), OpType: "Transpose", Inputs: []string{bshd},
			Outputs: []string{p.out}, Attrs: []onnx.Attribute{onnx.AttrInts("perm", 0, 2, 1, 3)}})
	}
	return nodes
}
