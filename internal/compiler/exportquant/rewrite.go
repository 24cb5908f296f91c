// Package exportquant rewrites existing ONNX exports (diffusers/Optimum folders) the way rflow's
// compiler builds its own graphs: Linear weights quantized with the compiler's quantizers (int8
// DynamicQuantizeMatMul, q8/q4 MatMulNBits) and softmax(q·kᵀ·scale)·v attention fused into
// com.microsoft MultiHeadAttention. Weights stream from the input files to the output files one
// tensor at a time.
package exportquant

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/rflowrt/rflow/internal/compiler/arch"
	"github.com/rflowrt/rflow/internal/half"
	"github.com/rflowrt/rflow/internal/onnx"
)

// Errors wrapped by the rewrite for input it refuses; the output is never written for them.
var (
	ErrAlreadyQuantized  = errors.New("model is already quantized")
	ErrUnsupportedOpset  = errors.New("unsupported opset")
	ErrNothingToRewrite  = errors.New("nothing to rewrite")
	ErrUnknownWeightKind = errors.New("unknown weight kind")
)

// Opsets ONNX Runtime 1.24 runs: ai.onnx 7 (its oldest) to 24; the com.microsoft operators used here
// are version 1.
const (
	minOpset = 7
	maxOpset = 24
	msDomain = "com.microsoft"
)

// quantizedOps are operators that show a model's weights are already quantized.
var quantizedOps = []string{"MatMulNBits", "DynamicQuantizeMatMul", "MatMulInteger", "QLinearMatMul",
	"MatMulIntegerToFloat", "QGemm", "DequantizeLinear", "QuantizeLinear", "DynamicQuantizeLinear", "GatherBlockQuantized"}

// validKinds are the kinds a rewrite takes, for error messages.
const validKinds = "fp32, int8, q8, q4, q4s"

// ParseKind reads the --weights value of a rewrite: fp32 (no quantization: fuse attention only),
// int8, q8, q4 or q4s.
func ParseKind(s string) (arch.WeightKind, error) {
	k, err := arch.ParseWeightKind(s)
	if err != nil || k == arch.FP16 {
		return "", fmt.Errorf("%w %q (valid: %s)", ErrUnknownWeightKind, s, validKinds)
	}
	return k, nil
}

// Quant is how the kind quantizes: the compiler's measured recipe (arch.DefaultQuant: block sizes,
// accuracy levels, the q4 layers kept at 8 bits).
func Quant(k arch.WeightKind) arch.Quant { return arch.DefaultQuant(k) }

// Stats counts what a rewrite did to one graph.
type Stats struct {
	// WeightMatMuls are the MatMul and Gemm nodes with a constant 2-D float32 weight; Quantized those
	// rewritten, Float those left float: by the selection rule (outside the repeated blocks, too
	// small, input width not a multiple of the block) or as a Gemm the quantized operators cannot
	// express (alpha ≠ 1, transA, a general C).
	WeightMatMuls, Quantized, Float int
	// NotFloat32 are the MatMul and Gemm nodes whose constant 2-D weight is not float32 (a float16
	// export): the quantizers read float32 weights, so these are left as they are.
	NotFloat32 int
	// BiasesFolded are the Adds of a bias folded into the quantized operator.
	BiasesFolded int
	// Attentions are the softmax(q·kᵀ)·v patterns fused; AttentionsLeft the Softmax nodes left.
	Attentions, AttentionsLeft int
	// Float16Weights are the float weights left unquantized stored as float16 (Options.KeepFloat32).
	Float16Weights int
}

// Changed reports whether the rewrite changed the graph.
func (s Stats) Changed() bool { return s.Quantized > 0 || s.Attentions > 0 }

// Options select the rewrites of a graph.
type Options struct {
	// Kind is the weight kind: FP32 leaves the weights as they are.
	Kind arch.WeightKind
	// Quant overrides Quant(Kind) when its Kind is set (tests, experiments).
	Quant arch.Quant
	// FuseAttention rewrites attention into MultiHeadAttention.
	FuseAttention bool
	// KeepFloat32 keeps the float weights left unquantized (embedders, the output projection) in
	// float32. By default a quantizing rewrite stores those of at least halfMinElems values as float16
	// followed by a Cast, as the compiler does (the graph still computes in float32: ONNX Runtime
	// folds the Cast when it loads the model).
	KeepFloat32 bool
}

// halfMinElems is the size from which a float weight left unquantized is stored as float16: the
// embedders and projections, not the scalars and short vectors (norm epsilons, scales, biases).
const halfMinElems = 4096

func (o Options) quant() arch.Quant {
	if o.Quant.Kind != "" {
		return o.Quant
	}
	return Quant(o.Kind)
}

// CheckModel reports why m cannot be rewritten with o: an opset outside what ONNX Runtime runs, a
// com.microsoft import of another version, or (when quantizing) weights already quantized.
func CheckModel(m *onnx.Model, o Options) error {
	if v := m.Opset(""); v < minOpset || v > maxOpset {
		return fmt.Errorf("%w: ai.onnx opset %d (ONNX Runtime runs %d to %d)", ErrUnsupportedOpset, v, minOpset, maxOpset)
	}
	if v := m.Opset(msDomain); v != 0 && v != 1 {
		return fmt.Errorf("%w: com.microsoft opset %d (want 1)", ErrUnsupportedOpset, v)
	}
	if o.Kind.Quantized() {
		counts := map[string]int{}
		walkNodes(&m.Graph, func(n *onnx.Node) {
			if slices.Contains(quantizedOps, n.OpType) {
				counts[n.OpType]++
			}
		})
		if len(counts) > 0 {
			var parts []string
			for _, op := range quantizedOps {
				if counts[op] > 0 {
					parts = append(parts, fmt.Sprintf("%d %s", counts[op], op))
				}
			}
			return fmt.Errorf("%w (it has %s nodes)", ErrAlreadyQuantized, strings.Join(parts, ", "))
		}
	}
	return nil
}

// walkNodes calls fn on every node of g and its subgraphs.
func walkNodes(g *onnx.Graph, fn func(n *onnx.Node)) {
	for i := range g.Nodes {
		fn(&g.Nodes[i])
		for _, a := range g.Nodes[i].Attrs {
			if a.G != nil {
				walkNodes(a.G, fn)
			}
		}
	}
}

// Rewrite applies o's rewrites to the main graph of m in place. Quantized weights are produced when
// the model is written (each weight read, quantized and written in turn); ctx stops that. The
// model's float weights that no node uses any more are removed.
func Rewrite(ctx context.Context, m *onnx.Model, o Options) (Stats, error) {
	var st Stats
	if o.Kind != arch.FP32 && !o.Kind.Quantized() {
		return st, fmt.Errorf("%w %q (valid: %s)", ErrUnknownWeightKind, o.Kind, validKinds)
	}
	if err := CheckModel(m, o); err != nil {
		return st, err
	}
	g := &m.Graph
	if o.FuseAttention {
		n, err := fuseAttention(g)
		if err != nil {
			return st, err
		}
		st.Attentions = n
	}
	if o.Kind.Quantized() {
		if err := quantizeMatMuls(ctx, g, o.quant(), &st); err != nil {
			return st, err
		}
	}
	if st.Changed() {
		removeDeadNodes(g)
		removeUnusedInitializers(g)
	}
	if o.Kind.Quantized() && st.Quantized > 0 && !o.KeepFloat32 {
		st.Float16Weights = storeAsFloat16(g)
	}
	if st.Changed() {
		m.UseDomain(msDomain, 1)
	}
	walkNodes(g, func(n *onnx.Node) {
		if n.OpType == "Softmax" && n.Domain == "" {
			st.AttentionsLeft++
		}
	})
	return st, nil
}

// graphIndex finds initializers and each value's consumers.
type graphIndex struct {
	inits     map[string]int // initializer name → index
	consumers map[string][]int
	outputs   map[string]bool // graph outputs
	inputs    map[string]bool // graph inputs (an initializer that is also an input can be overridden)
	producer  map[string]int
}

func indexGraph(g *onnx.Graph) *graphIndex {
	x := &graphIndex{inits: map[string]int{}, consumers: map[string][]int{}, outputs: map[string]bool{},
		inputs: map[string]bool{}, producer: map[string]int{}}
	for i, t := range g.Initializers {
		x.inits[t.Name] = i
	}
	for i, n := range g.Nodes {
		for _, in := range n.Inputs {
			if in != "" {
				x.consumers[in] = append(x.consumers[in], i)
			}
		}
		for _, o := range n.Outputs {
			x.producer[o] = i
		}
		for _, a := range n.Attrs { // subgraphs may use outer values
			if a.G != nil {
				for _, name := range usedNames(a.G) {
					x.consumers[name] = append(x.consumers[name], i)
				}
			}
		}
	}
	for _, v := range g.Outputs {
		x.outputs[v.Name] = true
	}
	for _, v := range g.Inputs {
		x.inputs[v.Name] = true
	}
	return x
}

// usedNames lists the values a graph's nodes read, subgraphs included.
func usedNames(g *onnx.Graph) []string {
	var names []string
	walkNodes(g, func(n *onnx.Node) { names = append(names, n.Inputs...) })
	for _, v := range g.Outputs {
		names = append(names, v.Name)
	}
	return names
}

// constTensor returns the initializer named name, if it is one and cannot be overridden by an input.
func (x *graphIndex) constTensor(g *onnx.Graph, name string) (*onnx.Tensor, bool) {
	i, ok := x.inits[name]
	if !ok || x.inputs[name] {
		return nil, false
	}
	return &g.Initializers[i], true
}

// weightMatMul is a MatMul or Gemm whose B is a constant 2-D float32 weight.
type weightMatMul struct {
	node    int
	w       *onnx.Tensor
	in, out int  // K, N
	wT      bool // the weight is stored [N, K] (Gemm transB)
	bias    string
	biasAdd int // the folded Add's node, -1 for none
	// other is set for a Gemm form the quantized operators cannot express (alpha ≠ 1, transA, a C
	// that is not a [N] constant added with beta 1): it stays float.
	other bool
}

// matchWeightMatMul recognises the weight MatMuls: MatMul(A, W) and Gemm(A, W[, C]) with alpha 1,
// no transA and, with C, beta 1 and C a [N] constant.
func matchWeightMatMul(g *onnx.Graph, x *graphIndex, i int) (weightMatMul, bool) {
	n := &g.Nodes[i]
	if n.Domain != "" || len(n.Inputs) < 2 || len(n.Outputs) != 1 {
		return weightMatMul{}, false
	}
	w, ok := x.constTensor(g, n.Inputs[1])
	if !ok || w.Type != onnx.Float || len(w.Dims) != 2 || w.Dims[0] == 0 || w.Dims[1] == 0 {
		return weightMatMul{}, false
	}
	mm := weightMatMul{node: i, w: w, in: int(w.Dims[0]), out: int(w.Dims[1]), biasAdd: -1}
	switch n.OpType {
	case "MatMul":
		if len(n.Inputs) != 2 {
			return weightMatMul{}, false
		}
	case "Gemm":
		var alpha, beta float32 = 1, 1
		for _, a := range n.Attrs {
			switch a.Name {
			case "alpha":
				alpha = a.F
			case "beta":
				beta = a.F
			case "transA":
				mm.other = mm.other || a.I != 0
			case "transB":
				mm.wT = a.I != 0
			}
		}
		if mm.wT {
			mm.in, mm.out = mm.out, mm.in
		}
		mm.other = mm.other || alpha != 1
		if len(n.Inputs) > 2 && n.Inputs[2] != "" {
			c, ok := x.constTensor(g, n.Inputs[2])
			if !ok || beta != 1 || c.Type != onnx.Float || len(c.Dims) != 1 || c.Dims[0] != int64(mm.out) {
				mm.other = true
			}
			mm.bias = n.Inputs[2]
		}
		if mm.other {
			return mm, true
		}
	default:
		return weightMatMul{}, false
	}
	if mm.bias == "" {
		mm.bias, mm.biasAdd = foldableBias(g, x, n.Outputs[0], mm.out)
	}
	return mm, true
}

// foldableBias finds the Add of a [n] constant bias that is y's only consumer (how exporters write
// a Linear's bias), so the quantized operator can add it.
func foldableBias(g *onnx.Graph, x *graphIndex, y string, n int) (string, int) {
	cs := x.consumers[y]
	if len(cs) != 1 || x.outputs[y] {
		return "", -1
	}
	add := &g.Nodes[cs[0]]
	if add.OpType != "Add" || add.Domain != "" || len(add.Inputs) != 2 {
		return "", -1
	}
	other := add.Inputs[0]
	if other == y {
		other = add.Inputs[1]
	}
	if other == y {
		return "", -1
	}
	b, ok := x.constTensor(g, other)
	if !ok || b.Type != onnx.Float || len(b.Dims) != 1 || b.Dims[0] != int64(n) {
		return "", -1
	}
	return other, cs[0]
}

// LayerName is the state-dict name of the Linear weight a MatMul multiplies by, which the
// quantizer's layer rules read: the initializer's own name when it is one ("….weight", or rflow's
// transposed "….weight.T"), else the name exporters give the node ("/transformer_blocks.0/attn/
// to_q/MatMul" → "transformer_blocks.0.attn.to_q.weight"), else the initializer's name.
func LayerName(node, init string) string {
	switch {
	case strings.HasSuffix(init, ".weight.T"):
		return strings.TrimSuffix(init, ".T")
	case strings.HasSuffix(init, ".weight"):
		return init
	}
	p := strings.Split(strings.Trim(node, "/"), "/")
	if len(p) >= 2 {
		return strings.Join(p[:len(p)-1], ".") + ".weight"
	}
	return init
}

// quantizeMatMuls rewrites the selected weight MatMuls of g.
func quantizeMatMuls(ctx context.Context, g *onnx.Graph, q arch.Quant, st *Stats) error {
	x := indexGraph(g)
	names := map[string]bool{}
	for _, t := range g.Initializers {
		names[t.Name] = true
	}
	walkNodes(g, func(n *onnx.Node) {
		for _, o := range n.Outputs {
			names[o] = true
		}
	})
	for _, v := range g.Inputs {
		names[v.Name] = true
	}
	unique := func(base string) string {
		s := base
		for i := 1; names[s]; i++ {
			s = fmt.Sprintf("%s_%d", base, i)
		}
		names[s] = true
		return s
	}
	memo := &quantMemo{ctx: ctx}
	type quantInits struct {
		names                  []string
		bits, blockSize, level int
	}
	done := map[string]quantInits{} // weight initializer → its quantized initializers
	var added []onnx.Tensor
	drop := map[int]bool{}
	for i := range g.Nodes {
		mm, ok := matchWeightMatMul(g, x, i)
		if !ok {
			if n := &g.Nodes[i]; (n.OpType == "MatMul" || n.OpType == "Gemm") && n.Domain == "" && len(n.Inputs) > 1 {
				if w, ok := x.constTensor(g, n.Inputs[1]); ok && len(w.Dims) == 2 && w.Type != onnx.Float {
					st.NotFloat32++
				}
			}
			continue
		}
		st.WeightMatMuls++
		n := &g.Nodes[i]
		layer := LayerName(n.Name, mm.w.Name)
		if mm.other || !arch.QuantSelects(q, layer, mm.in, mm.out) {
			st.Float++
			continue
		}
		key := mm.w.Name
		if mm.wT {
			key += "/T"
		}
		inits, ok := done[key]
		if !ok {
			l := &layerWeight{w: *mm.w, transposed: mm.wT, name: layer, in: mm.in, out: mm.out, q: q}
			bits, bs, level := q.Layout(layer, mm.in)
			mk := func(suffix string, t onnx.DataType, part int, dims ...int64) onnx.Tensor {
				return onnx.Tensor{Name: unique(layer + suffix), Type: t, Dims: dims, Source: quantPart{memo, l, part}}
			}
			inits.bits, inits.blockSize, inits.level = bits, bs, level
			var ts []onnx.Tensor
			if q.Kind == arch.Int8 {
				ts = []onnx.Tensor{mk(".int8", onnx.Int8, 0, int64(mm.in), int64(mm.out)), mk(".scale", onnx.Float, 1, int64(mm.out))}
			} else {
				kb := int64(mm.in / bs)
				ts = []onnx.Tensor{mk(".qweight", onnx.Uint8, 0, int64(mm.out), kb, int64(bs*bits/8)),
					mk(".scales", onnx.Float, 1, int64(mm.out), kb), mk(".zero_points", onnx.Uint8, 2, int64(mm.out), (kb*int64(bits)+7)/8)}
			}
			for _, t := range ts {
				inits.names = append(inits.names, t.Name)
			}
			done[key] = inits
			added = append(added, ts...)
		}
		out := n.Outputs[0]
		if mm.biasAdd >= 0 {
			out = g.Nodes[mm.biasAdd].Outputs[0]
			drop[mm.biasAdd] = true
			st.BiasesFolded++
		}
		a := n.Inputs[0]
		if q.Kind == arch.Int8 {
			*n = onnx.Node{Name: n.Name, OpType: "DynamicQuantizeMatMul", Domain: msDomain,
				Inputs: optional(a, inits.names[0], inits.names[1], "", mm.bias), Outputs: []string{out}}
		} else {
			*n = onnx.Node{Name: n.Name, OpType: "MatMulNBits", Domain: msDomain,
				Inputs: optional(a, inits.names[0], inits.names[1], inits.names[2], "", mm.bias), Outputs: []string{out},
				Attrs: []onnx.Attribute{onnx.AttrInt("K", int64(mm.in)), onnx.AttrInt("N", int64(mm.out)),
					onnx.AttrInt("bits", int64(inits.bits)), onnx.AttrInt("block_size", int64(inits.blockSize)),
					onnx.AttrInt("accuracy_level", int64(inits.level))}}
		}
		st.Quantized++
	}
	if len(drop) > 0 {
		nodes := g.Nodes[:0]
		for i, n := range g.Nodes {
			if !drop[i] {
				nodes = append(nodes, n)
			}
		}
		g.Nodes = nodes
	}
	g.Initializers = append(g.Initializers, added...)
	return nil
}

// optional drops the trailing absent ("") inputs of a node.
func optional(inputs ...string) []string {
	for len(inputs) > 0 && inputs[len(inputs)-1] == "" {
		inputs = inputs[:len(inputs)-1]
	}
	return inputs
}

// layerWeight is one float weight to quantize, read from the model's files when its turn comes.
type layerWeight struct {
	w          onnx.Tensor
	transposed bool // stored [out, in] already
	name       string
	in, out    int
	q          arch.Quant
}

// quantMemo keeps the last quantized weight, so its parts — written one after another — read and
// quantize it once, and only one quantized weight is in memory at a time.
type quantMemo struct {
	ctx  context.Context
	mu   sync.Mutex
	last *layerWeight
	r    arch.QuantizedLinear
}

func (m *quantMemo) get(l *layerWeight) (arch.QuantizedLinear, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.last == l {
		return m.r, nil
	}
	if err := m.ctx.Err(); err != nil {
		return arch.QuantizedLinear{}, err
	}
	// The weight streams from its file straight into torch's [out, in] layout (MatMul's B is
	// [in, out]; a Gemm with transB stores [out, in] already): no copy of its bytes is kept.
	v := make([]float32, l.in*l.out)
	sink := &floatSink{v: v}
	if !l.transposed {
		sink.rows, sink.cols = l.in, l.out
	}
	var err error
	if l.w.Source != nil {
		err = l.w.Source.WriteRaw(sink)
	} else {
		_, err = sink.Write(l.w.Raw)
	}
	if err != nil {
		return arch.QuantizedLinear{}, fmt.Errorf("read %s: %w", l.w.Name, err)
	}
	if sink.n != len(v) || sink.np != 0 {
		return arch.QuantizedLinear{}, fmt.Errorf("read %s: %d of %d values", l.w.Name, sink.n, len(v))
	}
	r, ok, err := arch.QuantizeLinear(l.q, l.name, v, l.out, l.in)
	if err == nil && !ok {
		err = fmt.Errorf("layer %s is not selected for quantization", l.name)
	}
	if err != nil {
		return arch.QuantizedLinear{}, fmt.Errorf("quantize %s: %w", l.name, err)
	}
	m.last, m.r = l, r
	return r, nil
}

// floatSink decodes little-endian float32 bytes as they are written into v, transposing a [rows,
// cols] matrix into [cols, rows] when rows > 0.
type floatSink struct {
	v          []float32
	rows, cols int
	n          int // values decoded
	part       [4]byte
	np         int // bytes of a value split across writes
}

func (s *floatSink) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		if s.np > 0 || len(p) < 4 {
			k := copy(s.part[s.np:], p)
			s.np += k
			p = p[k:]
			if s.np < 4 {
				break
			}
			s.put(binary.LittleEndian.Uint32(s.part[:]))
			s.np = 0
			continue
		}
		s.put(binary.LittleEndian.Uint32(p))
		p = p[4:]
	}
	return total, nil
}

func (s *floatSink) put(bits uint32) {
	if s.n >= len(s.v) {
		s.n++ // too many values: counted, reported by the caller
		return
	}
	i := s.n
	if s.rows > 0 {
		i = (s.n%s.cols)*s.rows + s.n/s.cols
	}
	s.v[i] = math.Float32frombits(bits)
	s.n++
}

// quantPart writes one part of a quantized weight: 0 the data, 1 the scales, 2 the zero points.
type quantPart struct {
	m    *quantMemo
	l    *layerWeight
	part int
}

func (p quantPart) WriteRaw(w io.Writer) error {
	r, err := p.m.get(p.l)
	if err != nil {
		return err
	}
	switch p.part {
	case 0:
		_, err = w.Write(r.Data)
	case 1:
		_, err = w.Write(onnx.Float32Tensor("", nil, r.Scales).Raw)
	default:
		_, err = w.Write(r.Zeros)
	}
	return err
}

// removeDeadNodes drops nodes none of whose outputs is used (by a node, a subgraph or a graph
// output), repeatedly, so rewritten patterns leave nothing behind.
func removeDeadNodes(g *onnx.Graph) {
	for {
		used := map[string]bool{}
		for _, name := range usedNames(g) {
			used[name] = true
		}
		nodes := g.Nodes[:0]
		for _, n := range g.Nodes {
			live := false
			for _, o := range n.Outputs {
				live = live || (o != "" && used[o])
			}
			if live {
				nodes = append(nodes, n)
			}
		}
		removed := len(nodes) < len(g.Nodes)
		g.Nodes = nodes
		if !removed {
			return
		}
	}
}

// removeUnusedInitializers drops initializers nothing reads (weights replaced by quantized ones).
func removeUnusedInitializers(g *onnx.Graph) {
	used := map[string]bool{}
	for _, name := range usedNames(g) {
		used[name] = true
	}
	for _, v := range g.Inputs {
		used[v.Name] = true
	}
	inits := g.Initializers[:0]
	for _, t := range g.Initializers {
		if used[t.Name] {
			inits = append(inits, t)
		}
	}
	g.Initializers = inits
}

// storeAsFloat16 replaces each float32 initializer of at least halfMinElems values (that no graph
// input can override) by a float16 initializer and a Cast back to float32 under the old name, and
// returns how many it replaced. The values are converted when the model is written.
func storeAsFloat16(g *onnx.Graph) int {
	x := indexGraph(g)
	names := map[string]bool{}
	for name := range x.producer {
		names[name] = true
	}
	for name := range x.inits {
		names[name] = true
	}
	var casts []onnx.Node
	n := 0
	for i := range g.Initializers {
		t := &g.Initializers[i]
		if _, quantized := t.Source.(quantPart); quantized || t.Type != onnx.Float || t.RawSize()/4 < halfMinElems || x.inputs[t.Name] {
			continue // the quantized operators' scales stay float32, as the compiler stores them
		}
		name := t.Name + ".fp16"
		for k := 1; names[name]; k++ {
			name = fmt.Sprintf("%s.fp16_%d", t.Name, k)
		}
		names[name] = true
		casts = append(casts, onnx.Node{Name: name + "/Cast", OpType: "Cast", Inputs: []string{name}, Outputs: []string{t.Name},
			Attrs: []onnx.Attribute{onnx.AttrInt("to", int64(onnx.Float))}})
		*t = onnx.Tensor{Name: name, Type: onnx.Float16, Dims: t.Dims, Source: halfSource{*t}}
		n++
	}
	g.Nodes = append(casts, g.Nodes...)
	return n
}

// halfSource writes a float32 tensor's values rounded to float16, converting as they stream.
type halfSource struct{ t onnx.Tensor }

func (h halfSource) WriteRaw(w io.Writer) error {
	if h.t.Source == nil {
		v, err := h.t.Float32s()
		if err != nil {
			return err
		}
		_, err = w.Write(onnx.Float16Tensor("", nil, v).Raw)
		return err
	}
	c := &halfWriter{w: w}
	if err := h.t.Source.WriteRaw(c); err != nil {
		return err
	}
	if c.np != 0 {
		return fmt.Errorf("%s: %d trailing bytes", h.t.Name, c.np)
	}
	return nil
}

// halfWriter converts the float32 bytes written to it into float16 bytes for w.
type halfWriter struct {
	w    io.Writer
	part [4]byte
	np   int
	out  []byte
}

func (h *halfWriter) Write(p []byte) (int, error) {
	total := len(p)
	h.out = h.out[:0]
	for len(p) > 0 {
		var bits uint32
		if h.np > 0 || len(p) < 4 {
			k := copy(h.part[h.np:], p)
			h.np += k
			p = p[k:]
			if h.np < 4 {
				break
			}
			bits, h.np = binary.LittleEndian.Uint32(h.part[:]), 0
		} else {
			bits, p = binary.LittleEndian.Uint32(p), p[4:]
		}
		h.out = binary.LittleEndian.AppendUint16(h.out, half.FromFloat32(math.Float32frombits(bits)))
	}
	if _, err := h.w.Write(h.out); err != nil {
		return 0, err
	}
	return total, nil
}
