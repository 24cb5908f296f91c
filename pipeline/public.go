package pipeline

import (
	"fmt"

	"github.com/rflowrt/rflow/internal/onnx"
	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/internal/rng"
	"github.com/rflowrt/rflow/ortopts"
)

// This file is the part of the public API that names what the internal packages define, so that a Go
// program in another module can spell every type and value of a public signature through pipeline.

// RuntimeOptions say which ONNX Runtime library Init loads.
type RuntimeOptions struct {
	// LibraryPath is the shared library to load (libonnxruntime.so, .dylib, onnxruntime.dll). Empty:
	// $RFLOW_ORT_LIB, then .ort/ beside the executable or in its parent folder, pip's onnxruntime,
	// then the system's library paths.
	LibraryPath string
	// Verbose lets ONNX Runtime log warnings as well as errors (it writes them to stderr itself).
	Verbose bool
}

// LibraryEnv is the environment variable naming the ONNX Runtime library to load when
// RuntimeOptions.LibraryPath is empty.
const LibraryEnv = "RFLOW_ORT_LIB"

// Init loads the ONNX Runtime library and starts the process-wide runtime. Calling it is optional:
// the first Generate starts it with the zero RuntimeOptions. Call it first to choose the library or
// to see a missing library at start-up rather than at the first request. A second call with the same
// library is a no-op; asking for another library once one is loaded is an error (a process holds one).
func Init(o RuntimeOptions) error {
	if err := ort.Init(ort.Config{LibraryPath: o.LibraryPath, Verbose: o.Verbose}); err != nil {
		return fmt.Errorf("pipeline: start ONNX Runtime: %w", err)
	}
	return nil
}

// RuntimeVersion is the loaded ONNX Runtime's version ("1.24.3"), or "" before the runtime started.
func RuntimeVersion() string { return ort.Version() }

// startRuntime starts ONNX Runtime with the default library search unless it runs already.
func startRuntime() error {
	if ort.Initialized() {
		return nil
	}
	return Init(RuntimeOptions{})
}

// SessionOptions configure every ONNX Runtime session of a pipeline: execution provider, device,
// threads, optimized-graph cache. The zero value runs on the CPU with one intra-op thread per core.
// The type and its fields are documented in package ortopts; leave Outputs nil (the pipeline sets it
// per component).
type SessionOptions = ortopts.SessionOptions

// Provider names an ONNX Runtime execution provider (ortopts.Provider).
type Provider = ortopts.Provider

// Execution providers. The CPU provider is always appended last, so nodes another provider cannot run
// still run.
const (
	ProviderCPU      = ortopts.CPU
	ProviderCUDA     = ortopts.CUDA
	ProviderTensorRT = ortopts.TensorRT
	ProviderCoreML   = ortopts.CoreML
	ProviderDirectML = ortopts.DirectML
)

// OptLevel is ONNX Runtime's graph optimization level (ortopts.OptLevel); the zero value is OptAll.
type OptLevel = ortopts.OptLevel

// Graph optimization levels.
const (
	OptAll      = ortopts.OptAll
	OptExtended = ortopts.OptExtended
	OptBasic    = ortopts.OptBasic
	OptDisabled = ortopts.OptDisabled
)

// TensorInfo describes one model input or output as the model file declares it: Name, Type, Shape
// (-1 for a symbolic dimension; nil when undeclared) and DimNames.
type TensorInfo = ort.TensorInfo

// DataType is an ONNX tensor element type (its String is "float", "float16", "int64", …).
type DataType = onnx.DataType

// NoiseGenerator names the generator of the initial noise (Request.RNG).
type NoiseGenerator = rng.Kind

// Noise generators.
const (
	// NoiseTorchCPU is torch's CPU generator, bit-exact with diffusers on the CPU (the default).
	NoiseTorchCPU NoiseGenerator = "torch-cpu"
	// NoisePhilox emulates torch's CUDA generator (A1111 "NV", stable-diffusion.cpp "cuda").
	NoisePhilox NoiseGenerator = "philox"
)

// NoiseBatchMode says how a batch of images gets its noise (Request.BatchMode).
type NoiseBatchMode = rng.BatchMode

// Batch noise modes.
const (
	// OneGenerator draws the whole batch from one generator seeded once (diffusers); the zero value.
	OneGenerator NoiseBatchMode = 0
	// SeedPerImage draws image i from its own generator seeded Seed+i (A1111, stable-diffusion.cpp):
	// each image equals the batch-1 run of its own seed.
	SeedPerImage NoiseBatchMode = 1
)
