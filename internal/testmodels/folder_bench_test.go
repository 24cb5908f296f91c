package testmodels

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestBenchFolder writes the largest kind at bench size without asking for external data: the
// transformer and T5, over 100 MB each, must get it anyway; then it runs every model once.
func TestBenchFolder(t *testing.T) {
	if testing.Short() {
		t.Skip("bench-size folder (about 440 MB) skipped in -short mode")
	}
	o, err := Options{Kind: KindSD3, Size: SizeBench}.normalized()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	start := time.Now()
	if err := Write(dir, o); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s bench in %v", o.Kind, time.Since(start).Round(time.Millisecond))
	d, err := DimsFor(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"text_encoder_3", "transformer"} {
		st, err := os.Stat(filepath.Join(dir, c, "model.onnx_data"))
		if err != nil || st.Size() <= externalLimit {
			t.Errorf("%s: external data %v, want over %d bytes", c, err, externalLimit)
		}
	}
	f := folder{t: t, dir: dir, k: o.Kind, o: o, d: d}
	withExt := f
	withExt.o.ExternalData = true // the layout ExternalData would have given
	withExt.checkFiles(f.hasRealTokenizers())
	f.checkConfigs()
	start = time.Now()
	f.runModels()
	t.Logf("ran every model in %v", time.Since(start).Round(time.Millisecond))
}

func (f folder) hasRealTokenizers() bool {
	_, err := os.Stat(f.path("tokenizer/tokenizer.json"))
	return err == nil
}

func BenchmarkWrite(b *testing.B) {
	for _, s := range []Size{SizeTiny, SizeBench} {
		for _, k := range Kinds() {
			b.Run(string(s)+"/"+string(k), func(b *testing.B) {
				o := Options{Kind: k, Size: s}
				for b.Loop() {
					dir := b.TempDir()
					if err := Write(dir, o); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					os.RemoveAll(dir)
					b.StartTimer()
				}
			})
		}
	}
}
