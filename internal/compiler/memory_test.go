package compiler_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rflowrt/rflow/internal/testmodels"
)

// TestCompileMemoryStreams: compiling holds about one tensor at a time, not the model. Two FLUX
// checkpoints whose transformers are deepened and widened (~56M and ~110M parameters, bf16 on disk,
// 235 and ~450 MiB as the fp32 they are compiled to; the largest tensor, T5's embedding, 8 MB as
// float32) are compiled in child processes. The larger model's peak RSS may exceed the smaller's by
// far less than the extra weights (a quarter of them): a compiler that held the model would add all
// of it. A single peak is also bounded loosely (4 × the largest tensor + 48 MiB for the Go runtime,
// the graphs and the mapped headers), because on a loaded machine the garbage collector falls behind
// and it moves: measured 39–46 MiB alone and 59 MiB under the whole test suite on 2 cores (before
// mapped pages were released with a fault-around margin: 72 MiB, growing with the model).
func TestCompileMemoryStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: writes and compiles 225 and 450 MB models")
	}
	if raceEnabled {
		t.Skip("the race detector's shadow memory inflates peak RSS")
	}
	const mib = 1 << 20
	var peaks, totals [2]int64
	var largest int64
	for i, singles := range []int{16, 40} {
		dir := writeCheckpoint(t, testmodels.Options{Kind: testmodels.KindFluxSchnell, GeneratedVocab: true})
		replaceTransformer(t, dir, map[string]any{"num_layers": 4, "num_single_layers": singles, "num_attention_heads": 12})
		l, total := largestTensor(t, dir)
		rep := convertInChild(t, dir, filepath.Join(t.TempDir(), "out"))
		peaks[i], totals[i], largest = rep.PeakKB*1024, total, max(largest, l)
		if peaks[i] == 0 {
			t.Skip("no /proc/self/status here: the peak RSS is not known")
		}
		t.Logf("model %.0f MiB as float32, largest tensor %.1f MiB; compile %.2f s, RSS after open %.1f MiB, peak %.1f MiB",
			float64(total)/mib, float64(l)/mib, rep.Seconds, float64(rep.OpenKB)/1024, float64(peaks[i])/mib)
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
	}
	if grow, extra := peaks[1]-peaks[0], totals[1]-totals[0]; grow > extra/4 {
		t.Errorf("peak RSS grew %.1f MiB for %.1f MiB more weights", float64(grow)/mib, float64(extra)/mib)
	}
	for i, peak := range peaks {
		if limit := 4*largest + 48*mib; peak > limit {
			t.Errorf("model %d: peak RSS %.1f MiB exceeds 4 × largest tensor + 48 MiB = %.1f MiB", i, float64(peak)/mib, float64(limit)/mib)
		}
	}
}
