module github.com/rflowrt/rflow

go 1.26.8

require (
	github.com/spf13/pflag v1.1.0
	github.com/yalue/onnxruntime_go v1.27.0
	google.golang.org/protobuf v1.36.12
)

require (
	github.com/disintegration/imaging v1.6.2
	golang.org/x/text v0.44.0
)

require golang.org/x/image v0.48.0 // indirect
