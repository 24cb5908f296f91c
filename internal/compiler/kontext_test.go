package compiler_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rflowrt/rflow/internal/compiler"
	"github.com/rflowrt/rflow/internal/testmodels"
	"github.com/rflowrt/rflow/pipeline"
)

// configCopy copies the JSON configs of a checkpoint folder (no weights) into a new folder, with
// model_index.json's class replaced by class.
func configCopy(t *testing.T, ckpt, class string) string {
	t.Helper()
	out := t.TempDir()
	err := filepath.WalkDir(ckpt, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(p, ".json") || strings.HasSuffix(p, ".index.json") {
			return err
		}
		rel, _ := filepath.Rel(ckpt, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if rel == "model_index.json" {
			data = []byte(strings.Replace(string(data), `"FluxPipeline"`, `"`+class+`"`, 1))
		}
		if err := os.MkdirAll(filepath.Join(out, filepath.Dir(rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(out, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSingleFileKontext: a single FLUX dev-type transformer file is FLUX.1 Kontext when
// --model-config's model_index.json names FluxKontextPipeline or its file name says kontext; its compiled folder then has FluxKontextPipeline's model index, so the pipeline
// takes reference pictures. Otherwise it stays FLUX.1-dev.
func TestSingleFileKontext(t *testing.T) {
	ckpt := writeCheckpoint(t, testmodels.Options{Kind: testmodels.KindFluxDev})
	base := singleFiles(ckpt, testmodels.KindFluxDev)
	kontextFile := filepath.Join(t.TempDir(), "flux1-kontext-dev.safetensors")
	if err := os.Symlink(base.Model, kontextFile); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, file, class, want string
	}{
		{"file name", kontextFile, "FluxPipeline", compiler.VariantFluxKontext},
		{"model config", base.Model, "FluxKontextPipeline", compiler.VariantFluxKontext},
		{"plain", base.Model, "FluxPipeline", "flux-dev"},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := base
			src.Model, src.Config = c.file, configCopy(t, ckpt, c.class)
			ck, err := compiler.Open(src)
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			if ck.Variant != c.want {
				t.Fatalf("variant %q, want %q (notes %v)", ck.Variant, c.want, ck.Notes)
			}
			if c.want == compiler.VariantFluxKontext && !strings.Contains(strings.Join(ck.Notes, "\n"), "FLUX.1 Kontext") {
				t.Errorf("no note says Kontext: %v", ck.Notes)
			}
		})
	}
	needORT(t)
	src := base
	src.Model, src.Config = kontextFile, configCopy(t, ckpt, "FluxPipeline")
	m, err := pipeline.Open(compile(t, src, compiler.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	if !m.KontextModel() || m.Index.ClassName != "FluxKontextPipeline" {
		t.Fatalf("compiled class %q: not a Kontext model", m.Index.ClassName)
	}
	if m.Scheduler.Shift != 3 || !m.Scheduler.UseDynamicShifting {
		t.Errorf("scheduler %+v, want FLUX.1-dev's", m.Scheduler)
	}
}
