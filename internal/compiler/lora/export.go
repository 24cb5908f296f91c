package lora

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/rflowrt/rflow/internal/compiler/arch"
	"github.com/rflowrt/rflow/internal/half"
	"github.com/rflowrt/rflow/internal/linkdir"
)

// ExportComponent is one component folder of an ONNX export (model.onnx, config.json) and what it is.
type ExportComponent struct {
	Component
	// Dir is the component's folder name in the export ("transformer", "text_encoder", …).
	Dir string
}

// ErrExportNames is wrapped by PatchExport's error for an export whose initializers do not carry the
// parameter names a LoRA patches (torch.onnx renames the weights it feeds to MatMul: onnx::MatMul_123).
var ErrExportNames = errors.New("the ONNX export does not keep the parameter names the LoRA patches")

// initializer is where one initializer's bytes are: in the model file (raw_data) or in an external
// data file, with its dims and element type.
type initializer struct {
	name   string
	dims   []int64
	dtype  int64 // TensorProto.DataType: 1 float, 10 float16, 16 bfloat16
	file   string
	offset int64
	length int64
}

// PatchExport writes a copy of the ONNX export folder src at dst (which must not exist) with the LoRAs
// merged into the initializers of the components they patch. An initializer is found by the parameter's
// name, possibly under a prefix the exporter added ("m.transformer_blocks.0.…"), stored as the parameter
// or transposed (rflow's own "<name>.T"); float32, float16 and bfloat16 initializers are patched. Files
// of components no LoRA patches are linked; the patched components' files are copied and overwritten in
// place (the graph does not change). A patched parameter the export renamed is an error wrapping
// ErrExportNames.
func PatchExport(family, src, dst string, comps []ExportComponent, uses []Use) ([]Report, error) {
	plain := make([]Component, len(comps))
	for i, c := range comps {
		plain[i] = c.Component
	}
	m, err := Apply(family, plain, uses)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(dst); err == nil {
		return nil, fmt.Errorf("%s already exists", dst)
	}
	tmp := dst + ".partial"
	os.RemoveAll(tmp)
	if err := linkdir.Mirror(src, tmp, linkdir.Options{}); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	for _, c := range comps {
		if !m.Patches(c.Role) {
			continue
		}
		if err := patchComponent(filepath.Join(src, c.Dir), filepath.Join(tmp, c.Dir), c, m); err != nil {
			return nil, fmt.Errorf("%s: %w", c.Dir, err)
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		return nil, err
	}
	ok = true
	return m.Reports(), nil
}

// patchComponent rewrites the patched initializers of one component folder (already linked at dst).
func patchComponent(src, dst string, c ExportComponent, m *Merged) error {
	model, err := os.ReadFile(filepath.Join(src, "model.onnx"))
	if err != nil {
		return err
	}
	inits, err := readInitializers(model)
	if err != nil {
		return fmt.Errorf("model.onnx: %w", err)
	}
	byName := map[string]*initializer{}
	for i := range inits {
		byName[inits[i].name] = &inits[i]
	}
	params := make([]string, 0, len(m.byParam[c.Role]))
	for p := range m.byParam[c.Role] {
		params = append(params, p)
	}
	sort.Strings(params)
	copied := map[string]bool{} // files of dst already made private copies
	for _, param := range params {
		in, transposed := findInitializer(byName, param)
		if in == nil {
			return fmt.Errorf("%w: no initializer holds %s (its names look like %s)", ErrExportNames, param, sampleNames(inits))
		}
		if in.file == "" {
			in.file = "model.onnx"
		}
		if !copied[in.file] {
			to := filepath.Join(dst, in.file)
			if err := os.Remove(to); err != nil {
				return err
			}
			if err := linkdir.CopyFile(filepath.Join(src, in.file), to); err != nil {
				return err
			}
			copied[in.file] = true
		}
		if err := patchInitializer(filepath.Join(dst, in.file), in, param, transposed, c, m); err != nil {
			return err
		}
	}
	return nil
}

// findInitializer finds a parameter's initializer: its name, "<name>.T" (transposed), or either under a
// prefix.
func findInitializer(byName map[string]*initializer, param string) (*initializer, bool) {
	if in := byName[param]; in != nil {
		return in, false
	}
	if in := byName[param+".T"]; in != nil {
		return in, true
	}
	for name, in := range byName {
		if strings.HasSuffix(name, "."+param) {
			return in, false
		}
		if strings.HasSuffix(name, "."+param+".T") {
			return in, true
		}
	}
	return nil, false
}

func sampleNames(inits []initializer) string {
	var names []string
	for _, in := range inits {
		if len(in.dims) == 2 {
			names = append(names, in.name)
		}
		if len(names) == 3 {
			break
		}
	}
	return strings.Join(names, ", ")
}

// patchInitializer reads an initializer, adds the updates and writes it back in its own type.
func patchInitializer(path string, in *initializer, param string, transposed bool, c ExportComponent, m *Merged) error {
	size := map[int64]int64{1: 4, 10: 2, 16: 2}[in.dtype]
	if size == 0 {
		return fmt.Errorf("%w: %s is stored as ONNX type %d (quantized?), not a float type", ErrExportNames, in.name, in.dtype)
	}
	n := int64(1)
	for _, d := range in.dims {
		n *= d
	}
	if n*size != in.length {
		return fmt.Errorf("%s: %d bytes for %d elements", in.name, in.length, n)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	raw := make([]byte, in.length)
	if _, err := f.ReadAt(raw, in.offset); err != nil {
		return fmt.Errorf("%s: %w", in.name, err)
	}
	v := make([]float32, n)
	for i := range v {
		switch in.dtype {
		case 1:
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		case 10:
			v[i] = half.ToFloat32(binary.LittleEndian.Uint16(raw[2*i:]))
		case 16:
			v[i] = half.BFloat16ToFloat32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	}
	shape := in.dims
	if transposed {
		if len(in.dims) != 2 {
			return fmt.Errorf("%s: a transposed initializer of shape %v", in.name, in.dims)
		}
		shape = []int64{in.dims[1], in.dims[0]}
		v = arch.Transpose(v, int(in.dims[0]), int(in.dims[1]))
	}
	w := m.Wrap(c.Role, valuesWeights{param: param, shape: shape, v: v})
	out, err := w.Float32(param, shape)
	if err != nil {
		return err
	}
	if transposed {
		out = arch.Transpose(out, int(shape[0]), int(shape[1]))
	}
	for i, x := range out {
		switch in.dtype {
		case 1:
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(x))
		case 10:
			binary.LittleEndian.PutUint16(raw[2*i:], half.FromFloat32(x))
		case 16:
			binary.LittleEndian.PutUint16(raw[2*i:], half.BFloat16FromFloat32(x))
		}
	}
	if _, err := f.WriteAt(raw, in.offset); err != nil {
		return err
	}
	return f.Close()
}

// valuesWeights is one parameter's values as arch.Weights.
type valuesWeights struct {
	param string
	shape []int64
	v     []float32
}

func (w valuesWeights) Shape(name string) ([]int64, bool) { return w.shape, name == w.param }

func (w valuesWeights) Float32(name string, _ []int64) ([]float32, error) {
	if name != w.param {
		return nil, fmt.Errorf("no tensor %q", name)
	}
	return w.v, nil
}

// readInitializers lists a model's graph initializers and where their bytes are (ModelProto.graph = 7,
// GraphProto.initializer = 5; TensorProto dims = 1, data_type = 2, name = 8, raw_data = 9,
// external_data = 13, data_location = 14).
func readInitializers(model []byte) ([]initializer, error) {
	var out []initializer
	err := fields(model, 0, func(num protowire.Number, typ protowire.Type, v []byte, at int64) error {
		if num != 7 || typ != protowire.BytesType {
			return nil
		}
		return fields(v, at, func(num protowire.Number, typ protowire.Type, v []byte, at int64) error {
			if num != 5 || typ != protowire.BytesType {
				return nil
			}
			in, err := readTensor(v, at)
			if err != nil {
				return err
			}
			out = append(out, in)
			return nil
		})
	})
	return out, err
}

func readTensor(b []byte, base int64) (initializer, error) {
	var in initializer
	external := false
	ext := map[string]string{}
	err := fields(b, base, func(num protowire.Number, typ protowire.Type, v []byte, at int64) error {
		switch {
		case num == 1 && typ == protowire.VarintType:
			x, _ := protowire.ConsumeVarint(v)
			in.dims = append(in.dims, int64(x))
		case num == 1 && typ == protowire.BytesType: // packed dims
			for len(v) > 0 {
				x, n := protowire.ConsumeVarint(v)
				if n < 0 {
					return errors.New("bad dims")
				}
				in.dims = append(in.dims, int64(x))
				v = v[n:]
			}
		case num == 2 && typ == protowire.VarintType:
			x, _ := protowire.ConsumeVarint(v)
			in.dtype = int64(x)
		case num == 8 && typ == protowire.BytesType:
			in.name = string(v)
		case num == 9 && typ == protowire.BytesType:
			in.offset, in.length = at, int64(len(v))
		case num == 14 && typ == protowire.VarintType:
			x, _ := protowire.ConsumeVarint(v)
			external = x == 1
		case num == 13 && typ == protowire.BytesType:
			var k, val string
			err := fields(v, 0, func(num protowire.Number, _ protowire.Type, v []byte, _ int64) error {
				if num == 1 {
					k = string(v)
				} else if num == 2 {
					val = string(v)
				}
				return nil
			})
			if err != nil {
				return err
			}
			ext[k] = val
		}
		return nil
	})
	if err != nil {
		return in, err
	}
	if external {
		in.file = filepath.Clean(ext["location"])
		if filepath.IsAbs(in.file) || strings.HasPrefix(in.file, "..") {
			return in, fmt.Errorf("initializer %s: external data %q outside the folder", in.name, ext["location"])
		}
		in.offset, _ = strconv.ParseInt(ext["offset"], 10, 64)
		in.length, _ = strconv.ParseInt(ext["length"], 10, 64)
	}
	return in, nil
}

// fields calls fn for each field of a protobuf message b (which starts at byte base of the file), with
// the field's value bytes (a varint's encoding, or a length-delimited field's contents) and, for a
// length-delimited field, the file offset of its contents.
func fields(b []byte, base int64, fn func(num protowire.Number, typ protowire.Type, v []byte, at int64) error) error {
	pos := 0
	for pos < len(b) {
		num, typ, n := protowire.ConsumeTag(b[pos:])
		if n < 0 {
			return fmt.Errorf("protobuf: bad tag at byte %d", base+int64(pos))
		}
		pos += n
		var v []byte
		at := base + int64(pos)
		switch typ {
		case protowire.BytesType:
			val, m := protowire.ConsumeBytes(b[pos:])
			if m < 0 {
				return fmt.Errorf("protobuf: bad field at byte %d", at)
			}
			v = val
			at += int64(m - len(val))
			pos += m
		default:
			m := protowire.ConsumeFieldValue(num, typ, b[pos:])
			if m < 0 {
				return fmt.Errorf("protobuf: bad field at byte %d", at)
			}
			v = b[pos : pos+m]
			pos += m
		}
		if err := fn(num, typ, v, at); err != nil {
			return err
		}
	}
	return nil
}
