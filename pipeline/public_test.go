package pipeline

import (
	"testing"

	"github.com/rflowrt/rflow/internal/ort"
	"github.com/rflowrt/rflow/internal/rng"
)

// TestPublicConstantsMatch: the public spellings of the internal packages' values are those values.
func TestPublicConstantsMatch(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"LibraryEnv", LibraryEnv, ort.LibraryEnv},
		{"ProviderCPU", ProviderCPU, ort.CPU}, {"ProviderCUDA", ProviderCUDA, ort.CUDA},
		{"ProviderTensorRT", ProviderTensorRT, ort.TensorRT}, {"ProviderCoreML", ProviderCoreML, ort.CoreML},
		{"ProviderDirectML", ProviderDirectML, ort.DirectML},
		{"OptAll", OptAll, ort.OptAll}, {"OptExtended", OptExtended, ort.OptExtended},
		{"OptBasic", OptBasic, ort.OptBasic}, {"OptDisabled", OptDisabled, ort.OptDisabled},
		{"NoiseTorchCPU", NoiseTorchCPU, rng.TorchCPU}, {"NoisePhilox", NoisePhilox, rng.Philox},
		{"OneGenerator", OneGenerator, rng.OneGenerator}, {"SeedPerImage", SeedPerImage, rng.SeedPerImage},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}
