// Package pipeline runs SD3- and FLUX-family text-to-image generation over a model folder in the
// diffusers/Optimum layout.
package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rflowrt/rflow/scheduler"
)

// pipelineFamilies maps model_index.json's _class_name to the family rflow runs it as.
var pipelineFamilies = map[string]scheduler.Family{
	"StableDiffusion3Pipeline":        scheduler.FamilySD3,
	"StableDiffusion3Img2ImgPipeline": scheduler.FamilySD3,
	"FluxPipeline":                    scheduler.FamilyFLUX,
	"FluxImg2ImgPipeline":             scheduler.FamilyFLUX,
}

// ModelIndex is what model_index.json says about a folder.
type ModelIndex struct {
	ClassName string
	Family    scheduler.Family
	// Components maps a component name (transformer, text_encoder_3, …) to its [library, class];
	// a component listed as [null, null] (e.g. SD3 without T5) is absent from the map.
	Components map[string][2]string
}

// ReadModelIndex reads dir/model_index.json.
func ReadModelIndex(dir string) (ModelIndex, error) {
	path := filepath.Join(dir, "model_index.json")
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return ModelIndex{}, fmt.Errorf("%s is not a diffusers model folder: %s is missing", dir, path)
		}
		return ModelIndex{}, err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return ModelIndex{}, fmt.Errorf("read %s: %w", path, err)
	}
	mi := ModelIndex{Components: map[string][2]string{}}
	if err := json.Unmarshal(raw["_class_name"], &mi.ClassName); err != nil || mi.ClassName == "" {
		return ModelIndex{}, fmt.Errorf("read %s: no _class_name", path)
	}
	fam, ok := pipelineFamilies[mi.ClassName]
	if !ok {
		known := make([]string, 0, len(pipelineFamilies))
		for k := range pipelineFamilies {
			known = append(known, k)
		}
		sort.Strings(known)
		return ModelIndex{}, fmt.Errorf("read %s: pipeline %q is not supported (supported: %s)", path, mi.ClassName, strings.Join(known, ", "))
	}
	mi.Family = fam
	for k, v := range raw {
		if strings.HasPrefix(k, "_") {
			continue
		}
		var pair []*string
		if json.Unmarshal(v, &pair) != nil || len(pair) != 2 || pair[0] == nil || pair[1] == nil {
			continue
		}
		mi.Components[k] = [2]string{*pair[0], *pair[1]}
	}
	return mi, nil
}

// ReadSchedulerConfig reads dir/scheduler/scheduler_config.json.
func ReadSchedulerConfig(dir string) (scheduler.FlowMatchConfig, error) {
	path := filepath.Join(dir, "scheduler", "scheduler_config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return scheduler.FlowMatchConfig{}, fmt.Errorf("scheduler config: %w", err)
	}
	cfg, err := scheduler.ParseFlowMatchConfig(data)
	if err != nil {
		return scheduler.FlowMatchConfig{}, fmt.Errorf("read %s: %w", path, err)
	}
	return cfg, nil
}
