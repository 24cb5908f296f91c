package checkpoint

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// mapper builds the recipes of one group, collecting the source tensors it needed and did not find.
type mapper struct {
	g       *group
	out     map[string]Recipe
	missing []string
	bad     []string // source tensors whose shape cannot be split as the layout says
}

func newMapper(g *group) *mapper { return &mapper{g: g, out: map[string]Recipe{}} }

func (m *mapper) meta(src string) (TensorMeta, bool) {
	t, ok := m.g.meta[src]
	if !ok {
		m.missing = append(m.missing, m.g.source(src))
	}
	return t, ok
}

// rename makes dst the whole of src.
func (m *mapper) rename(dst, src string) {
	if t, ok := m.meta(src); ok {
		m.out[dst] = Recipe{Pieces: []Piece{{m.g.source(src), 0, -1}}, Shape: slices.Clone(t.Shape), DType: t.DType}
	}
}

// linear renames src.weight and src.bias to dst.weight and dst.bias.
func (m *mapper) linear(dst, src string) {
	m.rename(dst+".weight", src+".weight")
	m.rename(dst+".bias", src+".bias")
}

// reshape makes dst the whole of src with a new shape of the same element count.
func (m *mapper) reshape(dst, src string, shape []int64) {
	t, ok := m.meta(src)
	if !ok {
		return
	}
	if n := count(shape); n < 0 || count(t.Shape) != n {
		m.bad = append(m.bad, fmt.Sprintf("%s: shape %v cannot become %v", m.g.source(src), t.Shape, shape))
		return
	}
	m.out[dst] = Recipe{Pieces: []Piece{{m.g.source(src), 0, -1}}, Shape: shape, DType: t.DType}
}

// splitRows cuts src along dim 0 into consecutive parts of the given row counts, one per dst (a fused
// qkv or linear1). A part of -1 rows takes what the others leave.
func (m *mapper) splitRows(src string, dsts []string, rows []int64) {
	t, ok := m.meta(src)
	if !ok {
		return
	}
	if len(t.Shape) == 0 {
		m.bad = append(m.bad, fmt.Sprintf("%s: a scalar cannot be split", m.g.source(src)))
		return
	}
	rows = slices.Clone(rows)
	var known int64
	rest := -1
	for i, r := range rows {
		if r < 0 {
			rest = i
		} else {
			known += r
		}
	}
	if rest >= 0 {
		rows[rest] = t.Shape[0] - known
	}
	var sum int64
	for _, r := range rows {
		if r <= 0 {
			sum = -1
			break
		}
		sum += r
	}
	if sum != t.Shape[0] {
		m.bad = append(m.bad, fmt.Sprintf("%s: shape %v does not split into rows %v", m.g.source(src), t.Shape, rows))
		return
	}
	var at int64
	for i, dst := range dsts {
		shape := slices.Clone(t.Shape)
		shape[0] = rows[i]
		m.out[dst] = Recipe{Pieces: []Piece{{m.g.source(src), at, at + rows[i]}}, Shape: shape, DType: t.DType}
		at += rows[i]
	}
}

// splitEqual cuts src into len(dsts) equal row blocks (a fused qkv).
func (m *mapper) splitEqual(src string, dsts ...string) {
	t, ok := m.meta(src)
	if !ok {
		return
	}
	n := int64(len(dsts))
	if len(t.Shape) == 0 || t.Shape[0]%n != 0 {
		m.bad = append(m.bad, fmt.Sprintf("%s: shape %v does not split into %d equal parts", m.g.source(src), t.Shape, n))
		return
	}
	rows := make([]int64, n)
	for i := range rows {
		rows[i] = t.Shape[0] / n
	}
	m.splitRows(src, dsts, rows)
}

// swapHalves makes dst src with its two row halves exchanged: BFL/SAI AdaLayerNormContinuous keeps
// (shift, scale), diffusers (scale, shift).
func (m *mapper) swapHalves(dst, src string) {
	t, ok := m.meta(src)
	if !ok {
		return
	}
	if len(t.Shape) == 0 || t.Shape[0]%2 != 0 {
		m.bad = append(m.bad, fmt.Sprintf("%s: shape %v has no two equal halves", m.g.source(src), t.Shape))
		return
	}
	h := t.Shape[0] / 2
	s := m.g.source(src)
	m.out[dst] = Recipe{Pieces: []Piece{{s, h, 2 * h}, {s, 0, h}}, Shape: slices.Clone(t.Shape), DType: t.DType}
}

func (m *mapper) err() error {
	var parts []string
	if len(m.missing) > 0 {
		parts = append(parts, "missing "+listNames(m.missing))
	}
	if len(m.bad) > 0 {
		parts = append(parts, strings.Join(m.bad, "; "))
	}
	if len(parts) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrMismatch, strings.Join(parts, "; "))
}

// listNames shows up to 10 names and how many more there are.
func listNames(names []string) string {
	names = slices.Clone(names)
	sort.Strings(names)
	names = slices.Compact(names)
	s := names
	if len(s) > 10 {
		s = s[:10]
	}
	out := strings.Join(s, ", ")
	if len(names) > len(s) {
		out += fmt.Sprintf(" (and %d more)", len(names)-len(s))
	}
	return out
}

// count is the element count of a shape, or -1 for a negative dim or one past int64.
func count(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		if d < 0 || (d > 0 && n > math.MaxInt64/d) {
			return -1
		}
		n *= d
	}
	return n
}

// blockCount is 1 + the largest N among names "prefix.N.…" (0 when there are none), at most the number of
// tensors in the group (an absurd index must not make the converters loop over millions of blocks).
func blockCount(g *group, prefix string) int64 {
	return min(rawBlockCount(g, prefix), int64(len(g.meta)))
}

func rawBlockCount(g *group, prefix string) int64 {
	var n int64
	for name := range g.meta {
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok {
			continue
		}
		idx, _, _ := strings.Cut(rest, ".")
		var i int64
		if _, err := fmt.Sscanf(idx, "%d", &i); err == nil && i >= 0 && i < 1<<20 && i+1 > n {
			n = i + 1
		}
	}
	return n
}

// dim reads dim i of a canonical tensor's shape, or records why it cannot.
type shapes struct {
	t    map[string]Recipe
	errs []string
}

func (s *shapes) dim(name string, i int) int64 {
	r, ok := s.t[name]
	if !ok {
		s.errs = append(s.errs, "missing "+name)
		return 0
	}
	if i >= len(r.Shape) {
		s.errs = append(s.errs, fmt.Sprintf("%s has shape %v (want at least %d dims)", name, r.Shape, i+1))
		return 0
	}
	return r.Shape[i]
}

func (s *shapes) err() error {
	if len(s.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrMismatch, strings.Join(s.errs, "; "))
}

// finish checks the recipes against the schema that config implies and fills in Unused: a missing tensor
// or a shape that disagrees is an error naming the tensor, its source, the expected and found shape.
// Recipes the schema does not know (an identity-mapped file's extra tensors) are dropped.
func finish(g *group, c *Component, ignore func(src string) bool) error {
	want, err := Expected(c.Class, c.Config)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMismatch, err)
	}
	var missing, wrong []string
	for name, shape := range want {
		r, ok := c.Tensors[name]
		if !ok {
			missing = append(missing, name)
			continue
		}
		if !slices.Equal(r.Shape, shape) {
			wrong = append(wrong, fmt.Sprintf("%s%s: expected shape %v, found %v", name, from(r), shape, r.Shape))
		}
	}
	for name := range c.Tensors {
		if _, ok := want[name]; !ok {
			delete(c.Tensors, name)
		}
	}
	if len(missing) > 0 || len(wrong) > 0 {
		var parts []string
		if len(missing) > 0 {
			parts = append(parts, "missing "+listNames(missing))
		}
		sort.Strings(wrong)
		if len(wrong) > 5 {
			wrong = append(wrong[:5], fmt.Sprintf("and %d more", len(wrong)-5))
		}
		parts = append(parts, wrong...)
		return fmt.Errorf("%w (%s): %s", ErrMismatch, configSummary(c), strings.Join(parts, "; "))
	}
	used := map[string]bool{}
	for _, r := range c.Tensors {
		for _, p := range r.Pieces {
			used[p.Tensor] = true
		}
	}
	c.Unused = nil
	for _, n := range g.names() {
		s := g.source(n)
		if !used[s] && (ignore == nil || !ignore(n)) {
			c.Unused = append(c.Unused, s)
		}
	}
	return nil
}

// from names a recipe's source when it differs from the canonical name.
func from(r Recipe) string {
	if len(r.Pieces) == 0 {
		return ""
	}
	return " (from " + r.Pieces[0].Tensor + ")"
}

// configSummary is the few config fields that explain an expected shape.
func configSummary(c *Component) string {
	keys := map[string][]string{
		"FluxTransformer2DModel":      {"num_layers", "num_single_layers", "num_attention_heads", "attention_head_dim"},
		"SD3Transformer2DModel":       {"num_layers", "num_attention_heads", "attention_head_dim", "dual_attention_layers"},
		"AutoencoderKL":               {"block_out_channels", "layers_per_block", "latent_channels"},
		"CLIPTextModel":               {"hidden_size", "num_hidden_layers", "num_attention_heads"},
		"CLIPTextModelWithProjection": {"hidden_size", "num_hidden_layers", "num_attention_heads"},
		"T5EncoderModel":              {"d_model", "num_layers", "num_heads", "d_kv"},
	}[c.Class]
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %v", k, c.Config[k]))
	}
	return c.Class + " with " + strings.Join(parts, ", ")
}
