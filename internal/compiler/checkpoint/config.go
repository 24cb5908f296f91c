package checkpoint

import (
	"fmt"
	"math"
)

// Config values are kept in the types json.Unmarshal gives (float64 numbers, []any lists), so an inferred
// config and a config.json read from a diffusers folder are interchangeable.

func num(v int64) any { return float64(v) }

func nums(v []int64) []any {
	out := make([]any, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func strs(v ...string) []any {
	out := make([]any, len(v))
	for i, x := range v {
		out[i] = x
	}
	return out
}

// cfgInt reads an integer field; def is used when the field is absent or null (the class's default), and
// a negative def makes the field required.
func cfgInt(cfg map[string]any, key string, def int64) (int64, error) {
	v, ok := cfg[key]
	if !ok || v == nil {
		if def < 0 {
			return 0, fmt.Errorf("config: %s missing", key)
		}
		return def, nil
	}
	return toInt(key, v)
}

func toInt(key string, v any) (int64, error) {
	switch x := v.(type) {
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			return 0, fmt.Errorf("config: %s = %v is not an integer", key, x)
		}
		return int64(x), nil
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	}
	return 0, fmt.Errorf("config: %s = %v (%T) is not a number", key, v, v)
}

// cfgInts reads a list of integers; def is used when absent or null.
func cfgInts(cfg map[string]any, key string, def []int64) ([]int64, error) {
	v, ok := cfg[key]
	if !ok || v == nil {
		return def, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("config: %s = %v is not a list", key, v)
	}
	out := make([]int64, len(list))
	for i, x := range list {
		n, err := toInt(key, x)
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

func cfgBool(cfg map[string]any, key string, def bool) (bool, error) {
	v, ok := cfg[key]
	if !ok || v == nil {
		return def, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("config: %s = %v is not a boolean", key, v)
	}
	return b, nil
}

func cfgString(cfg map[string]any, key, def string) (string, error) {
	v, ok := cfg[key]
	if !ok || v == nil {
		return def, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("config: %s = %v is not a string", key, v)
	}
	return s, nil
}

// positive checks that sizes read from a config are usable.
func positive(kv ...any) error {
	for i := 0; i+1 < len(kv); i += 2 {
		if n := kv[i+1].(int64); n <= 0 || n > 1<<31 {
			return fmt.Errorf("config: %s = %d is out of range", kv[i], n)
		}
	}
	return nil
}
