package pipeline

import (
	"os/exec"
	"regexp"
	"strings"
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

// TestPublicSignaturesNameNoInternalPackage: go doc of pipeline and server shows no internal package's
// identifier other than in the alias declarations that give it a public name, so a program in another
// module can spell every type of every public signature.
func TestPublicSignaturesNameNoInternalPackage(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not on PATH")
	}
	internal := regexp.MustCompile(`\b(ort|onnx|rng|half|imagefile|safetensors|compiler|checkpoint|arch|tokenizerdata|testmodels)\.[A-Z]`)
	alias := regexp.MustCompile(`^type \w+ = \w+\.\w+$`)
	for _, pkg := range []string{".", "../server"} {
		out, err := exec.Command(gobin, "doc", "-all", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go doc %s: %v\n%s", pkg, err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if internal.MatchString(line) && !alias.MatchString(strings.TrimSpace(line)) {
				t.Errorf("go doc %s: %q names an internal package", pkg, strings.TrimSpace(line))
			}
		}
	}
}
