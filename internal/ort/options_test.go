package ort

import (
	"testing"

	ortgo "github.com/yalue/onnxruntime_go"
)

// TestSpinningOffByDefault: the zero options turn intra- and inter-op spinning off; Spinning turns it
// on unless NoSpinning (older callers) says otherwise.
func TestSpinningOffByDefault(t *testing.T) {
	if err := checkInit(); err != nil {
		t.Skip(err)
	}
	for _, c := range []struct {
		o    SessionOptions
		want string
	}{
		{SessionOptions{}, "0"},
		{SessionOptions{NoSpinning: true}, "0"},
		{SessionOptions{Spinning: true}, "1"},
		{SessionOptions{Spinning: true, NoSpinning: true}, "0"},
		{SessionOptions{LowMem: true, NoArena: true}, "0"},
	} {
		so, err := ortgo.NewSessionOptions()
		if err != nil {
			t.Fatal(err)
		}
		if err := configureOptions(so, c.o); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"session.intra_op.allow_spinning", "session.inter_op.allow_spinning"} {
			if got, err := so.GetSessionConfigEntry(k); err != nil || got != c.want {
				t.Errorf("%+v: %s = %q (%v), want %q", c.o, k, got, err, c.want)
			}
		}
		so.Destroy()
	}
}

func TestDynamicBlockBase(t *testing.T) {
	if err := checkInit(); err != nil {
		t.Skip(err)
	}
	for _, c := range []struct {
		base, threads int
		want          string
	}{{0, 2, "4"}, {-1, 2, ""}, {8, 2, "8"}, {0, 1, ""}} {
		so, err := ortgo.NewSessionOptions()
		if err != nil {
			t.Fatal(err)
		}
		if err := configureOptions(so, SessionOptions{DynamicBlockBase: c.base, IntraOpThreads: c.threads}); err != nil {
			t.Fatal(err)
		}
		has, _ := so.HasSessionConfigEntry("session.dynamic_block_base")
		got := ""
		if has {
			got, _ = so.GetSessionConfigEntry("session.dynamic_block_base")
		}
		if got != c.want {
			t.Errorf("DynamicBlockBase %d, %d threads: config %q, want %q", c.base, c.threads, got, c.want)
		}
		so.Destroy()
	}
}
