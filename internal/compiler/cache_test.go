package compiler_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rflowrt/rflow/internal/compiler"
	"github.com/rflowrt/rflow/internal/ort/orttest"
	"github.com/rflowrt/rflow/internal/testmodels"
)

// open opens a checkpoint, closed at the end of the test.
func open(t testing.TB, src compiler.Source) *compiler.Checkpoint {
	t.Helper()
	c, err := compiler.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// modTimes maps every file under dir to its modification time.
func modTimes(t testing.TB, dir string) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		info, err := e.Info()
		if err == nil {
			out[p] = info.ModTime()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func cached(t testing.TB, c *compiler.Checkpoint, root string, o compiler.Options) (string, bool) {
	t.Helper()
	dir, built, err := compiler.Cached(context.Background(), c, root, o)
	if err != nil {
		t.Fatal(err)
	}
	return dir, built
}

// TestCachedReuse: a second Cached finds the first one's folder and rewrites nothing; the folder is
// complete and named by the key.
func TestCachedReuse(t *testing.T) {
	c := open(t, compiler.Source{Model: writeCheckpoint(t, testmodels.Options{Kind: testmodels.KindFluxSchnell})})
	root := t.TempDir()
	dir, built := cached(t, c, root, compiler.Options{})
	if !built || !compiler.Complete(dir) {
		t.Fatalf("first Cached: built %t, complete %t", built, compiler.Complete(dir))
	}
	key, err := c.Key(compiler.Options{})
	if err != nil || filepath.Base(dir) != key || filepath.Dir(dir) != root {
		t.Fatalf("folder %s, key %s (%v)", dir, key, err)
	}
	before := modTimes(t, dir)
	time.Sleep(20 * time.Millisecond) // a rewrite would show in the modification times
	again, built := cached(t, c, root, compiler.Options{})
	if built || again != dir {
		t.Fatalf("second Cached: %s built %t, want %s reused", again, built, dir)
	}
	after := modTimes(t, dir)
	if len(after) != len(before) {
		t.Fatalf("%d files before, %d after", len(before), len(after))
	}
	for p, m := range before {
		if !after[p].Equal(m) {
			t.Errorf("%s rewritten (%v → %v)", p, m, after[p])
		}
	}
	ents, _ := os.ReadDir(root)
	if len(ents) != 1 {
		t.Errorf("cache root holds %d entries, want 1", len(ents))
	}
}

// TestCachedDamaged: an entry with a truncated weight file, without its manifest, with a file of
// another size, or of another graph version is rebuilt, never used; a stray partial folder of an
// interrupted build is never used.
func TestCachedDamaged(t *testing.T) {
	c := open(t, compiler.Source{Model: writeCheckpoint(t, testmodels.Options{Kind: testmodels.KindFluxSchnell})})
	root := t.TempDir()
	dir, _ := cached(t, c, root, compiler.Options{})
	manifest := filepath.Join(dir, "rflow-compiled.json")
	data := filepath.Join(dir, "transformer", "model.onnx_data")
	if _, err := os.Stat(data); err != nil {
		// Tiny models may keep weights inline; damage the model file itself then.
		data = filepath.Join(dir, "transformer", "model.onnx")
	}
	damages := map[string]func() error{
		"truncated weights": func() error {
			st, err := os.Stat(data)
			if err != nil {
				return err
			}
			return os.Truncate(data, st.Size()/2)
		},
		"no manifest":  func() error { return os.Remove(manifest) },
		"missing file": func() error { return os.Remove(filepath.Join(dir, "vae_decoder", "config.json")) },
		"other graph version": func() error {
			b, err := os.ReadFile(manifest)
			if err != nil {
				return err
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				return err
			}
			m["graph_version"] = "rflow-graphs-0"
			b, _ = json.Marshal(m)
			return os.WriteFile(manifest, b, 0o644)
		},
		"garbage manifest": func() error { return os.WriteFile(manifest, []byte("{"), 0o644) },
	}
	for name, damage := range damages {
		t.Run(name, func(t *testing.T) {
			if err := damage(); err != nil {
				t.Fatal(err)
			}
			if compiler.Complete(dir) {
				t.Fatal("damaged folder reported complete")
			}
			again, built := cached(t, c, root, compiler.Options{})
			if !built || again != dir || !compiler.Complete(dir) {
				t.Fatalf("Cached after damage: %s built %t complete %t", again, built, compiler.Complete(dir))
			}
		})
	}
	t.Run("stray partial folder", func(t *testing.T) {
		key, _ := c.Key(compiler.Options{})
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		stray := filepath.Join(root, "."+key+".partial-123")
		if err := os.MkdirAll(filepath.Join(stray, "transformer"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(stray, "transformer", "model.onnx"), []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
		old := filepath.Join(root, "."+key+".partial-456") // a killed conversion's, a day old
		if err := os.MkdirAll(old, 0o755); err != nil {
			t.Fatal(err)
		}
		dayAgo := time.Now().Add(-24 * time.Hour)
		if err := os.Chtimes(old, dayAgo, dayAgo); err != nil {
			t.Fatal(err)
		}
		again, built := cached(t, c, root, compiler.Options{})
		if !built || again != dir || !compiler.Complete(dir) || compiler.Complete(stray) {
			t.Fatalf("Cached beside a partial folder: %s built %t", again, built)
		}
		if _, err := os.Stat(old); err == nil {
			t.Error("an abandoned partial folder a day old was left behind")
		}
		if _, err := os.Stat(stray); err != nil {
			t.Error("a fresh partial folder (a conversion that may still run) was removed")
		}
	})
	t.Run("runs after rebuild", func(t *testing.T) {
		needORT(t)
		runComponent(t, dir, "transformer", orttest.Options())
	})
}

// TestKeyChanges: the cache key changes with the weight type, with the weights' content (first and
// last MiB of the data are sampled, and the header), with the config, and not with the folder's path.
func TestKeyChanges(t *testing.T) {
	ckpt := writeCheckpoint(t, testmodels.Options{Kind: testmodels.KindFluxSchnell, GeneratedVocab: true})
	key := func(dir string, o compiler.Options) string {
		t.Helper()
		c, err := compiler.Open(compiler.Source{Model: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		k, err := c.Key(o)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	base := key(ckpt, compiler.Options{})
	if k := key(ckpt, compiler.Options{Weights: "fp32"}); k != base {
		t.Errorf("explicit fp32 changes the key: %s vs %s", k, base)
	}
	if k := key(ckpt, compiler.Options{Weights: "fp16"}); k == base || !strings.Contains(k, "fp16") {
		t.Errorf("fp16 key %s, fp32 %s", k, base)
	}
	moved := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.Rename(ckpt, moved); err != nil {
		t.Fatal(err)
	}
	ckpt = moved
	if k := key(ckpt, compiler.Options{}); k != base {
		t.Errorf("moving the folder changes the key: %s vs %s", k, base)
	}
	weights := filepath.Join(ckpt, "transformer", "diffusion_pytorch_model.safetensors")
	flip := func(fromEnd bool) {
		t.Helper()
		f, err := os.OpenFile(weights, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		st, _ := f.Stat()
		off := st.Size() - 1
		if !fromEnd {
			var n [8]byte
			f.ReadAt(n[:], 0)
			off = 8 + int64(binary.LittleEndian.Uint64(n[:])) // the first data byte
		}
		var b [1]byte
		f.ReadAt(b[:], off)
		b[0] ^= 0x40
		f.WriteAt(b[:], off)
	}
	seen := map[string]string{base: "original"}
	for _, change := range []struct {
		name string
		do   func()
	}{
		{"first data byte", func() { flip(false) }},
		{"last data byte", func() { flip(true) }},
		{"config", func() {
			p := filepath.Join(ckpt, "scheduler", "scheduler_config.json")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, append(b, ' '), 0o644)
		}},
	} {
		change.do()
		k := key(ckpt, compiler.Options{})
		if prev, dup := seen[k]; dup {
			t.Errorf("after changing the %s the key is the one of %s", change.name, prev)
		}
		seen[k] = change.name
	}
	if !strings.HasPrefix(base, "flux-schnell-fp32-") {
		t.Errorf("key %s does not start with variant and weight type", base)
	}
	if _, err := open(t, compiler.Source{Model: ckpt}).Key(compiler.Options{Weights: "int3"}); err == nil {
		t.Error("Key accepted weight type int3")
	}
}

// TestFP16Weights: fp16 weights nearly halve the model files and run; every component's outputs stay within
// fp16 rounding of the fp32 compile's (max |Δ| ≤ 1% of the output's range; the weights' relative
// rounding is ≤ 2⁻¹¹) and are not bit-identical (the weights really are fp16).
func TestFP16Weights(t *testing.T) {
	needORT(t)
	ckpt := writeCheckpoint(t, testmodels.Options{Kind: testmodels.KindFluxDev})
	f32 := compile(t, compiler.Source{Model: ckpt}, compiler.Options{})
	f16 := compile(t, compiler.Source{Model: ckpt}, compiler.Options{Weights: "fp16"})
	size := func(dir string) int64 {
		var n int64
		for p, size := range modTimesSizes(t, dir) {
			if strings.HasPrefix(filepath.Base(p), "model.onnx") {
				n += size
			}
		}
		return n
	}
	if s32, s16 := size(f32), size(f16); float64(s16) > 0.6*float64(s32) {
		t.Errorf("fp16 folder %d bytes, fp32 %d", s16, s32)
	}
	for _, comp := range components(t, f32) {
		want := runComponent(t, f32, comp, orttest.Options())
		got := runComponent(t, f16, comp, orttest.Options())
		for out, w := range want {
			d, scale := maxAbsDiff(w, got[out])
			t.Logf("%s %s: max |Δ| %.3g (max |x| %.3g)", comp, out, d, scale)
			if d > 0.01*scale {
				t.Errorf("%s %s: fp16 weights differ by %g (max |x| %g)", comp, out, d, scale)
			}
			if d == 0 {
				t.Errorf("%s %s: fp16 weights give the fp32 outputs exactly", comp, out)
			}
		}
	}
}

func modTimesSizes(t testing.TB, dir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			if info, err := e.Info(); err == nil {
				out[p] = info.Size()
			}
		}
		return nil
	})
	return out
}
