package ort

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	ortgo "github.com/yalue/onnxruntime_go"
)

// Provider names an ONNX Runtime execution provider.
type Provider string

// The execution providers rflow knows how to configure.
const (
	CPU      Provider = "cpu"
	CUDA     Provider = "cuda"
	TensorRT Provider = "tensorrt"
	CoreML   Provider = "coreml"
	DirectML Provider = "directml"
)

// Providers lists every provider name ParseProvider accepts.
func Providers() []Provider { return []Provider{CPU, CUDA, TensorRT, CoreML, DirectML} }

// ParseProvider turns a user's provider name into a Provider ("" means cpu).
func ParseProvider(s string) (Provider, error) {
	if s == "" {
		return CPU, nil
	}
	for _, p := range Providers() {
		if strings.EqualFold(s, string(p)) {
			return p, nil
		}
	}
	names := make([]string, 0, 5)
	for _, p := range Providers() {
		names = append(names, string(p))
	}
	return "", fmt.Errorf("unknown execution provider %q (valid: %s)", s, strings.Join(names, ", "))
}

// OptLevel is ORT's graph optimization level.
type OptLevel int

// Graph optimization levels. The zero value is ORT's default, all optimizations.
const (
	OptAll OptLevel = iota
	OptExtended
	OptBasic
	OptDisabled
)

// SessionOptions configure one session. The zero value runs on the CPU with one intra-op thread per
// core, no spinning, all graph optimizations and no optimized-graph cache.
type SessionOptions struct {
	// Provider is the execution provider; "" is cpu. The CPU provider is always appended last, so
	// nodes another provider cannot run still run.
	Provider Provider
	// DeviceID selects the GPU for cuda, tensorrt and directml (default 0).
	DeviceID int
	// GPUMemLimit caps the CUDA arena in bytes; 0 leaves it unlimited.
	GPUMemLimit int64
	// IntraOpThreads is the number of threads one operator may use; 0 means runtime.NumCPU().
	IntraOpThreads int
	// Spinning lets idle intra-op and inter-op threads spin, waiting for work, instead of sleeping.
	// It is off by default: on the bench SD3 transformer it burnt ~40 % more CPU for no wall-time gain
	// (turn2-findings §3), and on a shared machine that CPU is taken from other work.
	Spinning bool
	// NoSpinning is kept for callers written when spinning was ORT's default; spinning is now off
	// unless Spinning is set, and NoSpinning wins over Spinning.
	NoSpinning bool
	// LowMem trades a little speed for memory: ORT's memory pattern (buffers planned from the first
	// Run's shapes and kept between Runs) is off. The CPU arena stays on: turning it off raised the
	// peak of a bench SD3 txt2img at 512² from 733 to 1209 MiB. Callers may read it as a wider hint
	// (the pipeline decodes the VAE in smaller tiles).
	LowMem bool
	// NoArena turns ORT's CPU memory arena off, so freed buffers go back to the C allocator.
	NoArena bool
	// DynamicBlockBase sets ORT's session.dynamic_block_base for sessions of more than one thread:
	// intra-op work is handed out in shrinking blocks instead of one equal share per thread, so a
	// thread the OS descheduled does not hold up the others. 0 means DefaultDynamicBlockBase (4), a
	// negative value ORT's static split.
	DynamicBlockBase int
	// ProfilePrefix, when set, turns on ORT's per-operator profiler; the JSON trace is written to
	// <ProfilePrefix>_<date>.json when the session is closed.
	ProfilePrefix string
	// OptLevel is the graph optimization level (zero value: all).
	OptLevel OptLevel
	// CacheDir, when set, keeps ORT's optimized graph on disk keyed by model hash, ORT version,
	// provider, optimization level and CPU, so the next load of the same model skips optimization.
	// For tensorrt it holds TensorRT's engine cache instead.
	CacheDir string
	// CacheMaxBytes bounds CacheDir: after an entry is written the least recently used entries are
	// removed until the rest fit. 0 means DefaultCacheMaxBytes, a negative value no bound. A model
	// that keeps its weights in external data files, or is larger than half the
	// bound, is not cached at all: its entry would be a second copy of its weights.
	CacheMaxBytes int64
	// Outputs names the outputs to compute, in order; nil computes all of the model's outputs.
	Outputs []string
}

// ProviderError says that the loaded library cannot run a requested execution provider.
type ProviderError struct {
	Provider Provider
	Library  string
	Err      error
}

func (e *ProviderError) Error() string {
	return fmt.Sprintf("execution provider %s is not available in %s: %v", e.Provider, e.Library, e.Err)
}

func (e *ProviderError) Unwrap() error { return e.Err }

// ErrProviderUnavailable is matched (errors.Is) by every ProviderError.
var ErrProviderUnavailable = errors.New("execution provider unavailable")

// Is makes errors.Is(err, ErrProviderUnavailable) true for a ProviderError.
func (e *ProviderError) Is(target error) bool { return target == ErrProviderUnavailable }

// DefaultDynamicBlockBase is the dynamic_block_base of sessions with more than one thread. Measured
// on the bench SD3 fixture at 512², 2 threads, a shared 2-core machine (load average ~20), three
// interleaved rounds: the VAE decode took 0.86–0.89× the CPU time of ORT's static split (wall
// 0.86–0.90×), the transformer stage 0.83–1.08× its CPU time (median 0.94×).
const DefaultDynamicBlockBase = 4

// newORTOptions builds the wrapper's options. The caller destroys them.
func newORTOptions(o SessionOptions) (*ortgo.SessionOptions, error) {
	so, err := ortgo.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	if err := configureOptions(so, o); err != nil {
		so.Destroy()
		return nil, err
	}
	return so, nil
}

func configureOptions(so *ortgo.SessionOptions, o SessionOptions) error {
	threads := o.IntraOpThreads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	if err := so.SetIntraOpNumThreads(threads); err != nil {
		return fmt.Errorf("intra-op threads: %w", err)
	}
	spin := "0"
	if o.Spinning && !o.NoSpinning {
		spin = "1"
	}
	for _, k := range []string{"session.intra_op.allow_spinning", "session.inter_op.allow_spinning"} {
		if err := so.AddSessionConfigEntry(k, spin); err != nil {
			return fmt.Errorf("spinning: %w", err)
		}
	}
	if o.LowMem {
		if err := so.SetMemPattern(false); err != nil {
			return fmt.Errorf("memory pattern: %w", err)
		}
	}
	if o.NoArena {
		if err := so.SetCpuMemArena(false); err != nil {
			return fmt.Errorf("cpu arena: %w", err)
		}
	}
	if base := o.DynamicBlockBase; base >= 0 && threads > 1 {
		if base == 0 {
			base = DefaultDynamicBlockBase
		}
		if err := so.AddSessionConfigEntry("session.dynamic_block_base", strconv.Itoa(base)); err != nil {
			return fmt.Errorf("dynamic block base: %w", err)
		}
	}
	if o.ProfilePrefix != "" {
		if err := so.EnableProfiling(o.ProfilePrefix); err != nil {
			return fmt.Errorf("profiling: %w", err)
		}
	}
	if err := so.SetGraphOptimizationLevel(ortLevel(o.OptLevel)); err != nil {
		return fmt.Errorf("graph optimization level: %w", err)
	}
	if err := appendProvider(so, o); err != nil {
		return &ProviderError{Provider: o.Provider, Library: LibraryPath(), Err: err}
	}
	return nil
}

func ortLevel(l OptLevel) ortgo.GraphOptimizationLevel {
	switch l {
	case OptExtended:
		return ortgo.GraphOptimizationLevelEnableExtended
	case OptBasic:
		return ortgo.GraphOptimizationLevelEnableBasic
	case OptDisabled:
		return ortgo.GraphOptimizationLevelDisableAll
	}
	return ortgo.GraphOptimizationLevelEnableAll
}

func appendProvider(so *ortgo.SessionOptions, o SessionOptions) error {
	dev := strconv.Itoa(o.DeviceID)
	switch o.Provider {
	case "", CPU:
		return nil
	case CUDA:
		po, err := ortgo.NewCUDAProviderOptions()
		if err != nil {
			return err
		}
		defer po.Destroy()
		opts := map[string]string{"device_id": dev}
		if o.GPUMemLimit > 0 {
			opts["gpu_mem_limit"] = strconv.FormatInt(o.GPUMemLimit, 10)
		}
		if err := po.Update(opts); err != nil {
			return err
		}
		return so.AppendExecutionProviderCUDA(po)
	case TensorRT:
		po, err := ortgo.NewTensorRTProviderOptions()
		if err != nil {
			return err
		}
		defer po.Destroy()
		opts := map[string]string{"device_id": dev}
		if o.CacheDir != "" {
			opts["trt_engine_cache_enable"] = "1"
			opts["trt_engine_cache_path"] = o.CacheDir
		}
		if err := po.Update(opts); err != nil {
			return err
		}
		return so.AppendExecutionProviderTensorRT(po)
	case CoreML:
		return so.AppendExecutionProviderCoreMLV2(map[string]string{})
	case DirectML:
		return so.AppendExecutionProviderDirectML(o.DeviceID)
	}
	_, err := ParseProvider(string(o.Provider))
	return err
}

// AvailableProviders probes which execution providers the loaded library can configure. cpu is always
// present; a GPU provider appears only when its provider library (and, for CUDA, its runtime) loads.
func AvailableProviders() ([]Provider, error) {
	if err := checkInit(); err != nil {
		return nil, err
	}
	var out []Provider
	for _, p := range Providers() {
		so, err := ortgo.NewSessionOptions()
		if err != nil {
			return nil, err
		}
		if appendProvider(so, SessionOptions{Provider: p}) == nil {
			out = append(out, p)
		}
		so.Destroy()
	}
	return out, nil
}
