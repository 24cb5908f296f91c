package exportquant

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/rflowrt/rflow/internal/benchutil"
	"github.com/rflowrt/rflow/internal/compiler/arch"
	"github.com/rflowrt/rflow/internal/onnx"
)

// On real torch.onnx exports (the oracle's make_models.py output: RFLOW_TORCH_EXPORTS=DIR holding
// KIND/onnx/COMPONENT/model.onnx; skipped without it), fusing attention keeps the outputs within
// float tolerance and q8 stays close to fp32.
func TestTorchExports(t *testing.T) {
	root := os.Getenv("RFLOW_TORCH_EXPORTS")
	if root == "" {
		t.Skip("RFLOW_TORCH_EXPORTS not set (a folder of the oracle's models, e.g. WORK_DIR/models)")
	}
	paths, _ := filepath.Glob(filepath.Join(root, "*", "onnx", "*", modelFile))
	if len(paths) == 0 {
		t.Fatalf("no */onnx/*/model.onnx under %s", root)
	}
	dir := t.TempDir()
	for i, src := range paths {
		name, _ := filepath.Rel(root, filepath.Dir(src))
		if filepath.Base(name) == "vae_encoder" {
			continue
		}
		for _, o := range []Options{{Kind: arch.FP32, FuseAttention: true}, {Kind: arch.Q8, FuseAttention: true}} {
			m, err := onnx.ReadModel(src)
			if err != nil {
				t.Fatal(err)
			}
			st, err := Rewrite(context.Background(), m, o)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			dst := writeModel(t, m, filepath.Join(dir, string(o.Kind), filepath.FromSlash(name)))
			want, got := runModel(t, src, uint64(i)), runModel(t, dst, uint64(i))
			for k, w := range want {
				d, scale := maxDiff(w, got[k])
				t.Logf("%s %s: %d attentions fused (%d Softmax left), %d/%d MatMuls quantized; %s max |Δ| %.3g of %.3g, %.1f dB",
					name, o.Kind, st.Attentions, st.AttentionsLeft, st.Quantized, st.WeightMatMuls, k, d, scale, benchutil.SNRdB(got[k], w))
				if o.Kind == arch.FP32 && d > 1e-4*max(scale, 1) {
					t.Errorf("%s %s: fused output differs by %g", name, k, d)
				}
			}
		}
	}
}
