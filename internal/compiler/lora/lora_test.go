package lora

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/compiler/arch"
	"github.com/rflowrt/rflow/internal/compiler/checkpoint"
	"github.com/rflowrt/rflow/internal/safetensors"
)

// The testdata were written by ../shared/oracle/lora.py (rank 4, alpha 8, seed 0) on make_models.py's tiny
// models (see testdata/README.md); kohya-merged-0.8 is lora.py's merged reference at scale 0.8 (torch, fp32).

func component(t *testing.T, role checkpoint.Role, path string) Component {
	t.Helper()
	cfg, err := arch.ReadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	class, _ := cfg["_class_name"].(string)
	if class == "" {
		arches, _ := cfg["architectures"].([]any)
		if len(arches) > 0 {
			class, _ = arches[0].(string)
		}
	}
	if class == "" {
		class = "CLIPTextModelWithProjection"
	}
	return Component{Role: role, Class: class, Config: cfg}
}

func open(t *testing.T, path string) *File {
	t.Helper()
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// fileWeights are a safetensors file's tensors by name, as arch.Weights.
type fileWeights struct{ r *safetensors.Reader }

func (w fileWeights) Shape(name string) ([]int64, bool) {
	i, ok := w.r.Info(name)
	return i.Shape, ok
}

func (w fileWeights) Float32(name string, _ []int64) ([]float32, error) { return w.r.Float32(name) }

func openWeights(t *testing.T, path string) fileWeights {
	t.Helper()
	r, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return fileWeights{r}
}

func fluxComponents(t *testing.T) []Component {
	return []Component{component(t, checkpoint.RoleTransformer, "testdata/flux/transformer.json"),
		component(t, checkpoint.RoleCLIPL, "testdata/flux/text_encoder.json")}
}

// TestOracleFLUX merges lora.py's kohya (fused qkv / linear1 on BFL names) and BFL-format files into the
// bf16 transformer and compares every parameter with lora.py's torch merge at scale 0.8.
func TestOracleFLUX(t *testing.T) {
	base := openWeights(t, "testdata/flux/transformer.safetensors")
	ref := openWeights(t, "testdata/flux/kohya-merged-0.8.safetensors")
	merged := map[string]map[string][]float32{}
	for _, format := range []string{"kohya", "bfl"} {
		m, err := Apply(checkpoint.FamilyFLUX, fluxComponents(t), []Use{{open(t, "testdata/flux/"+format+".safetensors"), 0.8}})
		if err != nil {
			t.Fatal(err)
		}
		// lora.py: 10 transformer modules (8 of the double block, linear1 and linear2), kohya also 12 CLIP-L ones
		want := map[string]Report{"kohya": {22, []checkpoint.Role{checkpoint.RoleCLIPL, checkpoint.RoleTransformer}},
			"bfl": {10, []checkpoint.Role{checkpoint.RoleTransformer}}}[format]
		if got := m.Reports()[0]; got.Modules != want.Modules || !slices.Equal(got.Roles, want.Roles) {
			t.Errorf("%s: report %+v, want %+v", format, got, want)
		}
		w := m.Wrap(checkpoint.RoleTransformer, base)
		merged[format] = map[string][]float32{}
		var worst float64
		changed := 0
		for _, name := range ref.r.Names() {
			got, err := w.Float32(name, nil)
			if err != nil {
				t.Fatal(err)
			}
			merged[format][name] = got
			want, _ := ref.r.Float32(name)
			orig, _ := base.r.Float32(name)
			if !slices.Equal(orig, want) {
				changed++
			}
			for i := range want {
				worst = max(worst, math.Abs(float64(got[i]-want[i]))/(1+math.Abs(float64(want[i]))))
			}
		}
		// torch sums the rank-4 products in another order: a few float32 ulps
		if worst > 1e-6 {
			t.Errorf("%s: largest difference from the torch merge %.3g", format, worst)
		}
		if changed != 17 { // q, k, v, to_out, add_q/k/v, to_add_out, ff ×2, ff_context ×2; single q, k, v, proj_mlp, proj_out
			t.Errorf("%s: the reference changes %d parameters, want 17", format, changed)
		}
	}
	// The same numbers in two formats (BFL folds α/r = 2 into lora_B, exactly) give the same bits.
	for name, v := range merged["kohya"] {
		if !slices.Equal(v, merged["bfl"][name]) {
			t.Errorf("%s: kohya and BFL merges differ", name)
		}
	}
}

// TestMapping checks each format's key mapping on lora.py's files: every module found and counted.
func TestMapping(t *testing.T) {
	sd3 := []Component{component(t, checkpoint.RoleTransformer, "testdata/sd3/transformer.json"),
		component(t, checkpoint.RoleCLIPL, "testdata/sd3/text_encoder.json")}
	for _, c := range []struct {
		family, file string
		comps        []Component
		modules      int
	}{
		{checkpoint.FamilySD3, "testdata/sd3/kohya.safetensors", sd3, 13 + 12}, // SAI joint_blocks qkv… + CLIP-L
		{checkpoint.FamilySD3, "testdata/sd3/diffusers.safetensors", sd3, 21},
		{checkpoint.FamilyFLUX, "testdata/flux/diffusers.safetensors", fluxComponents(t), 17},
	} {
		m, err := Apply(c.family, c.comps, []Use{{open(t, c.file), 1}})
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if got := m.Reports()[0].Modules; got != c.modules {
			t.Errorf("%s: %d modules patched, want %d", c.file, got, c.modules)
		}
	}
}

// TestDiffusersMatchesKohyaSplit: one fused kohya module, the same factors as three PEFT modules (lora_B cut
// by rows, lora_A repeated, α in the metadata) and as an XLabs processor LoRA give bit-identical weights.
func TestDiffusersMatchesKohyaSplit(t *testing.T) {
	dir := t.TempDir()
	up := make([]float32, 3*32*4)
	down := make([]float32, 4*32)
	for i := range up {
		up[i] = float32(math.Sin(float64(i)*0.37)) * 0.1
	}
	for i := range down {
		down[i] = float32(math.Cos(float64(i)*0.11)) * 0.1
	}
	koh := filepath.Join(dir, "k.safetensors")
	write(t, koh, nil,
		safetensors.F32("lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight", []int{96, 4}, up),
		safetensors.F32("lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight", []int{4, 32}, down),
		safetensors.F32("lora_unet_double_blocks_0_img_attn_qkv.alpha", []int{}, []float32{8}))
	peft := filepath.Join(dir, "d.safetensors")
	var ts []safetensors.Tensor
	for i, p := range []string{"to_q", "to_k", "to_v"} {
		ts = append(ts, safetensors.F32("transformer.transformer_blocks.0.attn."+p+".lora_B.weight", []int{32, 4}, up[i*128:(i+1)*128]),
			safetensors.F32("transformer.transformer_blocks.0.attn."+p+".lora_A.weight", []int{4, 32}, down))
	}
	write(t, peft, map[string]string{"lora_adapter_metadata": `{"transformer.lora_alpha": 8, "transformer.r": 4}`}, ts...)
	xlabs := filepath.Join(dir, "x.safetensors") // α/r = 2 folded into up, as XLabs files carry no alpha
	up2 := make([]float32, len(up))
	for i, x := range up {
		up2[i] = 2 * x
	}
	write(t, xlabs, nil,
		safetensors.F32("double_blocks.0.processor.qkv_lora1.up.weight", []int{96, 4}, up2),
		safetensors.F32("double_blocks.0.processor.qkv_lora1.down.weight", []int{4, 32}, down))
	base := openWeights(t, "testdata/flux/transformer.safetensors")
	var got [3][]float32
	for i, p := range []string{koh, peft, xlabs} {
		m, err := Apply(checkpoint.FamilyFLUX, fluxComponents(t), []Use{{open(t, p), 0.7}})
		if err != nil {
			t.Fatal(err)
		}
		w := m.Wrap(checkpoint.RoleTransformer, base)
		for _, n := range []string{"to_q", "to_k", "to_v"} {
			v, err := w.Float32("transformer_blocks.0.attn."+n+".weight", nil)
			if err != nil {
				t.Fatal(err)
			}
			got[i] = append(got[i], v...)
		}
	}
	if !slices.Equal(got[0], got[1]) || !slices.Equal(got[0], got[2]) {
		t.Error("kohya fused, PEFT split and XLabs files with the same numbers merge differently")
	}
}

func write(t *testing.T, path string, meta map[string]string, ts ...safetensors.Tensor) {
	t.Helper()
	if err := safetensors.WriteFile(path, ts, meta); err != nil {
		t.Fatal(err)
	}
}

// constWeights gives every parameter the value 1.
type constWeights struct{}

func (constWeights) Shape(string) ([]int64, bool) { return nil, true }
func (constWeights) Float32(_ string, shape []int64) ([]float32, error) {
	n := 1
	for _, d := range shape {
		n *= int(d)
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = 1
	}
	return v, nil
}

// TestClosedForm: W' = W + w·(α/r)·up·down by hand for FLUX's fused linear1 (rows q | k | v | mlp) and the
// final adaLN (BFL's (shift, scale) halves become diffusers' (scale, shift)), two LoRAs summed.
func TestClosedForm(t *testing.T) {
	dir := t.TempDir()
	const width, mlp = 32, 128 // the tiny FLUX: 2 heads × 16, mlp ratio 4
	rows := 3*width + mlp
	up := make([]float32, rows*2)
	for i := range up {
		up[i] = float32(i%7) - 3
	}
	down := []float32{}
	for i := range 2 * width {
		down = append(down, float32(i%5)*0.5)
	}
	a := filepath.Join(dir, "a.safetensors")
	write(t, a, nil,
		safetensors.F32("lora_unet_single_blocks_0_linear1.lora_up.weight", []int{rows, 2}, up),
		safetensors.F32("lora_unet_single_blocks_0_linear1.lora_down.weight", []int{2, width}, down),
		safetensors.F32("lora_unet_single_blocks_0_linear1.alpha", []int{}, []float32{1}),
		safetensors.F32("lora_unet_final_layer_adaLN_modulation_1.lora_up.weight", []int{2 * width, 2}, up[:4*width]),
		safetensors.F32("lora_unet_final_layer_adaLN_modulation_1.lora_down.weight", []int{2, width}, down))
	b := filepath.Join(dir, "b.safetensors") // the same linear1 update in BFL form, at another weight
	write(t, b, nil,
		safetensors.F32("diffusion_model.single_blocks.0.linear1.lora_B.weight", []int{rows, 2}, up),
		safetensors.F32("diffusion_model.single_blocks.0.linear1.lora_A.weight", []int{2, width}, down))
	m, err := Apply(checkpoint.FamilyFLUX, fluxComponents(t), []Use{{open(t, a), 0.5}, {open(t, b), 0.25}})
	if err != nil {
		t.Fatal(err)
	}
	w := m.Wrap(checkpoint.RoleTransformer, constWeights{})
	delta := func(r, c int) float64 {
		return float64(up[2*r])*float64(down[c]) + float64(up[2*r+1])*float64(down[width+c])
	}
	check := func(param string, n int, first int, scale float64, swap bool) {
		v, err := w.Float32(param, []int64{int64(n), width})
		if err != nil {
			t.Fatal(err)
		}
		for r := range n {
			src := first + r
			if swap {
				src = (r + n/2) % n
			}
			for c := range width {
				want := 1 + scale*delta(src, c)
				if got := float64(v[r*width+c]); math.Abs(got-want) > 1e-5*(1+math.Abs(want)) {
					t.Fatalf("%s[%d,%d] = %v, want %v", param, r, c, got, want)
				}
			}
		}
	}
	const s = 0.5*0.5 + 0.25 // α/r = 1/2 for a, 1 for b
	check("single_transformer_blocks.0.attn.to_q.weight", width, 0, s, false)
	check("single_transformer_blocks.0.attn.to_k.weight", width, width, s, false)
	check("single_transformer_blocks.0.attn.to_v.weight", width, 2*width, s, false)
	check("single_transformer_blocks.0.proj_mlp.weight", mlp, 3*width, s, false)
	check("norm_out.linear.weight", 2*width, 0, 0.5, true) // no alpha: α = r
	// Made in bands of three rows, the updates are the same bits.
	whole, _ := w.Float32("single_transformer_blocks.0.proj_mlp.weight", []int64{mlp, width})
	for _, ps := range m.byParam[checkpoint.RoleTransformer] {
		for _, p := range ps {
			p.band = 3 * p.cols
		}
	}
	if banded, _ := w.Float32("single_transformer_blocks.0.proj_mlp.weight", []int64{mlp, width}); !slices.Equal(banded, whole) {
		t.Error("a merge in bands of rows differs")
	}
	// Unpatched parameters are the base's own.
	if v, _ := w.Float32("proj_out.weight", []int64{64, width}); v[0] != 1 {
		t.Errorf("an unpatched parameter changed: %v", v[0])
	}
}

// TestBadInput: another architecture's LoRA, a shape mismatch, a NaN weight or values, and an
// unsupported variant are one-line errors naming the LoRA and the key.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	sd3 := open(t, "testdata/sd3/kohya.safetensors")
	_, err := Apply(checkpoint.FamilyFLUX, fluxComponents(t), []Use{{sd3, 1}})
	if err == nil || !strings.Contains(err.Error(), "kohya.safetensors") || !strings.Contains(err.Error(), "lora_unet_joint_blocks_0") ||
		!strings.Contains(err.Error(), "matches no module") || !strings.Contains(err.Error(), "[") {
		t.Errorf("SD3 LoRA on FLUX: %v", err)
	}
	wrong := filepath.Join(dir, "wrong.safetensors")
	write(t, wrong, nil,
		safetensors.F32("lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight", []int{90, 1}, make([]float32, 90)),
		safetensors.F32("lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight", []int{1, 32}, make([]float32, 32)))
	_, err = Apply(checkpoint.FamilyFLUX, fluxComponents(t), []Use{{open(t, wrong), 1}})
	if err == nil || !strings.Contains(err.Error(), "wrong.safetensors") || !strings.Contains(err.Error(), "[90 1]") ||
		!strings.Contains(err.Error(), "[32 32]") {
		t.Errorf("shape mismatch: %v", err)
	}
	f := open(t, "testdata/flux/bfl.safetensors")
	for _, bad := range []float64{math.NaN(), math.Inf(1)} {
		if _, err := Apply(checkpoint.FamilyFLUX, fluxComponents(t), []Use{{f, bad}}); err == nil || !strings.Contains(err.Error(), "not a finite") {
			t.Errorf("weight %v: %v", bad, err)
		}
	}
	nan := filepath.Join(dir, "nan.safetensors")
	write(t, nan, nil,
		safetensors.F32("lora_unet_double_blocks_0_img_attn_proj.lora_up.weight", []int{32, 1}, append(make([]float32, 31), float32(math.NaN()))),
		safetensors.F32("lora_unet_double_blocks_0_img_attn_proj.lora_down.weight", []int{1, 32}, make([]float32, 32)))
	m, err := Apply(checkpoint.FamilyFLUX, fluxComponents(t), []Use{{open(t, nan), 1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Wrap(checkpoint.RoleTransformer, constWeights{}).Float32("transformer_blocks.0.attn.to_out.0.weight", []int64{32, 32}); err == nil ||
		!strings.Contains(err.Error(), "NaN") || !strings.Contains(err.Error(), "nan.safetensors") {
		t.Errorf("NaN values: %v", err)
	}
	dora := filepath.Join(dir, "dora.safetensors")
	write(t, dora, nil, safetensors.F32("transformer.x.lora_A.weight", []int{1, 2}, []float32{1, 2}),
		safetensors.F32("transformer.x.dora_scale", []int{1, 2}, []float32{1, 2}))
	var unsupported *UnsupportedError
	if _, err := Open(dora); !errors.As(err, &unsupported) || !strings.Contains(err.Error(), "DoRA") {
		t.Errorf("DoRA: %v", err)
	}
	junk := filepath.Join(dir, "junk.safetensors")
	write(t, junk, nil, safetensors.F32("model.weight", []int{2}, []float32{1, 2}))
	if _, err := Open(junk); err == nil || !strings.Contains(err.Error(), "not a LoRA tensor") {
		t.Errorf("a checkpoint given as a LoRA: %v", err)
	}
}

// TestVariants: LoHa and LoKr updates against their closed forms.
func TestVariants(t *testing.T) {
	dir := t.TempDir()
	const n = 32
	ramp := func(k int, s float32) []float32 {
		v := make([]float32, k)
		for i := range v {
			v[i] = float32(i%5)*s - 0.3
		}
		return v
	}
	w1a, w1b, w2a, w2b := ramp(n*2, 0.1), ramp(2*n, 0.2), ramp(n*2, 0.3), ramp(2*n, 0.05)
	loha := filepath.Join(dir, "loha.safetensors")
	p := "lora_unet_double_blocks_0_img_attn_proj"
	write(t, loha, nil, safetensors.F32(p+".hada_w1_a", []int{n, 2}, w1a), safetensors.F32(p+".hada_w1_b", []int{2, n}, w1b),
		safetensors.F32(p+".hada_w2_a", []int{n, 2}, w2a), safetensors.F32(p+".hada_w2_b", []int{2, n}, w2b),
		safetensors.F32(p+".alpha", []int{}, []float32{1}))
	k1, k2 := ramp(4*2, 0.5), ramp(8*16, 0.1) // w1 [4,2] ⊗ w2 [8,16] = [32, 32]
	lokr := filepath.Join(dir, "lokr.safetensors")
	write(t, lokr, nil, safetensors.F32(p+".lokr_w1", []int{4, 2}, k1), safetensors.F32(p+".lokr_w2", []int{8, 16}, k2))
	for _, c := range []struct {
		file string
		want func(r, c int) float64
	}{
		{loha, func(r, c int) float64 {
			var x, y float64
			for k := range 2 {
				x += float64(w1a[r*2+k]) * float64(w1b[k*n+c])
				y += float64(w2a[r*2+k]) * float64(w2b[k*n+c])
			}
			return 0.5 * x * y // α/r = 1/2
		}},
		{lokr, func(r, c int) float64 { return float64(k1[(r/8)*2+c/16]) * float64(k2[(r%8)*16+c%16]) }},
	} {
		m, err := Apply(checkpoint.FamilyFLUX, fluxComponents(t), []Use{{open(t, c.file), 1}})
		if err != nil {
			t.Fatal(err)
		}
		v, err := m.Wrap(checkpoint.RoleTransformer, constWeights{}).Float32("transformer_blocks.0.attn.to_out.0.weight", []int64{n, n})
		if err != nil {
			t.Fatal(err)
		}
		for r := range n {
			for col := range n {
				if want := 1 + c.want(r, col); math.Abs(float64(v[r*n+col])-want) > 1e-5 {
					t.Fatalf("%s [%d,%d] = %v, want %v", filepath.Base(c.file), r, col, v[r*n+col], want)
				}
			}
		}
	}
}

// TestHash: A1111's LoRA hash is the SHA-256 of the bytes after the header, or the metadata's
// sshs_model_hash.
func TestHash(t *testing.T) {
	b, err := os.ReadFile("testdata/flux/bfl.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	n := int(b[0]) | int(b[1])<<8 | int(b[2])<<16 | int(b[3])<<24
	sum := sha256.Sum256(b[8+n:])
	if got, err := Hash("testdata/flux/bfl.safetensors"); err != nil || got != hex.EncodeToString(sum[:]) {
		t.Errorf("hash %q, %v; want %x", got, err, sum)
	}
	p := filepath.Join(t.TempDir(), "h.safetensors")
	write(t, p, map[string]string{"sshs_model_hash": "abc123"}, safetensors.F32("x.alpha", []int{}, []float32{1}))
	if got, _ := Hash(p); got != "abc123" {
		t.Errorf("metadata hash: %q", got)
	}
}
