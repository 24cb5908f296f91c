package imagefile

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// Params are the A1111 "parameters" fields rflow writes, in A1111's key order.
//
// Zero values of the optional fields mean "not written". String fields are written as given
// (invalid UTF-8 is replaced by U+FFFD); pass A1111-style display names for Sampler and
// ScheduleType (see [SamplerDisplayName], [ScheduleDisplayName]) and for RNG (see
// [RNGDisplayName]).
type Params struct {
	Prompt         string
	NegativePrompt string // written as a "Negative prompt: …" line when not empty

	Steps        int    // "Steps", always written
	Sampler      string // "Sampler", e.g. "Euler"; "" = not written
	ScheduleType string // "Schedule type", e.g. "Simple"; "" = not written

	CFGScale          float64 // "CFG scale", always written
	DistilledCFGScale float64 // FLUX guidance, Forge's "Distilled CFG Scale"; 0 = not written

	Seed          uint64 // "Seed", always written
	Width, Height int    // "Size: WxH", always written
	Model         string // "Model"; "" = not written

	DenoisingStrength float64 // img2img "Denoising strength"; 0 = not written
	ClipSkip          int     // "Clip skip"; 0 and 1 (no skip) are not written, as in A1111
	RNG               string  // "RNG": "CPU" (torch CPU) or "NV" (Philox); "" = not written
	Version           string  // "Version", e.g. "rflow 0.1.0"; "" = not written

	// Extra holds further generation parameters (e.g. "Shift"), written in order just before
	// Version, where A1111 writes its extra_generation_params. A value equal to its key is
	// written as the bare key, as A1111 does.
	Extra []KV
}

// KV is one extra "Key: value" generation parameter.
type KV struct{ Key, Value string }

// Keys of the fields Params writes, as A1111/Forge spell them.
const (
	keySteps     = "Steps"
	keySampler   = "Sampler"
	keySchedule  = "Schedule type"
	keyCFG       = "CFG scale"
	keyDistilled = "Distilled CFG Scale"
	keySeed      = "Seed"
	keySize      = "Size"
	keyModel     = "Model"
	keyDenoise   = "Denoising strength"
	keyClipSkip  = "Clip skip"
	keyRNG       = "RNG"
	keyVersion   = "Version"

	negativePrefix = "Negative prompt:"
)

var reservedKeys = map[string]bool{
	keySteps: true, keySampler: true, keySchedule: true, keyCFG: true, keyDistilled: true,
	keySeed: true, keySize: true, keyModel: true, keyDenoise: true, keyClipSkip: true,
	keyRNG: true, keyVersion: true,
}

// Text returns the A1111 "parameters" text, as create_infotext builds it: the prompt, then
// "\nNegative prompt: …" if there is one, then "\n" and the ", "-joined "Key: value" pairs in
// A1111's key order, the whole stripped of surrounding whitespace. A value containing ',', ':'
// or '\n' is written as a JSON string (Python's json.dumps with ensure_ascii=False).
//
// Numbers are written as the A1111/Forge UI writes them: integers in decimal, and floats that
// hold an integer without a fraction ("CFG scale: 7", "CFG scale: 1, Distilled CFG Scale: 3.5"),
// other floats as Python's repr ("0.75"); see [FormatFloat].
func (p Params) Text() string {
	var b strings.Builder
	b.WriteString(valid(p.Prompt))
	if p.NegativePrompt != "" {
		b.WriteString("\n" + negativePrefix + " ")
		b.WriteString(valid(p.NegativePrompt))
	}
	b.WriteByte('\n')
	for i, kv := range p.pairs() {
		if i > 0 {
			b.WriteString(", ")
		}
		if kv.Key == kv.Value {
			b.WriteString(valid(kv.Key))
			continue
		}
		b.WriteString(valid(kv.Key))
		b.WriteString(": ")
		b.WriteString(quote(valid(kv.Value)))
	}
	return pyStrip(b.String())
}

// pairs lists the generation parameters in A1111's order (Forge's for Distilled CFG Scale),
// leaving out those that are not written.
func (p Params) pairs() []KV {
	kv := make([]KV, 0, 12+len(p.Extra))
	add := func(k, v string, ok bool) {
		if ok {
			kv = append(kv, KV{k, v})
		}
	}
	add(keySteps, strconv.Itoa(p.Steps), true)
	add(keySampler, p.Sampler, p.Sampler != "")
	add(keySchedule, p.ScheduleType, p.ScheduleType != "")
	add(keyCFG, FormatFloat(p.CFGScale), true)
	add(keyDistilled, FormatFloat(p.DistilledCFGScale), p.DistilledCFGScale != 0)
	add(keySeed, strconv.FormatUint(p.Seed, 10), true)
	add(keySize, fmt.Sprintf("%dx%d", p.Width, p.Height), true)
	add(keyModel, p.Model, p.Model != "")
	add(keyDenoise, FormatFloat(p.DenoisingStrength), p.DenoisingStrength != 0)
	add(keyClipSkip, strconv.Itoa(p.ClipSkip), p.ClipSkip > 1)
	add(keyRNG, p.RNG, p.RNG != "")
	kv = append(kv, p.Extra...)
	add(keyVersion, p.Version, p.Version != "")
	return kv
}

// keyPattern is what A1111's parse regex accepts as a key (Python's Unicode \w).
var keyPattern = regexp.MustCompile(`^[\p{L}\p{N}_][\p{L}\p{N}_ \-/]+$`)

// Validate reports parameters that cannot be written or read back: negative sizes or counts,
// non-finite floats, and Extra keys that A1111's parser would not read as keys (at least two
// characters of letters, digits, '_', ' ', '-', '/', not starting with one of the last three)
// or that repeat a key Params writes itself.
func (p Params) Validate() error {
	var errs []error
	if p.Steps < 0 || p.Width < 0 || p.Height < 0 || p.ClipSkip < 0 {
		errs = append(errs, fmt.Errorf("negative steps, size or clip skip (%d, %dx%d, %d)",
			p.Steps, p.Width, p.Height, p.ClipSkip))
	}
	for _, f := range []float64{p.CFGScale, p.DistilledCFGScale, p.DenoisingStrength} {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			errs = append(errs, fmt.Errorf("non-finite scale or strength %v", f))
		}
	}
	seen := map[string]bool{}
	for _, kv := range p.Extra {
		switch {
		case !keyPattern.MatchString(kv.Key):
			errs = append(errs, fmt.Errorf("extra key %q is not a valid A1111 key", kv.Key))
		case reservedKeys[kv.Key] || seen[kv.Key]:
			errs = append(errs, fmt.Errorf("extra key %q repeats a key", kv.Key))
		}
		seen[kv.Key] = true
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("imagefile: invalid parameters: %w", err)
	}
	return nil
}

// quote is A1111's infotext_utils.quote: the value unchanged unless it contains ',', '\n' or
// ':', else json.dumps(value, ensure_ascii=False).
func quote(v string) string {
	if !strings.ContainsAny(v, ",\n:") {
		return v
	}
	return pyJSONString(v)
}

// pyJSONString is Python's json.dumps(s, ensure_ascii=False) for a str: '"' and '\\' and the
// control characters U+0000–U+001F are escaped (\b \f \n \r \t by name, the rest as \u00xx with
// lower-case hex); everything else, non-ASCII, DEL and U+2028/U+2029 included, is kept as is.
// Unlike Go's encoding/json it escapes no HTML characters and no line separators.
func pyJSONString(s string) string {
	const hex = "0123456789abcdef"
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 {
				b.WriteString(`\u00`)
				b.WriteByte(hex[r>>4])
				b.WriteByte(hex[r&0xf])
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// FormatFloat formats a float the way a value from the A1111/Forge UI prints in the infotext:
// Gradio hands integral slider values over as Python ints, so 7.0 prints "7" and 1.0 prints
// "1", while other values print as Python's repr: 3.5 → "3.5", 0.1 → "0.1", 1e-05, 1.5e+16,
// nan, inf. Values from the A1111 HTTP API print as floats instead ("7.0"); A1111's own parser
// and every infotext reader accept both.
func FormatFloat(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e16 {
		if v == 0 {
			return "0" // also for -0, as Python's int(-0.0)
		}
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return PythonRepr(v)
}

// PythonRepr returns Python's repr of a float: the shortest digits that round-trip, in fixed
// notation when the decimal exponent is in [-4, 16) (with ".0" for integral values) and in
// exponent notation with a signed, at least two-digit exponent otherwise.
func PythonRepr(v float64) string {
	switch {
	case math.IsNaN(v):
		return "nan"
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	}
	e := strconv.FormatFloat(v, 'e', -1, 64) // e.g. "1.5e+16", "-1e-05"
	exp, _ := strconv.Atoi(e[strings.IndexByte(e, 'e')+1:])
	if exp < -4 || exp >= 16 {
		return e
	}
	f := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.ContainsRune(f, '.') {
		f += ".0"
	}
	return f
}

// valid replaces invalid UTF-8 (which no Python str holds) by U+FFFD.
func valid(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// pyIsSpace is Python's str.isspace for one character: Go's unicode.IsSpace plus the
// information separators U+001C–U+001F.
func pyIsSpace(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) }

// pyStrip is Python's str.strip() without arguments.
func pyStrip(s string) string { return strings.TrimFunc(s, pyIsSpace) }
