package textenc

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestCLIPUnicodeAudit checks every code point against testdata/clip_unicode_audit.json, recorded from
// the Rust library: the normalizer's output (NFC, whitespace, lowercase) and the Split class. It
// catches Unicode-version drift when Go's or x/text's tables change.
func TestCLIPUnicodeAudit(t *testing.T) {
	data, err := os.ReadFile("testdata/clip_unicode_audit.json")
	if err != nil {
		t.Fatal(err)
	}
	var audit struct {
		Norm    map[string]string
		Classes [][3]string
	}
	if err := json.Unmarshal(data, &audit); err != nil {
		t.Fatal(err)
	}
	want := make(map[rune]string, len(audit.Norm))
	for k, v := range audit.Norm {
		var out []rune
		for _, f := range strings.Fields(v) {
			out = append(out, clipTokHex(t, f))
		}
		want[clipTokHex(t, k)] = string(out)
	}
	sc := &clipScratch{}
	bad := 0
	for _, rg := range audit.Classes {
		lo, hi := clipTokHex(t, rg[0]), clipTokHex(t, rg[1])
		for r := lo; r <= hi; r++ {
			if r >= 0xD800 && r <= 0xDFFF {
				continue
			}
			s := string(r)
			w, ok := want[r]
			if !ok {
				w = s
			}
			class, _ := clipClassAt(s, 0)
			got := clipNormalize(s, sc)
			if gotClass := "OWLN"[class : class+1]; got != w || gotClass != rg[2] {
				t.Errorf("U+%04X: normalized %+q class %s, want %+q class %s", r, got, gotClass, w, rg[2])
				if bad++; bad > 20 {
					t.Fatal("too many differences")
				}
			}
		}
	}
}

func clipTokHex(t *testing.T, s string) rune {
	t.Helper()
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		t.Fatal(err)
	}
	return rune(v)
}
