package batch

import (
	"strings"
	"testing"
)

// TestManifestLoRAs: an entry's loras are checked and kept as FILE:WEIGHT on each of its items.
func TestManifestLoRAs(t *testing.T) {
	items, err := ParseManifest(strings.NewReader(`{"prompt": "a", "count": 2, "loras": ["s.safetensors:0.5", "d.safetensors"]}
{"prompt": "b"}`), Item{})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 3 || strings.Join(items[1].LoRAs, ",") != "s.safetensors:0.5,d.safetensors:1" || items[2].LoRAs != nil {
		t.Errorf("items %+v", items)
	}
	if items[0].Fingerprint(Settings{}) == (Item{Prompt: "a", Seed: items[0].Seed}).Fingerprint(Settings{}) {
		t.Error("the LoRAs do not enter the item's fingerprint")
	}
	_, err = ParseManifest(strings.NewReader(`{"prompt": "a"}
{"prompt": "a", "loras": ["s.safetensors:nan"]}`), Item{})
	if err == nil || !strings.Contains(err.Error(), "line 2: loras[0]") {
		t.Errorf("NaN weight: %v", err)
	}
}
