package ort

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/rflowrt/rflow/ortopts"
)

// The session settings are defined in the public package ortopts, so that public signatures can
// name them; add new settings there. These aliases keep this package's spelling.
type (
	// Provider names an ONNX Runtime execution provider.
	Provider = ortopts.Provider
	// OptLevel is ORT's graph optimization level.
	OptLevel = ortopts.OptLevel
	// SessionOptions configure one session (see ortopts.SessionOptions for the fields).
	SessionOptions = ortopts.SessionOptions
)

// The execution providers rflow knows how to configure.
const (
	CPU      = ortopts.CPU
	CUDA     = ortopts.CUDA
	TensorRT = ortopts.TensorRT
	CoreML   = ortopts.CoreML
	DirectML = ortopts.DirectML
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

// Graph optimization levels. The zero value is ORT's default, all optimizations.
const (
	OptAll      = ortopts.OptAll
	OptExtended = ortopts.OptExtended
	OptBasic    = ortopts.OptBasic
	OptDisabled = ortopts.OptDisabled
)

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
	if o.SharedArena {
		if err := registerSharedArena(); err != nil {
			return fmt.Errorf("shared cpu arena: %w", err)
		}
		if err := so.AddSessionConfigEntry("session.use_env_allocators", "1"); err != nil {
			return fmt.Errorf("shared cpu arena: %w", err)
		}
	} else if o.NoArena {
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
