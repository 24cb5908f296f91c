package benchutil

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	v := []float64{5, 1, 3}
	for _, c := range []struct {
		in   []float64
		want float64
	}{{v, 3}, {[]float64{4, 1, 3, 2}, 2.5}, {[]float64{7}, 7}} {
		if got := Median(c.in); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	if v[0] != 5 || v[1] != 1 {
		t.Errorf("Median sorted its argument: %v", v)
	}
	if !math.IsNaN(Median(nil)) {
		t.Error("Median(nil) is not NaN")
	}
}

func TestStatusField(t *testing.T) {
	status := "Name:\tbench\nVmPeak:\t  812344 kB\nVmHWM:\t   40960 kB\nVmRSS:\t   30720 kB\n"
	if kb, err := statusField(status, "VmHWM"); err != nil || kb != 40960 {
		t.Errorf("VmHWM = %d, %v; want 40960", kb, err)
	}
	if _, err := statusField(status, "VmSwap"); err == nil {
		t.Error("a missing field read without error")
	}
	if runtime.GOOS == "linux" {
		if kb, err := StatusKB("VmRSS"); err != nil || kb <= 0 {
			t.Errorf("this process's VmRSS = %d kB, %v", kb, err)
		}
	}
}

func TestCPUTimeCountsWork(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("CPU time is not measured here")
	}
	start := CPUTime()
	deadline := time.Now().Add(30 * time.Millisecond)
	x := 0.0
	for time.Now().Before(deadline) {
		x += math.Sqrt(x + 1)
	}
	if used := CPUTime() - start; used <= 0 || x == 0 {
		t.Errorf("30 ms of spinning used %v of CPU time", used)
	}
}

// childEnv makes TestChild print a line and allocate (and touch) about 64 MiB, or fail ("fail").
const childEnv = "RFLOW_BENCHUTIL_CHILD"

func TestChild(t *testing.T) {
	switch os.Getenv(childEnv) {
	case "":
		t.Skip("runs only as TestRunChild's child process")
	case "fail":
		t.Fatal("failing on purpose")
	}
	b := make([]byte, 64<<20)
	for i := range b {
		b[i] = byte(i)
	}
	fmt.Printf("child-says=%s sum=%d\n", os.Getenv(childEnv), b[len(b)-1])
}

func TestRunChild(t *testing.T) {
	out, peak, err := RunChild("TestChild", childEnv+"=hello")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "child-says=hello") {
		t.Errorf("the child's output lacks its line:\n%s", out)
	}
	if runtime.GOOS == "linux" && (peak < 64 || peak > 1024) {
		t.Errorf("the child touched 64 MiB, its peak is %.1f MiB", peak)
	}
	if _, _, err := RunChild("TestChild", childEnv+"=fail"); err == nil || !strings.Contains(err.Error(), "failing on purpose") {
		t.Errorf("a failing child: %v, want an error with its output", err)
	}
}

// fatalTB records Fatalf instead of stopping the test.
type fatalTB struct {
	testing.TB
	failed bool
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(string, ...any) { f.failed = true; runtime.Goexit() }

// envOf runs fn on its own goroutine (Fatalf ends it) and says whether it stopped.
func envOf(t *testing.T, fn func(tb testing.TB)) (stopped bool) {
	tb := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() { defer close(done); fn(tb) }()
	<-done
	return tb.failed
}

func TestEnvInts(t *testing.T) {
	const name = "RFLOW_BENCHUTIL_TEST_INTS"
	t.Setenv(name, "")
	var got []int
	if envOf(t, func(tb testing.TB) { got = EnvInts(tb, name, []int{512, 1024}) }) || len(got) != 2 || got[1] != 1024 {
		t.Errorf("unset: %v, want the default", got)
	}
	t.Setenv(name, "256, 768")
	if envOf(t, func(tb testing.TB) { got = EnvInts(tb, name, nil) }) || len(got) != 2 || got[0] != 256 || got[1] != 768 {
		t.Errorf("256, 768: %v", got)
	}
	var n int
	t.Setenv(name, "3")
	if envOf(t, func(tb testing.TB) { n = EnvInt(tb, name, 1) }) || n != 3 {
		t.Errorf("EnvInt 3: %d", n)
	}
	for _, bad := range []string{"x", "0", "-2", "2,", "1,2"} {
		t.Setenv(name, bad)
		if !envOf(t, func(tb testing.TB) { EnvInt(tb, name, 1) }) {
			t.Errorf("EnvInt took %q", bad)
		}
	}
}

func TestSNRdB(t *testing.T) {
	ref := []float32{3, 4}                            // Σref² = 25
	got := []float32{3.5, 4}                          // Σ(got−ref)² = 0.25
	if s := SNRdB(got, ref); math.Abs(s-20) > 1e-12 { // 10·log10(100)
		t.Errorf("SNRdB = %v, want 20", s)
	}
	if s := SNRdB(ref, ref); !math.IsInf(s, 1) {
		t.Errorf("SNRdB of equal vectors = %v, want +Inf", s)
	}
}
