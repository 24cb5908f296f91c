package lora

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/rflowrt/rflow/internal/compiler/arch"
	"github.com/rflowrt/rflow/internal/compiler/checkpoint"
)

// Use is one LoRA file at a weight (the w of W' = W + w·(α/r)·up·down).
type Use struct {
	File   *File
	Weight float64
}

// Report is what one LoRA patched: how many of its modules, and in which components.
type Report struct {
	Modules int
	Roles   []checkpoint.Role
}

// rowMap sends rows [src, src+n) of a module's update to rows [dst, dst+n) of a parameter.
type rowMap struct{ dst, src, n int64 }

// patch is one module's update to one parameter.
type patch struct {
	file  *File
	m     *module
	c     float32 // w · α / r
	rows  []rowMap
	cols  int64
	shape []int64 // the update's [rows, cols], for messages
	band  int64   // values of the update made at a time
}

// Merged is a set of LoRAs mapped onto a model: Wrap gives each component's weights with the updates
// added.
type Merged struct {
	byParam map[checkpoint.Role]map[string][]*patch
	reports []Report
}

// Apply maps every module of every LoRA onto the components. A module that matches no parameter, an
// update whose shape differs from the parameter's, a weight that is NaN or infinite, and a LoRA that
// patches nothing are errors naming the LoRA and the key.
func Apply(family string, comps []Component, uses []Use) (*Merged, error) {
	idx, shapes, err := buildIndex(family, comps)
	if err != nil {
		return nil, err
	}
	out := &Merged{byParam: map[checkpoint.Role]map[string][]*patch{}}
	for _, u := range uses {
		if math.IsNaN(u.Weight) || math.IsInf(u.Weight, 0) {
			return nil, fmt.Errorf("LoRA %s: weight %v is not a finite number", u.File.Path, u.Weight)
		}
		rep := Report{}
		var unmatched []*module
		for _, m := range u.File.modules {
			t := idx[m.key]
			if t == nil {
				unmatched = append(unmatched, m)
				continue
			}
			ps, err := u.File.plan(m, t, shapes, u.Weight)
			if err != nil {
				return nil, err
			}
			for param, p := range ps {
				if out.byParam[t.role] == nil {
					out.byParam[t.role] = map[string][]*patch{}
				}
				out.byParam[t.role][param] = append(out.byParam[t.role][param], p)
			}
			rep.Modules++
			if !slices.Contains(rep.Roles, t.role) {
				rep.Roles = append(rep.Roles, t.role)
			}
		}
		if len(unmatched) > 0 {
			m := unmatched[0]
			more := ""
			if len(unmatched) > 1 {
				more = fmt.Sprintf(" (and %d more of its %d keys)", len(unmatched)-1, len(u.File.modules))
			}
			return nil, fmt.Errorf("LoRA %s: key %s (%s) matches no module of this %s model%s: a LoRA for another "+
				"architecture or size", u.File.Path, m.key, u.File.describe(m), family, more)
		}
		if rep.Modules == 0 {
			return nil, fmt.Errorf("LoRA %s patches no module", u.File.Path)
		}
		sort.Slice(rep.Roles, func(i, j int) bool { return rep.Roles[i] < rep.Roles[j] })
		out.reports = append(out.reports, rep)
	}
	return out, nil
}

// Reports are the uses' reports, in order.
func (m *Merged) Reports() []Report { return m.reports }

// Patches reports whether any LoRA patches the component.
func (m *Merged) Patches(role checkpoint.Role) bool { return len(m.byParam[role]) > 0 }

// Wrap is the component's weights with the updates added (w itself when no LoRA patches it).
func (m *Merged) Wrap(role checkpoint.Role, w arch.Weights) arch.Weights {
	if !m.Patches(role) {
		return w
	}
	return patched{base: w, patches: m.byParam[role]}
}

// describe lists a module's tensor shapes.
func (f *File) describe(m *module) string {
	var slots []string
	for s := range m.slots {
		if s != "alpha" {
			slots = append(slots, s)
		}
	}
	sort.Strings(slots)
	var parts []string
	for _, s := range slots {
		info, _ := f.r.Info(m.slots[s])
		parts = append(parts, fmt.Sprintf("%s %v", s, info.Shape))
	}
	return strings.Join(parts, ", ")
}

func (f *File) shape(m *module, slot string) []int64 {
	info, _ := f.r.Info(m.slots[slot])
	return info.Shape
}

func prod(s []int64) int64 {
	n := int64(1)
	for _, d := range s {
		n *= d
	}
	return n
}

// updateShape is a module's update as a matrix [rows, cols] (a convolution's kernel dims folded into
// cols) and its rank r (0: the α/r scale does not apply).
func (f *File) updateShape(m *module) (rows, cols, rank int64, err error) {
	bad := func(why string) error {
		return fmt.Errorf("LoRA %s: key %s (%s): %s", f.Path, m.key, f.describe(m), why)
	}
	switch m.kind {
	case plainLoRA:
		up, down := f.shape(m, "up"), f.shape(m, "down")
		if len(up) < 2 || len(down) < 2 || up[0] == 0 || prod(up)/up[0] != down[0] {
			return 0, 0, 0, bad("up and down do not multiply")
		}
		return up[0], prod(down[1:]), down[0], nil
	case loHa:
		a1, b1, a2, b2 := f.shape(m, "hada_w1_a"), f.shape(m, "hada_w1_b"), f.shape(m, "hada_w2_a"), f.shape(m, "hada_w2_b")
		if len(a1) != 2 || len(a2) != 2 || len(b1) < 2 || len(b2) < 2 || a1[1] != b1[0] || a2[1] != b2[0] ||
			a1[0] != a2[0] || prod(b1[1:]) != prod(b2[1:]) {
			return 0, 0, 0, bad("the LoHa factors do not fit each other")
		}
		return a1[0], prod(b1[1:]), b1[0], nil
	case loKr:
		r1, c1, k1, e1 := f.kronFactor(m, "lokr_w1")
		r2, c2, k2, e2 := f.kronFactor(m, "lokr_w2")
		if e1 != nil || e2 != nil {
			return 0, 0, 0, bad("the LoKr factors are not matrices that multiply")
		}
		return r1 * r2, c1 * c2, max(k1, k2), nil
	case fullDiff:
		d := f.shape(m, "diff")
		if len(d) < 2 {
			return 0, 0, 0, bad("the diff is not a matrix")
		}
		return d[0], prod(d[1:]), 0, nil
	}
	return 0, 0, 0, bad("unknown variant")
}

// kronFactor is a LoKr factor's shape: whole (lokr_w1) or the product of lokr_w1_a and lokr_w1_b, whose
// inner size is the rank.
func (f *File) kronFactor(m *module, base string) (rows, cols, rank int64, err error) {
	if _, ok := m.slots[base]; ok {
		s := f.shape(m, base)
		if len(s) != 2 {
			return 0, 0, 0, fmt.Errorf("not a matrix")
		}
		return s[0], s[1], 0, nil
	}
	a, b := f.shape(m, base+"_a"), f.shape(m, base+"_b")
	if len(a) != 2 || len(b) != 2 || a[1] != b[0] {
		return 0, 0, 0, fmt.Errorf("not a product")
	}
	return a[0], b[1], a[1], nil
}

// plan checks a module's update against its target's parameters and returns the patch of each.
func (f *File) plan(m *module, t *target, shapes map[string][]int64, weight float64) (map[string]*patch, error) {
	rows, cols, rank, err := f.updateShape(m)
	if err != nil {
		return nil, err
	}
	scale := 1.0
	if rank > 0 && !math.IsNaN(m.alpha) {
		if m.rslora {
			scale = m.alpha / math.Sqrt(float64(rank))
		} else {
			scale = m.alpha / float64(rank)
		}
	}
	c := float32(weight * scale)
	var total int64
	var partShapes []string
	out := map[string]*patch{}
	for _, part := range t.parts {
		s := shapes[string(t.role)+"/"+part+".weight"]
		partShapes = append(partShapes, fmt.Sprintf("%s.weight %v", part, s))
		pr := s[0]
		if prod(s[1:]) != cols {
			total = math.MinInt64 / 2 // reported below, with every part's shape
		}
		p := &patch{file: f, m: m, c: c, cols: cols, shape: []int64{rows, cols}, band: 4 << 20}
		if t.swap {
			h := pr / 2
			p.rows = []rowMap{{dst: 0, src: total + h, n: h}, {dst: h, src: total, n: h}}
		} else {
			p.rows = []rowMap{{dst: 0, src: total, n: pr}}
		}
		out[part+".weight"] = p
		total += pr
	}
	if total != rows || t.swap && rows%2 != 0 {
		return nil, fmt.Errorf("LoRA %s: key %s (%s) gives a [%d, %d] update, but %s %s", f.Path, m.key, f.describe(m),
			rows, cols, t.role, strings.Join(partShapes, " + "))
	}
	return out, nil
}

// patched adds the updates to a component's weights as they stream.
type patched struct {
	base    arch.Weights
	patches map[string][]*patch
}

func (p patched) Shape(name string) ([]int64, bool) { return p.base.Shape(name) }

func (p patched) Float32(name string, shape []int64) ([]float32, error) {
	v, err := p.base.Float32(name, shape)
	ps := p.patches[name]
	if err != nil || len(ps) == 0 {
		return v, err
	}
	out := v
	if f, ok := p.base.(interface{ FreshFloat32() bool }); !ok || !f.FreshFloat32() {
		out = slices.Clone(v) // the base may hand out its own storage
	}
	for _, pt := range ps {
		if err := pt.addTo(out); err != nil {
			return nil, fmt.Errorf("LoRA %s: key %s: %w", pt.file.Path, pt.m.key, err)
		}
	}
	return out, nil
}

// addTo adds c · update rows to w (row-major, cols wide). The product c·u is rounded to float32 before
// the sum, as torch's W + c·(up @ down) does (the explicit conversions forbid a fused multiply-add).
// The update is made in bands of about 16 MB of rows, so a merge holds little beside the tensor itself.
func (pt *patch) addTo(w []float32) error {
	band := max(1, pt.band/pt.cols)
	for _, rm := range pt.rows {
		for b0 := int64(0); b0 < rm.n; b0 += band {
			b1 := min(b0+band, rm.n)
			u, err := pt.update(rm.src+b0, rm.src+b1)
			if err != nil {
				return err
			}
			dst := w[(rm.dst+b0)*pt.cols : (rm.dst+b1)*pt.cols]
			if len(u) != len(dst) {
				return fmt.Errorf("update rows hold %d values, want %d", len(u), len(dst))
			}
			for i, x := range u {
				dst[i] = float32(dst[i] + float32(pt.c*x))
			}
		}
	}
	return nil
}

// update is rows [r0, r1) of the module's unscaled update, row-major.
func (pt *patch) update(r0, r1 int64) ([]float32, error) {
	f, m := pt.file, pt.m
	read := func(slot string) ([]float32, error) { return f.values(m, slot, -1, -1) }
	switch m.kind {
	case plainLoRA:
		up, err := f.values(m, "up", r0, r1)
		if err != nil {
			return nil, err
		}
		down, err := read("down")
		if err != nil {
			return nil, err
		}
		return matmul(up, down, r1-r0, int64(len(down))/pt.cols, pt.cols), nil
	case loHa:
		a1, err := f.values(m, "hada_w1_a", r0, r1)
		if err != nil {
			return nil, err
		}
		b1, err := read("hada_w1_b")
		if err != nil {
			return nil, err
		}
		a2, err := f.values(m, "hada_w2_a", r0, r1)
		if err != nil {
			return nil, err
		}
		b2, err := read("hada_w2_b")
		if err != nil {
			return nil, err
		}
		p1 := matmul(a1, b1, r1-r0, int64(len(b1))/pt.cols, pt.cols)
		p2 := matmul(a2, b2, r1-r0, int64(len(b2))/pt.cols, pt.cols)
		for i := range p1 {
			p1[i] = float32(p1[i] * p2[i])
		}
		return p1, nil
	case loKr:
		w1, _, cols1, err := f.kron(m, "lokr_w1")
		if err != nil {
			return nil, err
		}
		w2, rows2, cols2, err := f.kron(m, "lokr_w2")
		if err != nil {
			return nil, err
		}
		out := make([]float32, 0, (r1-r0)*pt.cols)
		for r := r0; r < r1; r++ { // row r of w1 ⊗ w2: w1[r/rows2, :] ⊗ w2[r%rows2, :]
			a, b := r/rows2, r%rows2
			for i := range cols1 {
				x := w1[a*cols1+i]
				for _, y := range w2[b*cols2 : (b+1)*cols2] {
					out = append(out, float32(x*y))
				}
			}
		}
		return out, nil
	case fullDiff:
		return f.values(m, "diff", r0, r1)
	}
	return nil, fmt.Errorf("unknown variant %s", m.kind)
}

// kron is a LoKr factor as a matrix.
func (f *File) kron(m *module, base string) (v []float32, rows, cols int64, err error) {
	if _, ok := m.slots[base]; ok {
		s := f.shape(m, base)
		v, err = f.values(m, base, -1, -1)
		return v, s[0], s[1], err
	}
	a, err := f.values(m, base+"_a", -1, -1)
	if err != nil {
		return nil, 0, 0, err
	}
	b, err := f.values(m, base+"_b", -1, -1)
	if err != nil {
		return nil, 0, 0, err
	}
	sa, sb := f.shape(m, base+"_a"), f.shape(m, base+"_b")
	return matmul(a, b, sa[0], sa[1], sb[1]), sa[0], sb[1], nil
}

// values reads rows [r0, r1) of a slot's tensor (all with r0 < 0) and refuses NaN and infinities.
func (f *File) values(m *module, slot string, r0, r1 int64) ([]float32, error) {
	name := m.slots[slot]
	var v []float32
	var err error
	if r0 < 0 {
		v, err = f.r.Float32(name)
	} else {
		v, err = f.r.Float32Rows(name, r0, r1)
	}
	if err != nil {
		return nil, err
	}
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil, fmt.Errorf("tensor %s holds NaN or infinite values", name)
		}
	}
	return v, nil
}

// matmul is the [n, k] · [k, c] product in float32, each element summed over k in order (so the result
// does not depend on how the rows are shared out). Large products run on every CPU, in bands of rows.
func matmul(a, b []float32, n, k, c int64) []float32 {
	out := make([]float32, n*c)
	workers := int64(runtime.GOMAXPROCS(0))
	if n*k*c < 1<<22 || workers < 2 || n < 2 {
		matmulRows(out, a, b, 0, n, k, c)
		return out
	}
	band := (n + workers - 1) / workers
	var wg sync.WaitGroup
	for r0 := int64(0); r0 < n; r0 += band {
		wg.Add(1)
		go func(r0, r1 int64) {
			defer wg.Done()
			matmulRows(out, a, b, r0, r1, k, c)
		}(r0, min(r0+band, n))
	}
	wg.Wait()
	return out
}

// matmulRows computes rows [r0, r1) of out = a · b, four terms of k per pass over a row (the sum's order
// stays k = 0, 1, 2, …; each product is rounded to float32 before it is added, so no multiply-add fuses).
func matmulRows(out, a, b []float32, r0, r1, k, c int64) {
	for i := r0; i < r1; i++ {
		row := out[i*c : (i+1)*c]
		ai := a[i*k : (i+1)*k]
		p := int64(0)
		for ; p+4 <= k; p += 4 {
			x0, x1, x2, x3 := ai[p], ai[p+1], ai[p+2], ai[p+3]
			b0, b1, b2, b3 := b[p*c:(p+1)*c], b[(p+1)*c:(p+2)*c], b[(p+2)*c:(p+3)*c], b[(p+3)*c:(p+4)*c]
			b0, b1, b2, b3 = b0[:len(row)], b1[:len(row)], b2[:len(row)], b3[:len(row)]
			for j := range row {
				v := row[j] + float32(x0*b0[j])
				v = v + float32(x1*b1[j])
				v = v + float32(x2*b2[j])
				row[j] = v + float32(x3*b3[j])
			}
		}
		for ; p < k; p++ {
			x, bp := ai[p], b[p*c:(p+1)*c]
			bp = bp[:len(row)]
			for j := range row {
				row[j] = row[j] + float32(x*bp[j])
			}
		}
	}
}
