package arch

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
)

// Config is a component's config.json as encoding/json decodes it (numbers are float64), with the
// diffusers/transformers field names.
type Config map[string]any

// ReadConfig reads a config.json file.
func ReadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// configReader reads typed fields from a Config, keeping the first problem.
type configReader struct {
	c   Config
	err error
}

func (r *configReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("config: "+format, args...)
	}
}

// num returns the field as a number; def is used when the field is absent or null (def NaN means
// the field is required).
func (r *configReader) num(key string, def float64) float64 {
	v, ok := r.c[key]
	if !ok || v == nil {
		if math.IsNaN(def) {
			r.fail("%q is missing", key)
		}
		return def
	}
	f, ok := v.(float64)
	if !ok {
		r.fail("%q is %v, want a number", key, v)
		return def
	}
	return f
}

// int reads an integer field; def is used when it is absent.
func (r *configReader) int(key string, def int) int {
	f := r.num(key, float64(def))
	if f != math.Trunc(f) || math.Abs(f) > 1<<40 {
		r.fail("%q is %v, want an integer", key, f)
		return def
	}
	return int(f)
}

// required reads an integer field that must be present and positive.
func (r *configReader) required(key string) int {
	f := r.num(key, math.NaN())
	if math.IsNaN(f) {
		return 0
	}
	if f != math.Trunc(f) || f <= 0 || f > 1<<40 {
		r.fail("%q is %v, want a positive integer", key, f)
		return 0
	}
	return int(f)
}

func (r *configReader) float(key string, def float64) float64 { return r.num(key, def) }

func (r *configReader) str(key, def string) string {
	v, ok := r.c[key]
	if !ok || v == nil {
		return def
	}
	s, ok := v.(string)
	if !ok {
		r.fail("%q is %v, want a string", key, v)
		return def
	}
	return s
}

func (r *configReader) bool(key string, def bool) bool {
	v, ok := r.c[key]
	if !ok || v == nil {
		return def
	}
	b, ok := v.(bool)
	if !ok {
		r.fail("%q is %v, want true or false", key, v)
		return def
	}
	return b
}

// ints reads a list of integers (a missing field gives def).
func (r *configReader) ints(key string, def []int) []int {
	v, ok := r.c[key]
	if !ok || v == nil {
		return def
	}
	list, ok := v.([]any)
	if !ok {
		r.fail("%q is %v, want a list of integers", key, v)
		return def
	}
	out := make([]int, len(list))
	for i, e := range list {
		f, ok := e.(float64)
		if !ok || f != math.Trunc(f) || math.Abs(f) > 1<<40 {
			r.fail("%q[%d] is %v, want an integer", key, i, e)
			return def
		}
		out[i] = int(f)
	}
	return out
}

// strs reads a list of strings (a missing field gives def).
func (r *configReader) strs(key string, def []string) []string {
	v, ok := r.c[key]
	if !ok || v == nil {
		return def
	}
	list, ok := v.([]any)
	if !ok {
		r.fail("%q is %v, want a list of strings", key, v)
		return def
	}
	out := make([]string, len(list))
	for i, e := range list {
		s, ok := e.(string)
		if !ok {
			r.fail("%q[%d] is %v, want a string", key, i, e)
			return def
		}
		out[i] = s
	}
	return out
}
