package ortopts_test

import (
	"fmt"

	"github.com/rflowrt/rflow/ortopts"
)

// Options for every session of a model on the second GPU, with ONNX Runtime's optimized graphs kept
// between runs; pipeline.Options.Session, textenc.LoadT5Encoder and vae.LoadDecoder take this type.
func ExampleSessionOptions() {
	so := ortopts.SessionOptions{Provider: ortopts.CUDA, DeviceID: 1, CacheDir: "/var/cache/rflow-ort"}
	fmt.Println(so.Provider, so.OptLevel == ortopts.OptAll, so.IntraOpThreads)
	// Output: cuda true 0
}
