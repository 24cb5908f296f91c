// Package ortopts holds the settings of an ONNX Runtime session — execution provider, device, threads,
// memory, optimized-graph cache — as plain values, so that the public packages that load models
// (pipeline, textenc, vae) can take them in their signatures. It uses only the standard library; the
// sessions themselves are opened by rflow's internal runtime package, which reads these types.
package ortopts

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

// OptLevel is ONNX Runtime's graph optimization level.
type OptLevel int

// Graph optimization levels. The zero value is ONNX Runtime's default, all optimizations.
const (
	OptAll OptLevel = iota
	OptExtended
	OptBasic
	OptDisabled
)

// DefaultCacheMaxBytes is the optimized-graph cache's bound when SessionOptions.CacheMaxBytes is 0.
const DefaultCacheMaxBytes int64 = 2 << 30

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
	// SharedArena makes the session allocate from one CPU arena that every session setting it shares
	// (ORT's environment allocator) instead of an arena of its own: for many small sessions run one
	// after another (the VAE decoder's strips), whose own arenas would each keep their peak, and whose
	// buffers the C allocator, with the arena off, keeps fragmented. It wins over NoArena.
	SharedArena bool
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
