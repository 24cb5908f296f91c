package pipeline

import (
	"reflect"
	"testing"
)

// TestGuidanceInfo: the defaults write nothing; a rule and a cache write A1111's keys with their values.
func TestGuidanceInfo(t *testing.T) {
	if kv := (Resolved{}).GuidanceInfo(); len(kv) != 0 {
		t.Errorf("defaults: %v, want nothing", kv)
	}
	got := Resolved{GuidanceRule: "cfg-zero-star:zero-steps=1", StepCache: "taylor:threshold=0.1,warmup=2,max-skip=3"}.GuidanceInfo()
	want := [][2]string{{"Guidance rule", "cfg-zero-star:zero-steps=1"}, {"Step cache", "taylor:threshold=0.1,warmup=2,max-skip=3"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
