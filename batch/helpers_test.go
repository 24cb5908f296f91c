package batch

import (
	"runtime"

	"github.com/rflowrt/rflow/pipeline"
)

// lockSupported: flock(2) excludes a second opener on unix systems only.
var lockSupported = runtime.GOOS != "windows" && runtime.GOOS != "plan9" && runtime.GOOS != "js" && runtime.GOOS != "wasip1"

func pipelineSettings(size int) pipeline.Resolved {
	return pipeline.Resolved{Width: size, Height: size, Steps: 4, Sampler: "euler"}
}
