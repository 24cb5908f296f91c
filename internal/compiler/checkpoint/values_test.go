package checkpoint

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// oracleModelsEnv names a folder holding the oracle's models, one per kind (MODELS/KIND/diffusers and
// MODELS/KIND/single-file, as make_models.py --out MODELS/KIND or compare.sh's WORK_DIR/models write them).
const oracleModelsEnv = "RFLOW_ORACLE_MODELS"

// tensor is one tensor of a small safetensors file read into memory.
type tensor struct {
	DType string
	Shape []int64
	Data  []byte
}

// fileRows serves a RowReader from safetensors files read into memory (a test-only reader: the oracle's
// files are a few MB).
type fileRows map[string]tensor

func (f fileRows) add(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &hdr); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	data := b[8+n:]
	for name, msg := range hdr {
		if name == "__metadata__" {
			continue
		}
		var e struct {
			DType   string   `json:"dtype"`
			Shape   []int64  `json:"shape"`
			Offsets [2]int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(msg, &e); err != nil {
			t.Fatalf("%s: %s: %v", path, name, err)
		}
		f[name] = tensor{e.DType, e.Shape, data[e.Offsets[0]:e.Offsets[1]]}
	}
}

func (f fileRows) read(name string, start, end int64) ([]byte, error) {
	x, ok := f[name]
	if !ok {
		return nil, fmt.Errorf("no tensor %s", name)
	}
	if len(x.Shape) == 0 {
		return x.Data, nil
	}
	rows := x.Shape[0]
	if end < 0 {
		end = rows
	}
	if start < 0 || start > end || end > rows {
		return nil, fmt.Errorf("rows [%d,%d) of %d", start, end, rows)
	}
	row := int64(len(x.Data)) / max(rows, 1)
	return x.Data[start*row : end*row], nil
}

// TestOracleValues reads every canonical tensor through its recipe from the single files and compares it
// with the diffusers folder's tensor, byte for byte (bf16).
func TestOracleValues(t *testing.T) {
	root := os.Getenv(oracleModelsEnv)
	if root == "" {
		t.Skipf("%s is not set (a folder of shared/oracle/make_models.py outputs, one per kind)", oracleModelsEnv)
	}
	for _, kind := range oracleKinds {
		t.Run(kind, func(t *testing.T) {
			dir := filepath.Join(root, kind)
			if _, err := os.Stat(filepath.Join(dir, "single-file", "files.json")); err != nil {
				t.Skipf("no oracle model %s: %v", kind, err)
			}
			o := loadOracle(t, kind)
			h := oracleHints(t, kind, o)
			var files map[string]string
			b, err := os.ReadFile(filepath.Join(dir, "single-file", "files.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &files); err != nil {
				t.Fatal(err)
			}
			var compared int
			for _, file := range files {
				src := fileRows{}
				src.add(t, filepath.Join(dir, "single-file", file))
				l := MapListing{}
				for name, x := range src {
					l[name] = TensorMeta{DType: x.DType, Shape: x.Shape}
				}
				comps, err := DetectWith(l, h)
				if err != nil {
					t.Fatalf("%s: %v", file, err)
				}
				for _, c := range comps {
					sub := subfolder(kind, c.Role)
					matches, _ := filepath.Glob(filepath.Join(dir, "diffusers", sub, "*.safetensors"))
					if len(matches) != 1 {
						t.Fatalf("%s: %d safetensors files in %s", file, len(matches), sub)
					}
					want := fileRows{}
					want.add(t, matches[0])
					for name, r := range c.Tensors {
						got, err := r.Assemble(src.read)
						if err != nil {
							t.Fatalf("%s %s: %v", file, name, err)
						}
						w, ok := want[name]
						if !ok {
							t.Fatalf("%s: %s not in %s", file, name, matches[0])
						}
						if w.DType != r.DType || !bytes.Equal(got, w.Data) {
							t.Errorf("%s: %s (%+v) differs from the diffusers folder's", file, name, r.Pieces)
						}
						compared++
					}
				}
			}
			t.Logf("%d tensors bit-identical to the diffusers folder", compared)
		})
	}
}
