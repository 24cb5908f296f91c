package lora

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/compiler/checkpoint"
)

// TestOriginalNamesMatchConverters: every BFL/SAI module name this package maps (and its row split) is the
// one package checkpoint's weight converters use: run on the oracle's single-file listings
// (../checkpoint/testdata/oracle-KIND.json), each part's recipe takes rows [at, at+rows) of "<module>.weight",
// in order (for the final adaLN the two halves swapped).
func TestOriginalNamesMatchConverters(t *testing.T) {
	for _, c := range []struct{ kind, file, family string }{
		{"flux-dev", "flux1-dev.safetensors", checkpoint.FamilyFLUX},
		{"sd3", "sd3-incl-clips-t5xxl.safetensors", checkpoint.FamilySD3},
	} {
		var o struct {
			SingleFile map[string]map[string]string `json:"single_file"`
			Diffusers  map[string]struct {
				Config map[string]any `json:"config"`
			} `json:"diffusers"`
		}
		b, err := os.ReadFile("../checkpoint/testdata/oracle-" + c.kind + ".json")
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &o); err != nil {
			t.Fatal(err)
		}
		l := checkpoint.MapListing{}
		for name, s := range o.SingleFile[c.file] {
			if c.family == checkpoint.FamilySD3 && !strings.HasPrefix(name, "model.diffusion_model.") {
				continue // the bundled text encoders and VAE
			}
			dtype, dims, _ := strings.Cut(s, " ")
			shape := []int64{}
			for _, d := range strings.Split(dims, ",") {
				if n, err := strconv.ParseInt(d, 10, 64); err == nil {
					shape = append(shape, n)
				}
			}
			l[name] = checkpoint.TensorMeta{DType: dtype, Shape: shape}
		}
		cfg := o.Diffusers["transformer"].Config
		h := checkpoint.Hints{Family: c.family, HeadDim: map[checkpoint.Role]int{}}
		if c.family == checkpoint.FamilyFLUX {
			for _, a := range cfg["axes_dims_rope"].([]any) {
				h.AxesDimsRope = append(h.AxesDimsRope, int(a.(float64)))
			}
		} else {
			h.HeadDim[checkpoint.RoleTransformer] = int(cfg["attention_head_dim"].(float64))
		}
		comps, err := checkpoint.DetectWith(l, h)
		if err != nil {
			t.Fatalf("%s: %v", c.kind, err)
		}
		var tr checkpoint.Component
		for _, comp := range comps {
			if comp.Role == checkpoint.RoleTransformer {
				tr = comp
			}
		}
		params, err := checkpoint.Expected(tr.Class, tr.Config)
		if err != nil {
			t.Fatal(err)
		}
		orig := fluxOriginal(params)
		if c.family == checkpoint.FamilySD3 {
			orig = sd3Original(params)
		}
		checked := 0
		for _, on := range orig {
			if strings.Contains(on.name, "processor.") {
				continue // XLabs names: no weights of their own
			}
			var at int64
			for _, part := range on.t.parts {
				r, ok := tr.Tensors[part+".weight"]
				if !ok || len(r.Pieces) == 0 {
					t.Errorf("%s: %s: no recipe for %s", c.kind, on.name, part)
					continue
				}
				src := strings.TrimPrefix(r.Pieces[0].Tensor, "model.diffusion_model.")
				rows := r.Shape[0]
				var want string
				switch {
				case on.t.swap:
					want = fmt.Sprintf("%s.weight [%d,%d) [%d,%d)", on.name, rows/2, rows, 0, rows/2)
				case len(on.t.parts) == 1:
					want = fmt.Sprintf("%s.weight [0,-1)", on.name)
				default:
					want = fmt.Sprintf("%s.weight [%d,%d)", on.name, at, at+rows)
				}
				got := fmt.Sprintf("%s [%d,%d)", src, r.Pieces[0].Start, r.Pieces[0].End)
				if len(r.Pieces) == 2 {
					got += fmt.Sprintf(" [%d,%d)", r.Pieces[1].Start, r.Pieces[1].End)
				}
				if got != want {
					t.Errorf("%s: %s → %s: the converter takes %s, this package %s", c.kind, on.name, part, got, want)
				}
				at += rows
				checked++
			}
		}
		if checked < 20 {
			t.Errorf("%s: only %d parts checked", c.kind, checked)
		}
	}
}
