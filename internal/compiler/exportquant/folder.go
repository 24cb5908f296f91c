package exportquant

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/rflowrt/rflow/internal/compiler/arch"
	"github.com/rflowrt/rflow/internal/linkdir"
	"github.com/rflowrt/rflow/internal/onnx"
)

// modelFile and dataFile are Optimum's names for a component's graph and its external weights.
const (
	modelFile = "model.onnx"
	dataFile  = "model.onnx_data"
)

// ErrBadComponent is wrapped when a requested component is not a model folder of the input.
var ErrBadComponent = errors.New("no such component")

// FolderOptions select what QuantizeFolder rewrites.
type FolderOptions struct {
	Options
	// Components are the subfolders rewritten (each holds a model.onnx); nil means "transformer".
	Components []string
	// OnComponent, when set, is told each component before it is rewritten.
	OnComponent func(name string)
}

// ComponentReport is what happened to one rewritten component.
type ComponentReport struct {
	Name string
	Stats
	// BytesBefore and BytesAfter are the sizes of model.onnx and its external data.
	BytesBefore, BytesAfter int64
	// Unchanged is set when the rewrite found nothing to do: the component is copied as it was.
	Unchanged bool
}

// Report lists the rewritten components in order.
type Report struct {
	Components []ComponentReport
}

// QuantizeFolder writes to dst (which must not exist) a copy of the ONNX export folder src whose
// components o.Components are rewritten with o; the other files and folders are linked (or copied
// where links are impossible) unchanged. Everything is written into a temporary folder beside dst
// and renamed at the end, so dst is complete or absent. When no component changes (no weight
// MatMul selected, no attention pattern) the error wraps ErrNothingToRewrite and nothing is written.
func QuantizeFolder(ctx context.Context, src, dst string, o FolderOptions) (*Report, error) {
	if o.Kind != arch.FP32 && !o.Kind.Quantized() {
		return nil, fmt.Errorf("%w %q (valid: %s)", ErrUnknownWeightKind, o.Kind, validKinds)
	}
	if !o.Kind.Quantized() && !o.FuseAttention {
		return nil, fmt.Errorf("%w: weights fp32 without fusing attention leaves the model as it is", ErrNothingToRewrite)
	}
	st, err := os.Stat(src)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a folder", src)
	}
	absSrc, err1 := filepath.Abs(src)
	absDst, err2 := filepath.Abs(dst)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	if rel, err := filepath.Rel(absSrc, absDst); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil, fmt.Errorf("the output %s is inside the model folder %s", dst, src)
	}
	if _, err := os.Lstat(dst); err == nil {
		return nil, fmt.Errorf("%s already exists", dst)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	comps := o.Components
	if comps == nil {
		comps = []string{"transformer"}
	}
	available := modelComponents(src)
	for _, c := range comps {
		if !slices.Contains(available, c) {
			return nil, fmt.Errorf("%w %q in %s (model folders: %s)", ErrBadComponent, c, src, strings.Join(available, ", "))
		}
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	rep := &Report{}
	rewritten := map[string][]string{} // component → the input files its rewrite replaces
	for _, c := range comps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if o.OnComponent != nil {
			o.OnComponent(c)
		}
		cr, replaced, err := rewriteComponent(ctx, filepath.Join(src, c), filepath.Join(tmp, c), o.Options)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c, err)
		}
		cr.Name = c
		rep.Components = append(rep.Components, cr)
		if !cr.Unchanged {
			rewritten[c] = replaced
		}
	}
	if len(rewritten) == 0 {
		var why []string
		for _, c := range rep.Components {
			w := fmt.Sprintf("%s: %d weight MatMuls, none selected for %s; %d attention patterns", c.Name, c.WeightMatMuls, o.Kind, c.Attentions)
			if c.NotFloat32 > 0 {
				w += fmt.Sprintf("; %d MatMuls with float16 or other non-float32 weights (quantize the float32 export)", c.NotFloat32)
			}
			why = append(why, w)
		}
		return rep, fmt.Errorf("%w (%s)", ErrNothingToRewrite, strings.Join(why, "; "))
	}
	skip := func(rel string) bool {
		dir, file := filepath.Split(rel)
		return slices.Contains(rewritten[filepath.Clean(dir)], file)
	}
	if err := linkdir.Mirror(src, tmp, linkdir.Options{Skip: skip, LinkFolders: true}); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return nil, err
	}
	ok = true
	return rep, nil
}

// modelComponents lists src's subfolders that hold a model.onnx.
func modelComponents(src string) []string {
	entries, _ := os.ReadDir(src)
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			if st, err := os.Stat(filepath.Join(src, e.Name(), modelFile)); err == nil && st.Mode().IsRegular() {
				out = append(out, e.Name())
			}
		}
	}
	sort.Strings(out)
	return out
}

// rewriteComponent rewrites srcDir/model.onnx into dstDir. It returns the input files the output
// replaces (model.onnx and its external data files); an unchanged component writes nothing.
func rewriteComponent(ctx context.Context, srcDir, dstDir string, o Options) (ComponentReport, []string, error) {
	var cr ComponentReport
	path := filepath.Join(srcDir, modelFile)
	m, err := onnx.ReadModel(path)
	if err != nil {
		return cr, nil, err
	}
	info, err := onnx.ReadInfo(path)
	if err != nil {
		return cr, nil, err
	}
	replaced := []string{modelFile}
	for _, f := range info.ExternalFiles {
		replaced = append(replaced, filepath.Clean(filepath.FromSlash(f)))
	}
	for _, f := range replaced {
		if st, err := os.Stat(filepath.Join(srcDir, f)); err == nil {
			cr.BytesBefore += st.Size()
		}
	}
	cr.Stats, err = Rewrite(ctx, m, o)
	if err != nil {
		return cr, nil, err
	}
	if !cr.Changed() {
		cr.Unchanged, cr.BytesAfter = true, cr.BytesBefore
		return cr, replaced, nil
	}
	if err := os.MkdirAll(dstDir, 0o755); err != nil {
		return cr, nil, err
	}
	for i := range m.Graph.Initializers { // a cancelled run stops between tensors
		if t := &m.Graph.Initializers[i]; t.Source != nil {
			t.Source = ctxSource{ctx, t.Source}
		}
	}
	out := filepath.Join(dstDir, modelFile)
	if err := m.WriteFile(out, onnx.WriteOptions{ExternalData: true, DataName: dataFile}); err != nil {
		return cr, nil, err
	}
	for _, f := range []string{modelFile, dataFile} {
		if st, err := os.Stat(filepath.Join(dstDir, f)); err == nil {
			cr.BytesAfter += st.Size()
		}
	}
	return cr, replaced, nil
}

// ctxSource is a tensor source that fails once ctx is done.
type ctxSource struct {
	ctx context.Context
	src onnx.TensorSource
}

func (c ctxSource) WriteRaw(w io.Writer) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	return c.src.WriteRaw(w)
}
