package server

import "strings"

// orDefault names the model's own schedule as A1111 does.
func orDefault(s string) string {
	if s == "" {
		return "Automatic"
	}
	return s
}

// joinKV writes A1111's "Key: value, Key: value" line.
func joinKV(kv [][2]string) string {
	parts := make([]string, 0, len(kv))
	for _, p := range kv {
		parts = append(parts, p[0]+": "+p[1])
	}
	return strings.Join(parts, ", ")
}
