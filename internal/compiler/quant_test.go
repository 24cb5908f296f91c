package compiler_test

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/benchutil"
	"github.com/rflowrt/rflow/internal/compiler"
	"github.com/rflowrt/rflow/internal/ort/orttest"
	"github.com/rflowrt/rflow/internal/testmodels"
)

// TestQuantizedWeightsPerComponent: Weights quantizes the transformer, TextWeights the text encoders,
// and the VAE stays float32 (bit-identical outputs); quantized components run, stay near the fp32
// compile's outputs, and are smaller.
func TestQuantizedWeightsPerComponent(t *testing.T) {
	needORT(t)
	ckpt := writeCheckpoint(t, testmodels.Options{Kind: testmodels.KindSD3})
	f32 := compile(t, compiler.Source{Model: ckpt}, compiler.Options{})
	q := compile(t, compiler.Source{Model: ckpt}, compiler.Options{Weights: "q4", TextWeights: "int8"})
	op := map[string]string{"transformer": "MatMulNBits", "text_encoder": "DynamicQuantizeMatMul",
		"text_encoder_2": "DynamicQuantizeMatMul", "text_encoder_3": "DynamicQuantizeMatMul"}
	minSNR := map[string]float64{"transformer": 12, "text_encoder": 20, "text_encoder_2": 20, "text_encoder_3": 20}
	for _, comp := range components(t, f32) {
		graph, err := os.ReadFile(filepath.Join(q, comp, "model.onnx"))
		if err != nil {
			t.Fatal(err)
		}
		hasQuant := bytes.Contains(graph, []byte("MatMulNBits")) || bytes.Contains(graph, []byte("DynamicQuantizeMatMul"))
		if want := op[comp]; want != "" && !bytes.Contains(graph, []byte(want)) || want == "" && hasQuant {
			t.Errorf("%s: quantized op %q expected, graph has quantized ops: %v", comp, want, hasQuant)
		}
		want := runComponent(t, f32, comp, orttest.Options())
		got := runComponent(t, q, comp, orttest.Options())
		for out, w := range want {
			s := benchutil.SNRdB(got[out], w)
			t.Logf("%s %s: SNR vs fp32 %.1f dB", comp, out, s)
			switch {
			case strings.HasPrefix(comp, "vae") && !math.IsInf(s, 1):
				t.Errorf("%s %s: VAE outputs changed (SNR %.1f dB)", comp, out, s)
			case s < minSNR[comp] && !strings.HasPrefix(comp, "vae"):
				t.Errorf("%s %s: SNR %.1f dB, want ≥ %.0f", comp, out, s, minSNR[comp])
			}
		}
	}
	size := func(dir, comp string) int64 {
		var n int64
		for _, f := range []string{"model.onnx", "model.onnx_data"} {
			if st, err := os.Stat(filepath.Join(dir, comp, f)); err == nil {
				n += st.Size()
			}
		}
		return n
	}
	if s4, s32 := size(q, "transformer"), size(f32, "transformer"); float64(s4) > 0.5*float64(s32) {
		t.Errorf("q4 transformer %d bytes, fp32 %d", s4, s32)
	}
}

// TestWeightKindsInKey: each kind of the transformer and of the text encoders has its own cache entry;
// an unknown kind is refused naming the valid ones.
func TestWeightKindsInKey(t *testing.T) {
	c := open(t, compiler.Source{Model: writeCheckpoint(t, testmodels.Options{Kind: testmodels.KindFluxSchnell, GeneratedVocab: true})})
	seen := map[string]compiler.Options{}
	for _, o := range []compiler.Options{{}, {Weights: "fp16"}, {Weights: "int8"}, {Weights: "q8"}, {Weights: "q4"},
		{Weights: "q4", TextWeights: "q8"}, {TextWeights: "int8"}, {Weights: "fp16", TextWeights: "fp32"}} {
		k, err := c.Key(o)
		if err != nil {
			t.Fatal(err)
		}
		if prev, dup := seen[k]; dup {
			t.Errorf("%+v and %+v share the key %s", o, prev, k)
		}
		seen[k] = o
		if w := o.Weights; w != "" && !strings.Contains(k, "-"+w+"-") {
			t.Errorf("key %s does not name %s", k, w)
		}
	}
	if k, _ := c.Key(compiler.Options{Weights: "fp16", TextWeights: "fp16"}); k != mustKey(t, c, compiler.Options{Weights: "fp16"}) {
		t.Errorf("fp16 text encoders are fp16's default, yet the key changes: %s", k)
	}
	for _, o := range []compiler.Options{{Weights: "int4"}, {TextWeights: "q3"}} {
		_, err := c.Key(o)
		oneLine(t, err, "unknown weight kind", "q4")
	}
}

func mustKey(t *testing.T, c *compiler.Checkpoint, o compiler.Options) string {
	t.Helper()
	k, err := c.Key(o)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
