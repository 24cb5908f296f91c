package main

import (
	"slices"

	"github.com/rflowrt/rflow/assets"
	"github.com/rflowrt/rflow/pipeline"
)

// modelFolder returns the folder a --model value names: an embedded demo's extracted folder for a demo
// name, else the value itself.
func modelFolder(name string) (string, error) {
	if slices.Contains(assets.Names(), name) {
		return pipeline.DemoDir(name)
	}
	return name, nil
}
