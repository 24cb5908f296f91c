module example.com/rflow-hello

go 1.26.8

require github.com/rflowrt/rflow v0.0.0

require (
	github.com/yalue/onnxruntime_go v1.27.0 // indirect
	golang.org/x/text v0.44.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

replace github.com/rflowrt/rflow => ../..
