package compiler_test

import (
	"path/filepath"
	"testing"

	"github.com/rflowrt/rflow/internal/testmodels"
)

// TestCompileMemoryStreams: compiling holds about one tensor at a time, not the model. A FLUX
// checkpoint whose transformer is deepened and widened to ~56M parameters (bf16 on disk, 225 MB as the
// fp32 it is compiled to; its largest tensor, T5's embedding, 8 MB as float32) is compiled in a child
// process, whose peak RSS must stay under 4 × the largest tensor + 32 MiB for the Go runtime, the
// graphs and the mapped headers — and under a quarter of the model. (Measured 39-40 MiB, a sixth of
// the model; before mapped pages were released with a fault-around margin, 72 MiB, growing with the model.)
func TestCompileMemoryStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: writes and compiles a 225 MB model")
	}
	if raceEnabled {
		t.Skip("the race detector's shadow memory inflates peak RSS")
	}
	dir := writeCheckpoint(t, testmodels.Options{Kind: testmodels.KindFluxSchnell, GeneratedVocab: true})
	replaceTransformer(t, dir, map[string]any{"num_layers": 4, "num_single_layers": 16, "num_attention_heads": 12})
	largest, total := largestTensor(t, dir)
	rep := convertInChild(t, dir, filepath.Join(t.TempDir(), "out"))
	peak := rep.PeakKB * 1024
	if peak == 0 {
		t.Skip("no /proc/self/status here: the peak RSS is not known")
	}
	const mib = 1 << 20
	t.Logf("model %.0f MiB as float32, largest tensor %.1f MiB; compile %.2f s, RSS after open %.1f MiB, peak %.1f MiB",
		float64(total)/mib, float64(largest)/mib, rep.Seconds, float64(rep.OpenKB)/1024, float64(peak)/mib)
	if limit := 4*largest + 32*mib; peak > limit {
		t.Errorf("peak RSS %.1f MiB exceeds 4 × largest tensor + 32 MiB = %.1f MiB", float64(peak)/mib, float64(limit)/mib)
	}
	if peak > total/4 {
		t.Errorf("peak RSS %.1f MiB is not far below the model's %.1f MiB", float64(peak)/mib, float64(total)/mib)
	}
}
